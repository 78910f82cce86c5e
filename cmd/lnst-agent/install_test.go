package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// The SSH lab: a machine made of namespaces, reached over a veth pair
// from this one, running Debian's OpenSSH server.
//
// What is real: sshd and the SSH protocol, key and known_hosts checks,
// every command install and uninstall run on the host, the files they
// write at their real paths (/usr/local/bin, /etc, /var/lib, /run), the
// agent binary started with the unit's own ExecStart line, mutual TLS to
// it, and `lnst pool check`. What is not: systemd. A lab host has no
// systemd as PID 1, so the systemd path runs a stand-in systemctl (first
// in the PATH sshd gives sessions) that logs its calls and starts and
// stops the unit's ExecStart; the no-systemd path (a container) is real.
//
// The host's /etc, /usr/local and /var are overlays whose writes land in
// a tmpfs of the lab, and /run is a tmpfs: the machine's own files are
// never touched, and the overlays' upper layers show every file install
// left. Everything runs in a PID namespace: when the lab goes, so do
// sshd and any agent, and with the network namespace the veth pair.
const (
	sshLabCtl  = "198.19.254.1" // this machine's end of the veth pair
	sshLabHost = "198.19.254.2" // the lab host's end, where sshd listens
)

// sshLab is a running SSH lab.
type sshLab struct {
	dir       string // the test's files, outside the lab's overlays
	hostPid   int    // PID 1 of the lab, in this machine's PID namespace
	clientKey string // private key file authorized for root
	signer    ssh.Signer
	hostKey   ssh.PublicKey
	agentBin  string // lnst-agent built for the test
	lnstBin   string // lnst built for the test
	overlays  []string
}

// fakeSystemctl stands in for systemctl on the lab host (see above). It
// handles what lnst-agent install and uninstall ask of it.
const fakeSystemctl = `#!/bin/sh
# Test stand-in for systemctl: the lab host has no systemd.
state=@STATE@
echo "$*" >> $state/systemctl.log
case "$1" in
daemon-reload|reset-failed) exit 0 ;;
enable|disable) ;;
*) echo "fake systemctl: $1: not implemented" >&2; exit 1 ;;
esac
verb=$1; shift
now=; if [ "$1" = --now ]; then now=1; shift; fi
unit=$1
file=/etc/systemd/system/$unit
wants=/etc/systemd/system/multi-user.target.wants
if [ $verb = enable ]; then
	[ ! -e $state/fail-enable ] || { echo "Job for $unit failed (the test said so)." >&2; exit 1; }
	[ -f "$file" ] || { echo "Failed to enable unit: Unit file $unit does not exist." >&2; exit 1; }
	if grep -q '^WantedBy=multi-user.target' "$file"; then mkdir -p $wants && ln -sf "$file" $wants/$unit; fi
	[ -n "$now" ] || exit 0
	exec_start=$(sed -n 's/^ExecStart=//p' "$file")
	sd=$(sed -n 's/^StateDirectory=//p' "$file")
	if [ -n "$sd" ]; then mkdir -p -m 0700 /var/lib/$sd; export STATE_DIRECTORY=/var/lib/$sd; fi
	cd /
	setsid sh -c "echo \$\$ > $state/$unit.pid; exec $exec_start" > $state/$unit.log 2>&1 < /dev/null &
	exit 0
fi
rm -f $wants/$unit
[ -n "$now" ] && [ -f $state/$unit.pid ] || exit 0
pid=$(cat $state/$unit.pid); rm -f $state/$unit.pid
exe=$(readlink /proc/$pid/exe) || exit 0
kill -TERM $pid
i=0
while [ "$(readlink /proc/$pid/exe)" = "$exe" ]; do
	i=$((i+1)); [ $i -lt 600 ] || { kill -KILL $pid; exit 1; }
	sleep 0.1
done
`

