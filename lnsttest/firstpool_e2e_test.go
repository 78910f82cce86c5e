package lnsttest_test

import (
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README's "On a pool of machines" walk-through, as TestREADMEFirstPool
// runs it. Each block it runs follows a marker:
//
//	<!-- first-pool: controller -->          sh, on the controller, from the repository root
//	<!-- first-pool: machine 198.18.0.11 --> sh, on each machine, where step 3 copied its files
//	<!-- first-pool: file lab.yaml -->       a file to write, relative to the repository root
//
// The blocks are run as they stand but for these placeholders:
//
//   - The machine block is written for the machine its marker names; on
//     every other machine of the pool file, that address is replaced by the
//     machine's (as README tells the reader to).
//   - In the machine block, /var/lib/lnst-agent/ (the journal's
//     directory) is the machine's own directory of that name: the test's
//     machines share this box's file system, where several agents need
//     their own journal.
//   - A pool file interface name the lab named otherwise (the lab's
//     -lnst.lab.ifnames) is the lab's name.
//
// and scp is a stand-in (firstPoolScp) copying to the machine's home
// directory. The machines are lab hosts (network namespaces) with the pool
// file's agent addresses on a control network and its interfaces on its
// networks; the controller is a lab host on the control network, and
// its repository root a copy of this one, so that make, certs and the
// pool file write nothing into the checkout.
var firstPoolMarker = regexp.MustCompile(`^<!-- first-pool: (controller|machine (\S+)|file (\S+)) -->$`)

// firstPoolBlock is one marked block of the walk-through.
type firstPoolBlock struct {
	kind string // "controller", "machine", "file"
	arg  string // the machine's address, the file's name
	text string
	line int // of the marker in README.md
}

// firstPoolBlocks reads the marked blocks of README.md in order: each
// marker is followed (blank lines aside) by a fenced block.
func firstPoolBlocks(t *testing.T, readme string) []firstPoolBlock {
	t.Helper()
	data, err := os.ReadFile(readme)
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	var blocks []firstPoolBlock
	for i := 0; i < len(lines); i++ {
		m := firstPoolMarker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		b := firstPoolBlock{kind: strings.Fields(m[1])[0], arg: m[2] + m[3], line: i + 1}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		require.True(t, j < len(lines) && strings.HasPrefix(lines[j], "```"), "%s:%d: the first-pool marker is not followed by a fenced block", readme, b.line)
		var body []string
		for j++; j < len(lines) && !strings.HasPrefix(lines[j], "```"); j++ {
			body = append(body, lines[j])
		}
		require.Less(t, j, len(lines), "%s:%d: the block after the first-pool marker is not closed", readme, b.line)
		b.text = strings.Join(body, "\n") + "\n"
		blocks = append(blocks, b)
		i = j
	}
	return blocks
}

// firstPoolScp stands in for scp on the controller: it copies files to
// user@ADDR:[DIR], DIR relative to the home directory, which is
// @MACHINES@/ADDR; an address with no such directory is no machine.
const firstPoolScp = `#!/bin/sh
# Test stand-in for scp: machine ADDR's home directory is @MACHINES@/ADDR.
for dst; do :; done
case "$dst" in
*@*:*) ;;
*) echo "fake scp: $dst: want user@host:[dir]" >&2; exit 1 ;;
esac
hostpath=${dst#*@}; host=${hostpath%%:*}; dir=${hostpath#*:}
case "$dir" in /*) echo "fake scp: $dst: an absolute path on the machine is not where the walk-through copies" >&2; exit 1 ;; esac
home=@MACHINES@/$host
[ -d "$home" ] || { echo "fake scp: $host: no such machine" >&2; exit 1; }
n=$#; i=1
for f; do
	[ $i -lt $n ] || break
	cp -p "$f" "$home/$dir" || exit 1
	i=$((i+1))
done
`

// TestREADMEFirstPool follows README's first-pool walk-through literally
// (see firstPoolMarker): build the binaries, make certificates, copy each
// machine's files, start the agents with README's command line, write
// README's pool file, check it with lnst pool check and run TestPing on
// it with README's go test line, from the repository root.
func TestREADMEFirstPool(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lnst, lnst-agent and the recipes; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("requires the go command: the walk-through builds with make and runs go test")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("requires make: the walk-through builds with make binaries")
	}
	root := moduleRoot(t, gobin)
	blocks := firstPoolBlocks(t, filepath.Join(root, "README.md"))
	kinds := map[string][]firstPoolBlock{}
	for _, b := range blocks {
		kinds[b.kind] = append(kinds[b.kind], b)
	}
	require.Len(t, kinds["machine"], 1, "README's walk-through has one machine block")
	require.Len(t, kinds["file"], 1, "README's walk-through has one file block, the pool file")
	require.GreaterOrEqual(t, len(kinds["controller"]), 3, "README's walk-through has controller blocks: build, certificates, copy, check and run")
	machineBlock, fileBlock := kinds["machine"][0], kinds["file"][0]
	require.Contains(t, machineBlock.text, "/var/lib/lnst-agent/",
		"README.md:%d: the machine block gives --journal: the test's agents share one box, where each needs its own", machineBlock.line)

	// The machines: README's pool file says which, at which addresses,
	// with which interfaces on which networks.
	p, err := pool.Parse(fileBlock.arg, []byte(fileBlock.text))
	require.NoError(t, err, "README.md:%d: the pool file", fileBlock.line)
	require.GreaterOrEqual(t, len(p.Hosts), 2, "README's pool has the two machines TestPing needs")
	addrs := map[string]string{} // pool host name -> agent host
	var ctlNet *net.IPNet
	reqs := []lnsttest.Requirement{lnsttest.HostReq("ctl", lnsttest.IfaceReq("ctl0", lnsttest.Net("control")))}
	for _, h := range p.Hosts {
		host, _, err := net.SplitHostPort(h.Agent)
		require.NoError(t, err, "pool host %s", h.Name)
		ip := net.ParseIP(host).To4()
		require.NotNil(t, ip, "pool host %s: the test puts IPv4 agent addresses on a /24: %s", h.Name, host)
		n := &net.IPNet{IP: ip.Mask(net.CIDRMask(24, 32)), Mask: net.CIDRMask(24, 32)}
		if ctlNet == nil {
			ctlNet = n
		}
		require.True(t, ctlNet.Contains(ip), "pool host %s: the test puts every agent on one /24, %s", h.Name, ctlNet)
		addrs[h.Name] = host
		hopts := []lnsttest.HostOpt{lnsttest.IfaceReq("ctl0", lnsttest.Net("control"))}
		for _, ifc := range h.Ifaces {
			require.NotEmpty(t, ifc.Name, "pool host %s: the walk-through names its interfaces", h.Name)
			hopts = append(hopts, lnsttest.IfaceReq(ifc.Name, lnsttest.Net(ifc.Net)))
		}
		reqs = append(reqs, lnsttest.HostReq(h.Name, hopts...))
	}
	ctlIP := slices.Clone(ctlNet.IP)
	ctlIP[3] = 254
	for name, a := range addrs {
		require.NotEqual(t, ctlIP.String(), a, "pool host %s has the controller's address", name)
	}
	lab := lnsttest.Require(t, reqs...)

	// The controller's repository root (a copy of this one), the machines'
	// home directories, and the stand-in scp.
	dir, err := os.MkdirTemp("", "lnst-first-pool-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	repo, machines, fakebin := filepath.Join(dir, "repo"), filepath.Join(dir, "machines"), filepath.Join(dir, "fakebin")
	copyModule(t, root, repo)
	require.NoError(t, os.Mkdir(fakebin, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(fakebin, "scp"), []byte(strings.ReplaceAll(firstPoolScp, "@MACHINES@", machines)), 0o755))
	homes := map[string]string{}
	for _, h := range p.Hosts {
		homes[h.Name] = filepath.Join(machines, addrs[h.Name])
		require.NoError(t, os.MkdirAll(homes[h.Name], 0o700))
	}

	ctl := lab.Host("ctl")
	ctl.Iface("ctl0").AddIP(t, ctlIP.String()+"/24")
	for _, h := range p.Hosts {
		lab.Host(h.Name).Iface("ctl0").AddIP(t, addrs[h.Name]+"/24")
	}
	ctlEnv := lnsttest.Env("PATH=" + fakebin + ":" + filepath.Dir(gobin) + ":" + os.Getenv("PATH"))
	runCtl := func(b firstPoolBlock, timeout time.Duration) string {
		t.Helper()
		j := ctl.RunArgv(t, []string{"/bin/sh", "-ec", b.text}, lnsttest.Dir(repo), ctlEnv, lnsttest.Timeout(timeout),
			lnsttest.Desc("README.md:"+strconv.Itoa(b.line)+" on the controller"), lnsttest.ExitCodes(0, 1, 2))
		r := j.Result()
		require.Zero(t, r.ExitCode, "README.md:%d, on the controller:\n%s\nfailed:\n%s%s", b.line, b.text, r.Stdout, r.Stderr)
		return r.Stdout + r.Stderr
	}

	started := false
	for _, b := range blocks {
		switch b.kind {
		case "controller":
			out := runCtl(b, 10*time.Minute)
			checkFirstPoolStep(t, b, out, root, repo, homes, addrs)
		case "file":
			text := b.text
			for _, h := range p.Hosts {
				for _, ifc := range h.Ifaces {
					if got := lab.Host(h.Name).Iface(ifc.Name).Name(); got != ifc.Name {
						text = strings.ReplaceAll(text, "name: "+ifc.Name+",", "name: "+got+",")
					}
				}
			}
			require.NoError(t, os.WriteFile(filepath.Join(repo, b.arg), []byte(text), 0o644))
		case "machine":
			require.Contains(t, b.text, b.arg, "README.md:%d: the machine block is for %s", b.line, b.arg)
			for _, h := range p.Hosts {
				cmd := strings.ReplaceAll(b.text, b.arg, addrs[h.Name])
				cmd = strings.ReplaceAll(cmd, "/var/lib/lnst-agent/", filepath.Join(homes[h.Name], "var/lib/lnst-agent")+"/")
				host := lab.Host(h.Name)
				agent := host.Start(t, cmd, lnsttest.Dir(homes[h.Name]), lnsttest.Desc("README.md:"+strconv.Itoa(b.line)+" on "+h.Name), lnsttest.ExitCodes(0, 1))
				_, port, _ := net.SplitHostPort(h.Agent)
				waitListening(t, host, port, agent)
				_, err := os.Stat(filepath.Join(homes[h.Name], "var/lib/lnst-agent/journal"))
				assert.NoError(t, err, "%s: the agent keeps its journal where --journal says", h.Name)
			}
			started = true
		}
	}
	require.True(t, started, "the walk-through started the agents")
}

// checkFirstPoolStep checks what a controller step of the walk-through
// did, by what it ran.
func checkFirstPoolStep(t *testing.T, b firstPoolBlock, out, root, repo string, homes, addrs map[string]string) {
	t.Helper()
	switch {
	case strings.Contains(b.text, "make binaries"):
		for _, c := range []string{"lnst", "lnst-agent"} {
			st, err := os.Stat(filepath.Join(repo, "bin", c))
			require.NoError(t, err, "make binaries builds bin/%s", c)
			assert.NotZero(t, st.Mode()&0o111, "bin/%s is executable", c)
		}
		// make install copies them to $(DESTDIR)$(PREFIX)/bin.
		dest := filepath.Join(repo, "destdir")
		cmd := exec.Command("make", "install", "DESTDIR="+dest, "PREFIX=/usr/local")
		cmd.Dir = repo
		got, err := cmd.CombinedOutput()
		require.NoError(t, err, "make install:\n%s", got)
		for _, c := range []string{"lnst", "lnst-agent"} {
			assert.FileExists(t, filepath.Join(dest, "usr/local/bin", c), "make install")
		}
	case strings.Contains(b.text, "lnst-agent certs "):
		assert.Contains(t, out, "ca-key.pem is the CA's key: it stays on this controller", "certs says the CA's key stays:\n%s", out)
		assert.FileExists(t, filepath.Join(repo, "certs", "ca-key.pem"))
		// The checkout keeps what certs writes out of git.
		if exec.Command("git", "-C", root, "rev-parse", "--git-dir").Run() == nil {
			for _, f := range []string{"certs/ca-key.pem", "certs/ca.pem", "certs/ctl-key.pem", "lab-key.pem"} {
				assert.NoError(t, exec.Command("git", "-C", root, "check-ignore", "-q", f).Run(), "git ignores %s", f)
			}
		}
	case strings.Contains(b.text, "scp "):
		for name, home := range homes {
			var files []string
			entries, err := os.ReadDir(home)
			require.NoError(t, err)
			for _, e := range entries {
				files = append(files, e.Name())
			}
			a := addrs[name]
			assert.ElementsMatch(t, []string{"lnst-agent", "ca.pem", a + ".pem", a + "-key.pem"}, files,
				"%s (%s) gets the agent, ca.pem and its own certificate and key: never ca-key.pem nor another machine's key", name, a)
		}
	case strings.Contains(b.text, "go test "):
		assert.Regexp(t, `lab.yaml: all \d+ host\(s\) ready`, out, "lnst pool check")
		assert.Contains(t, out, "--- PASS: TestPing ", "TestPing on the pool")
		assert.Regexp(t, `match="h1=m\d h2=m\d"`, out, "TestPing ran on pool machines")
		assert.Contains(t, out, "ok  \tgithub.com/lnst-go/lnst/recipes", "go test from the repository root")
	default:
		t.Fatalf("README.md:%d: a controller step the test does not know how to check:\n%s", b.line, b.text)
	}
}

// copyModule copies the module at root to dst: regular files and
// directories, without .git, ./bin (the pinned tools, or a symlink to
// them), and what the walk-through makes (certs/, lab.yaml).
func copyModule(t *testing.T, root, dst string) {
	t.Helper()
	skip := map[string]bool{".git": true, "bin": true, "certs": true, "lab.yaml": true}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if skip[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		}
		return nil // symlinks and the like: the module has none it builds from
	})
	require.NoError(t, err, "copy the module %s to %s", root, dst)
}