// startSSHLab builds the binaries and starts the lab; cleanup removes it.
func startSSHLab(t *testing.T) *sshLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("requires root: the SSH lab makes namespaces and mounts")
	}
	for _, c := range []string{"/usr/sbin/sshd", "unshare", "nsenter", "ip", "setsid"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("requires %s (Debian's openssh-server, util-linux, iproute2): %v", c, err)
		}
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("requires the go command, to build lnst-agent and lnst: %v", err)
	}
	l := &sshLab{dir: t.TempDir()}
	require.NoError(t, os.Chmod(l.dir, 0o755))
	l.build(t)
	l.keys(t)

	for _, d := range []string{"fakebin", "state", "ovl"} {
		require.NoError(t, os.Mkdir(filepath.Join(l.dir, d), 0o755))
	}
	fake := strings.ReplaceAll(fakeSystemctl, "@STATE@", filepath.Join(l.dir, "state"))
	require.NoError(t, os.WriteFile(filepath.Join(l.dir, "fakebin", "systemctl"), []byte(fake), 0o755))

	ovl := filepath.Join(l.dir, "ovl")
	var setup strings.Builder
	fmt.Fprintf(&setup, "set -e; mount -t sysfs sysfs /sys; mount -t tmpfs tmpfs %s; ", ovl)
	for _, d := range []string{"etc", "usr/local", "var"} {
		up, work := filepath.Join(ovl, strings.ReplaceAll(d, "/", "_")), filepath.Join(ovl, "work_"+strings.ReplaceAll(d, "/", "_"))
		l.overlays = append(l.overlays, "/"+d+"="+up)
		fmt.Fprintf(&setup, "mkdir %s %s; mount -t overlay overlay -o lowerdir=/%s,upperdir=%s,workdir=%s /%s; ", up, work, d, up, work, d)
	}
	setup.WriteString("mount -t tmpfs -o mode=0755 tmpfs /run; mkdir -m 0755 /run/sshd /run/systemd /run/systemd/system; ip link set lo up; ")
	setup.WriteString("echo ready; while :; do sleep 1; done")

	// PID 1 of the lab is this shell; unshare kills it when unshare dies
	// (--kill-child), and unshare dies with this test process (Pdeathsig).
	holder := exec.Command("unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", setup.String())
	holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := holder.StdoutPipe()
	require.NoError(t, err)
	var holderErr bytes.Buffer
	holder.Stderr = &holderErr
	require.NoError(t, holder.Start())
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil && strings.Contains(holderErr.String(), "overlay") {
		t.Skipf("requires overlayfs in a mount namespace (kernel): %s", &holderErr)
	}
	require.NoError(t, err, "the SSH lab did not start: %s", &holderErr)
	require.Equal(t, "ready\n", line)
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", holder.Process.Pid, holder.Process.Pid))
	require.NoError(t, err)
	l.hostPid, err = strconv.Atoi(strings.TrimSpace(string(children)))
	require.NoError(t, err, "PID 1 of the lab: %q", children)

	// The cable: a veth pair, this machine's end named for this process.
	link := fmt.Sprintf("lnstssh%d", os.Getpid()%100000)
	runHost(t, "ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", strconv.Itoa(l.hostPid))
	t.Cleanup(func() { exec.Command("ip", "link", "del", link).Run() })
	runHost(t, "ip", "addr", "add", sshLabCtl+"/30", "dev", link)
	runHost(t, "ip", "link", "set", link, "up")
	l.sh(t, "ip addr add "+sshLabHost+"/30 dev eth0 && ip link set eth0 up")

	l.startSSHD(t)
	return l
}

// runHost runs a command on this machine.
func runHost(t *testing.T, argv ...string) {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	require.NoError(t, err, "%q: %s", argv, out)
}

// build builds lnst-agent and lnst, static as for any host.
func (l *sshLab) build(t *testing.T) {
	t.Helper()
	bin := filepath.Join(l.dir, "bin")
	cmd := exec.Command("go", "build", "-o", bin+"/", ".", "../lnst")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build lnst-agent and lnst: %s", out)
	l.agentBin, l.lnstBin = filepath.Join(bin, "lnst-agent"), filepath.Join(bin, "lnst")
}

// keys makes the host key of sshd and the key root logs in with.
func (l *sshLab) keys(t *testing.T) {
	t.Helper()
	write := func(name string) ssh.Signer {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		block, err := ssh.MarshalPrivateKey(priv, name)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(l.dir, name), pem.EncodeToMemory(block), 0o600))
		s, err := ssh.NewSignerFromKey(priv)
		require.NoError(t, err)
		return s
	}
	l.hostKey = write("ssh_host_ed25519_key").PublicKey()
	l.signer = write("id_ed25519")
	l.clientKey = filepath.Join(l.dir, "id_ed25519")
	require.NoError(t, os.WriteFile(filepath.Join(l.dir, "authorized_keys"), ssh.MarshalAuthorizedKey(l.signer.PublicKey()), 0o600))
}

// startSSHD runs sshd in the lab, in the foreground, until cleanup.
func (l *sshLab) startSSHD(t *testing.T) {
	t.Helper()
	conf := fmt.Sprintf(`ListenAddress %s:22
HostKey %s/ssh_host_ed25519_key
AuthorizedKeysFile %s/authorized_keys
PidFile %s/sshd.pid
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
SetEnv PATH=%s/fakebin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
`, sshLabHost, l.dir, l.dir, l.dir, l.dir)
	confFile := filepath.Join(l.dir, "sshd_config")
	require.NoError(t, os.WriteFile(confFile, []byte(conf), 0o644))
	sshd := l.command("/usr/sbin/sshd", "-D", "-e", "-f", confFile)
	// A file, not a pipe: the processes sshd forks hold its stderr too.
	logFile := filepath.Join(l.dir, "sshd.log")
	logf, err := os.Create(logFile)
	require.NoError(t, err)
	defer logf.Close()
	sshd.Stdout, sshd.Stderr = logf, logf
	require.NoError(t, sshd.Start())
	exited := make(chan struct{})
	go func() { sshd.Wait(); close(exited) }()
	log := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	// Killing nsenter leaves sshd to die with the lab.
	t.Cleanup(func() {
		sshd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd's log:\n%s", log())
		}
	})
	testPoll(t, "sshd to listen on "+sshLabHost+":22", 15*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", log())
		default:
		}
		c, err := net.DialTimeout("tcp", sshLabHost+":22", time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// command runs argv on the lab host: in its network, mount and PID
// namespaces.
func (l *sshLab) command(argv ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--target", strconv.Itoa(l.hostPid), "--net", "--mount", "--pid"}, argv...)...)
}

// sh runs a shell command line on the lab host and returns its output.
func (l *sshLab) sh(t *testing.T, line string) string {
	t.Helper()
	out, err := l.command("sh", "-c", line).CombinedOutput()
	require.NoError(t, err, "on the lab host: %q: %s", line, out)
	return string(out)
}

// knownHostsLine is the line of the lab host's key in a known_hosts file.
func (l *sshLab) knownHostsLine() string {
	return sshLabHost + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(l.hostKey))) + "\n"
}

// systemctlLog returns the calls of the stand-in systemctl so far, and
// forgets them.
func (l *sshLab) systemctlLog(t *testing.T) []string {
	t.Helper()
	file := filepath.Join(l.dir, "state", "systemctl.log")
	data, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	require.NoError(t, os.Remove(file))
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// agentProcs lists the lnst-agent processes of the lab.
func (l *sshLab) agentProcs(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(l.sh(t, "pgrep -a lnst-agent || true"))
}

// assertClean checks the lab host has nothing of lnst-agent left: none of
// the installed paths, no new file or directory anywhere under /etc,
// /usr/local and /var (the overlays' upper layers hold only copies of
// directories this machine has), nothing in /run but what the lab made,
// and no agent process.
func (l *sshLab) assertClean(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/usr/local/bin/lnst-agent", "/etc/lnst-agent", "/etc/systemd/system/lnst-agent.service",
		"/etc/systemd/system/multi-user.target.wants/lnst-agent.service", "/var/lib/lnst-agent", "/run/lnst-agent.pid", "/var/log/lnst-agent.log"} {
		assert.Equal(t, "gone\n", l.sh(t, fmt.Sprintf("[ -e %s ] || [ -L %s ] || echo gone", p, p)), "%s on the lab host after uninstall", p)
	}
	for _, o := range l.overlays {
		lower, upper, _ := strings.Cut(o, "=")
		// The upper layer is in the lab's tmpfs: list it from the lab.
		out := l.sh(t, "cd "+upper+" && find . -mindepth 1 \\( -type d -printf 'dir %P\\n' \\) -o -printf '%M %P\\n'")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			kind, rel, ok := strings.Cut(line, " ")
			switch {
			case !ok:
			case kind != "dir":
				t.Errorf("uninstall left %s on the lab host (%s)", filepath.Join(lower, rel), kind)
			default:
				// A directory of the machine's own, copied up as a file
				// was made in it, is no trace; a new one is, but for
				// systemd's wants directory: systemctl enable makes it
				// and disable keeps it, the stand-in as systemd does.
				p := filepath.Join(lower, rel)
				if _, err := os.Stat(p); err != nil && p != "/etc/systemd/system/multi-user.target.wants" {
					t.Errorf("uninstall left directory %s on the lab host", p)
				}
			}
		}
	}
	assert.Equal(t, "/run/sshd\n/run/systemd\n", l.sh(t, "find /run -mindepth 1 ! -path '/run/systemd/*' | sort"), "what is in /run on the lab host")
	assert.Empty(t, l.agentProcs(t), "agent processes on the lab host after uninstall")
}

// sshAgent serves the key the lab authorizes on a unix socket, as
// ssh-agent does, and points SSH_AUTH_SOCK at it.
func (l *sshLab) sshAgent(t *testing.T) {
	t.Helper()
	priv, err := os.ReadFile(l.clientKey)
	require.NoError(t, err)
	raw, err := ssh.ParseRawPrivateKey(priv)
	require.NoError(t, err)
	kr := agent.NewKeyring()
	require.NoError(t, kr.Add(agent.AddedKey{PrivateKey: raw}))
	sock := filepath.Join(l.dir, "agent.sock")
	lis, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(kr, c); c.Close() }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
}

// poolCheck runs `lnst pool check` on the pool file.
func (l *sshLab) poolCheck(t *testing.T, poolFile string) (int, string) {
	t.Helper()
	out, err := exec.Command(l.lnstBin, "pool", "check", poolFile).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err)
	return 0, string(out)
}

func installCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestInstallOverSSH installs the agent on the SSH lab's host with
// `lnst-agent install`, checks it with `lnst pool check`, and checks
// `lnst-agent uninstall` leaves nothing: with systemd (the stand-in) and
// without (a detached agent).
func TestInstallOverSSH(t *testing.T) {
	l := startSSHLab(t)
	dir := t.TempDir()
	poolFile, knownHosts := filepath.Join(dir, "lab.yaml"), filepath.Join(dir, "known_hosts")
	target := "root@" + sshLabHost
	installArgs := func(extra ...string) []string {
		return append([]string{"install", "--pool", poolFile, "--known-hosts", knownHosts, "--identity", l.clientKey, "--agent-binary", l.agentBin}, append(extra, target)...)
	}

	t.Run("unknown host key", func(t *testing.T) {
		code, _, stderr := runCmd(installCtx(t), installArgs()...)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "known_hosts file "+knownHosts+": missing")
		require.NoError(t, os.WriteFile(knownHosts, []byte("# no hosts yet\n"), 0o600))
		code, _, stderr = runCmd(installCtx(t), installArgs()...)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "host "+sshLabHost+":22 is not in known_hosts file "+knownHosts+" (it offers "+describeTestKey(l.hostKey)+")")
		assert.Contains(t, stderr, "--accept-new-host-key")
		assert.NoFileExists(t, poolFile)
	})

	t.Run("changed host key", func(t *testing.T) {
		other, _, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		otherKey, err := ssh.NewPublicKey(other)
		require.NoError(t, err)
		line := sshLabHost + " " + string(ssh.MarshalAuthorizedKey(otherKey))
		require.NoError(t, os.WriteFile(knownHosts, []byte("# a stale key\n"+line), 0o600))
		code, _, stderr := runCmd(installCtx(t), installArgs("--accept-new-host-key")...)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "HOST KEY MISMATCH: "+sshLabHost+":22 offers "+describeTestKey(l.hostKey)+", but known_hosts file "+knownHosts+" line 2 has "+describeTestKey(otherKey))

		// A known key of another type: the server offers none of that type.
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		ecKey, err := ssh.NewPublicKey(&ec.PublicKey)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(knownHosts, []byte(sshLabHost+" "+string(ssh.MarshalAuthorizedKey(ecKey))), 0o600))
		code, _, stderr = runCmd(installCtx(t), installArgs("--accept-new-host-key")...)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "HOST KEY MISMATCH: known_hosts file "+knownHosts+" has only ecdsa-sha2-nistp256 keys for it, and the server offers none of them")

		require.NoError(t, os.Remove(knownHosts))
		assert.NoFileExists(t, poolFile)
	})

	t.Run("systemd", func(t *testing.T) {
		code, stdout, stderr := runCmd(installCtx(t), installArgs("--accept-new-host-key")...)
		require.Equal(t, 0, code, "install: %s%s", stdout, stderr)
		assert.Contains(t, stdout, "systemd unit lnst-agent.service")
		assert.NotContains(t, stdout, "dynamically linked", "the agent binary is built with CGO_ENABLED=0")
		kh, err := os.ReadFile(knownHosts)
		require.NoError(t, err)
		assert.Equal(t, l.knownHostsLine(), string(kh), "the host key --accept-new-host-key added")
		assert.Equal(t, []string{"daemon-reload", "enable --now lnst-agent.service"}, l.systemctlLog(t))
		assert.Equal(t, "700 /etc/lnst-agent\n600 /etc/lnst-agent/agent-key.pem\n600 /etc/lnst-agent/agent.pem\n600 /etc/lnst-agent/ca.pem\n755 /usr/local/bin/lnst-agent\n",
			l.sh(t, "stat -c '%a %n' /etc/lnst-agent /etc/lnst-agent/* /usr/local/bin/lnst-agent"))
		unit := l.sh(t, "cat /etc/systemd/system/lnst-agent.service")
		assert.Contains(t, unit, "ExecStart=/usr/local/bin/lnst-agent serve --listen :7000 --ca /etc/lnst-agent/ca.pem --cert /etc/lnst-agent/agent.pem --key /etc/lnst-agent/agent-key.pem --journal /var/lib/lnst-agent/journal\n")
		assert.Contains(t, l.agentProcs(t), "/usr/local/bin/lnst-agent serve --listen :7000")

		pool, err := os.ReadFile(poolFile)
		require.NoError(t, err)
		assert.Contains(t, string(pool), "  - name: "+sshLabHost+"\n    agent: "+sshLabHost+":7000\n    tls: {ca: certs/ca.pem, cert: certs/ctl.pem, key: certs/ctl-key.pem}\n    arch: "+l.sh(t, "uname -m"))
		code, out := l.poolCheck(t, poolFile)
		assert.Equal(t, 0, code, "lnst pool check: %s", out)
		assert.Contains(t, out, poolFile+": all 1 host(s) ready")

		code, _, stderr = runCmd(installCtx(t), installArgs()...)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, `has a host named "`+sshLabHost+`" already`)

		// Uninstall logs in with the SSH agent's key.
		l.sshAgent(t)
		code, stdout, stderr = runCmd(installCtx(t), "uninstall", "--pool", poolFile, "--known-hosts", knownHosts, target)
		require.Equal(t, 0, code, "uninstall: %s%s", stdout, stderr)
		assert.Equal(t, []string{"disable --now lnst-agent.service", "daemon-reload", "reset-failed lnst-agent.service"}, l.systemctlLog(t))
		l.assertClean(t)
		assert.NoFileExists(t, poolFile, "the pool file install made, without hosts")
		assert.NoFileExists(t, filepath.Join(dir, "certs", sshLabHost+".pem"))
		assert.NoFileExists(t, filepath.Join(dir, "certs", sshLabHost+"-key.pem"))
		assert.FileExists(t, filepath.Join(dir, "certs", "ca.pem"), "the CA stays for other hosts")
	})

	t.Run("failed install undoes itself", func(t *testing.T) {
		require.NoError(t, os.WriteFile(knownHosts, []byte(l.knownHostsLine()), 0o600))
		failFile := filepath.Join(l.dir, "state", "fail-enable")
		require.NoError(t, os.WriteFile(failFile, nil, 0o644))
		t.Cleanup(func() { os.Remove(failFile) })
		code, stdout, stderr := runCmd(installCtx(t), installArgs()...)
		assert.Equal(t, 1, code, "install: %s%s", stdout, stderr)
		assert.Contains(t, stderr, "systemctl enable --now 'lnst-agent.service'\": exit status 1: Job for lnst-agent.service failed (the test said so).")
		assert.Contains(t, stdout, "install failed, removing what it made")
		assert.Equal(t, []string{"daemon-reload", "enable --now lnst-agent.service", "disable --now lnst-agent.service", "daemon-reload", "reset-failed lnst-agent.service"}, l.systemctlLog(t))
		l.assertClean(t)
		assert.NoFileExists(t, poolFile)
		assert.NoFileExists(t, filepath.Join(dir, "certs", sshLabHost+"-key.pem"))
	})

	t.Run("no systemd", func(t *testing.T) {
		// The host is known: its key is in known_hosts already.
		require.NoError(t, os.WriteFile(knownHosts, []byte(l.knownHostsLine()), 0o600))
		l.sh(t, "rmdir /run/systemd/system")
		t.Cleanup(func() { l.sh(t, "mkdir -p /run/systemd/system") })
		// A pool file with a host and comments of its own: they stay.
		const mine = "# my lab\nhosts:\n  - name: other # a machine of mine\n    agent: unix:///run/other.sock\n# the end\n"
		require.NoError(t, os.WriteFile(poolFile, []byte(mine), 0o640))
		code, stdout, stderr := runCmd(installCtx(t), installArgs("--name", "m2", "--port", "7001")...)
		require.Equal(t, 0, code, "install: %s%s", stdout, stderr)
		assert.Contains(t, stdout, "no systemd")
		assert.Empty(t, l.systemctlLog(t), "systemctl calls")
		pid := strings.TrimSpace(l.sh(t, "cat /run/lnst-agent.pid"))
		assert.Equal(t, "/usr/local/bin/lnst-agent", strings.TrimSpace(l.sh(t, "readlink /proc/"+pid+"/exe")))
		assert.Equal(t, pid+"\n", l.sh(t, "ps -o sid= -p "+pid+" | tr -d ' '"), "the agent leads a session of its own")
		pool, err := os.ReadFile(poolFile)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(pool), strings.TrimSuffix(mine, "# the end\n")), "the pool file keeps its text:\n%s", pool)
		assert.Contains(t, string(pool), "  - name: m2\n    agent: "+sshLabHost+":7001\n")
		assert.True(t, strings.HasSuffix(string(pool), "# the end\n"), "the pool file keeps its last comment:\n%s", pool)
		fi, err := os.Stat(poolFile)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "the pool file keeps its mode")

		code, stdout, stderr = runCmd(installCtx(t), "uninstall", "--pool", poolFile, "--known-hosts", knownHosts, "--identity", l.clientKey, "--name", "m2", target)
		require.Equal(t, 0, code, "uninstall: %s%s", stdout, stderr)
		l.assertClean(t)
		pool, err = os.ReadFile(poolFile)
		require.NoError(t, err)
		assert.Equal(t, mine, string(pool), "the pool file after uninstall")
	})
}

// describeTestKey is a key as install's messages name it.
func describeTestKey(k ssh.PublicKey) string { return k.Type() + " " + ssh.FingerprintSHA256(k) }

func TestInstallUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"install"}, "lnst-agent install needs user@host"},
		{[]string{"uninstall", "--pool", "lab.yaml"}, "lnst-agent uninstall needs user@host"},
		{[]string{"install", "root@198.18.0.5"}, "--pool is required"},
		{[]string{"install", "--pool", "lab.yaml", "198.18.0.5"}, `target "198.18.0.5": want user@host`},
		{[]string{"install", "--pool", "lab.yaml", "root@198.18.0.5", "extra"}, `unexpected argument "extra"`},
		{[]string{"install", "--pool", "lab.yaml", "--days", "0", "root@198.18.0.5"}, "--days 0: must be positive"},
		{[]string{"install", "root@198.18.0.5", "--pool", "lab.yaml", "--port", "70000"}, "--port 70000: want 1 to 65535"},
		{[]string{"uninstall", "--pool", "lab.yaml", "--port", "7000", "root@198.18.0.5"}, "flag provided but not defined: -port"},
	} {
		code, stdout, stderr := runCmd(t.Context(), tc.args...)
		assert.Equal(t, 2, code, "exit status of %q", tc.args)
		assert.Empty(t, stdout, "stdout of %q", tc.args)
		assert.Contains(t, stderr, "lnst-agent: "+tc.want, "stderr of %q", tc.args)
	}
}

// TestInstallNeedsKeyAndKnownHosts checks install says what is missing
// before it connects anywhere.
func TestInstallNeedsKeyAndKnownHosts(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SSH_AUTH_SOCK", "")
	pool := filepath.Join(dir, "lab.yaml")
	code, _, stderr := runCmd(t.Context(), "install", "--pool", pool, "--known-hosts", filepath.Join(dir, "kh"), "root@198.18.0.5")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "lnst-agent: ssh: no key: give --identity FILE, or run an SSH agent (SSH_AUTH_SOCK is not set)")

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	key := filepath.Join(dir, "id")
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(block), 0o600))
	code, _, stderr = runCmd(t.Context(), "uninstall", "--pool", pool, "--identity", key, "--known-hosts", filepath.Join(dir, "kh"), "root@198.18.0.5")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "lnst-agent: known_hosts file "+filepath.Join(dir, "kh")+": missing: give --known-hosts FILE, or --accept-new-host-key")
	assert.NoFileExists(t, pool)
}
