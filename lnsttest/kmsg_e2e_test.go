package lnsttest_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/kernelpkg"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/lnst-go/lnst/pool/vmimage"
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The kernel log and sysinfo tests run this test binary again as a child
// whose TestKmsgFixture plays the case named by kmsgCaseEnv on the
// namespace lab, and check how it ended and what its results say.

const (
	kmsgCaseEnv   = "LNST_KMSG_CASE"
	kmsgMarkerEnv = "LNST_KMSG_MARKER"
)

// fakeWarning is the WARNING line the fixture writes into the kernel log,
// as a WARN_ON's first line reads; marker tells this run's from others'.
func fakeWarning(marker string) string {
	return "WARNING: CPU: 0 PID: 1 at net/core/dev.c:1234 lnst_fake_" + marker + "+0x0/0x10"
}

func TestKmsgFixture(t *testing.T) {
	c := os.Getenv(kmsgCaseEnv)
	if c == "" {
		t.Skip("fixture: runs only as a child of the kernel log tests (requires " + kmsgCaseEnv + ")")
	}
	marker := os.Getenv(kmsgMarkerEnv)
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.31.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.31.2/24")
	// The lab's hosts share this machine's /dev; a host's job writes the
	// line, as a recipe provoking a warning would through its host.
	warn := func() {
		h1.RunArgv(t, []string{"/bin/sh", "-c", `printf '<4>%s\n' "$1" > /dev/kmsg`, "sh", fakeWarning(marker)}, lnsttest.Desc("fake kernel WARNING"))
	}
	switch c {
	case "kwarn":
		kernelWarn(t, h1)
	case "kwarn-allowed":
		lnsttest.AllowKernelLog(t, `^WARNING: .* at .*lnst_warn\.c:\d+ lnst_warn_set`)
		kernelWarn(t, h1)
	case "clean":
		modules.Ping{Dst: "198.18.31.2", Count: 2, Interval: 200 * time.Millisecond}.Run(t, h1)
	case "warn":
		warn()
	case "allowed":
		lnsttest.AllowKernelLog(t, `WARNING: .* at net/core/dev\.c:\d+ lnst_fake_`+marker)
		warn()
	case "allowed-other":
		lnsttest.AllowKernelLog(t, `WARNING: .* at net/ipv4/`)
		warn()
	case "badregexp":
		lnsttest.AllowKernelLog(t, `WARNING: (unclosed`)
	case "tbf":
		// tbf drops what exceeds its rate and its small queue (ping -l
		// sends 20 at once, so this holds however slowly a loaded
		// machine paces the rest): ping's
		// sends fail (ENOBUFS), counted in the host's Ip OutDiscards.
		// A qdisc on a device with no queue length (the lab's veths)
		// gives it the default one: the removal puts it back.
		dev := h1.Iface("eth0").Name()
		qlen := h1.ReadSysfs(t, "/sys/class/net/"+dev+"/tx_queue_len")
		h1.Run(t, "tc qdisc add dev "+dev+" root tbf rate 1mbit burst 1600 limit 3000")
		t.Cleanup(func() { h1.Run(t, "tc qdisc del dev "+dev+" root && ip link set dev "+dev+" txqueuelen "+qlen) })
		h1.Run(t, "ping -q -c 200 -i 0.002 -l 20 -s 1400 -W 1 198.18.31.2 || true", lnsttest.Desc("ping through tbf"))
	default:
		t.Fatalf("unknown fixture case %q", c)
	}
}

// kernelWarn makes the VM guest h's kernel WARN with the image's
// lnst_warn.ko (see pool/vmimage/warnmod.go), or fails naming why the
// image has none.
func kernelWarn(t *testing.T, h *lnsttest.Host) {
	h.Run(t, `d=/lib/modules/$(uname -r); if [ ! -e $d/`+vmimage.WarnModulePath+` ]; then echo "the VM image has no lnst_warn.ko: $(cat $d/`+vmimage.WarnModuleMissing+`)" >&2; exit 1; fi; modprobe lnst_warn`, lnsttest.Desc("load lnst_warn"))
	h.Run(t, "echo 1 > "+kernelpkg.WarnTrigger, lnsttest.Desc("kernel WARNING on purpose"))
}

// kmsgChild runs case c of TestKmsgFixture with -lnst.results in a new
// directory and returns its exit code, output and results.
func kmsgChild(t *testing.T, c string, args ...string) (int, string, *results.Run) {
	code, out, run, _ := kmsgChildDir(t, c, args...)
	return code, out, run
}

// kmsgChildDir is kmsgChild, also returning the results directory.
func kmsgChildDir(t *testing.T, c string, args ...string) (int, string, *results.Run, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the namespace lab and writing /dev/kmsg require root")
	}
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		t.Skipf("no kernel log to write to: %v", err)
	}
	dir := t.TempDir()
	marker := markerFor(t)
	// all: the fixture's line is written by a process, not the kernel.
	argv := append([]string{"-test.run=^TestKmsgFixture$", "-test.v", "-lnst.results=" + dir, "-lnst.kernel-log=all"}, args...)
	cmd := exec.Command(os.Args[0], argv...)
	cmd.Env = append(os.Environ(), kmsgCaseEnv+"="+c, kmsgMarkerEnv+"="+marker)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ch := &child{cmd: cmd, out: out, marker: marker}
	code := ch.run(t)
	run, err := results.Read(filepath.Join(dir, results.FileName))
	if err != nil && code != 2 {
		t.Fatalf("results.json: %v; output:\n%s", err, out)
	}
	return code, out.String(), run, dir
}

func markerFor(t *testing.T) string {
	var r [6]byte
	_, err := rand.Read(r[:])
	require.NoError(t, err)
	return hex.EncodeToString(r[:])
}

// fixtureRecipe is the fixture's recipe in run.
func fixtureRecipe(t *testing.T, run *results.Run) results.Recipe {
	t.Helper()
	for _, r := range run.Recipes {
		if r.Name == "TestKmsgFixture" {
			return r
		}
	}
	t.Fatalf("results.json has no TestKmsgFixture: %+v", run.Recipes)
	return results.Recipe{}
}

// TestKernelLogWarningFails: a WARNING in the kernel log during a recipe
// fails it, with the line in its failure and in results.json, and says
// that the namespace lab's hosts share the kernel.
func TestKernelLogWarningFails(t *testing.T) {
	code, out, run := kmsgChild(t, "warn")
	require.Equal(t, 1, code, out)
	marker := regexp.MustCompile(`lnst_fake_([0-9a-f]+)`).FindStringSubmatch(out)
	require.NotNil(t, marker, out)
	assert.Regexp(t, `kernel log: warning in this machine's kernel, which the namespace lab's hosts \(h1, h2\) share: it is the recipe's by its time window only`, out)
	assert.Contains(t, out, fakeWarning(marker[1]))
	assert.Contains(t, out, "--- FAIL: TestKmsgFixture")
	r := fixtureRecipe(t, run)
	assert.Equal(t, results.Fail, r.Verdict)
	require.NotEmpty(t, r.KernelLog)
	sp := r.KernelLog[len(r.KernelLog)-1]
	assert.Equal(t, fakeWarning(marker[1]), sp.Lines[0])
	assert.Equal(t, "warning", sp.Kind)
	assert.False(t, sp.Allowed)
	assert.True(t, sp.SharedKernel)
	assert.ElementsMatch(t, []string{"h1", "h2"}, sp.Hosts)
}

// TestKernelLogAllowed: the same WARNING, allowed by AllowKernelLog,
// passes and is kept as allowed; one another regexp does not match
// fails it.
func TestKernelLogAllowed(t *testing.T) {
	code, out, run := kmsgChild(t, "allowed")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "allowed by lnsttest.AllowKernelLog")
	r := fixtureRecipe(t, run)
	require.NotEmpty(t, r.KernelLog)
	assert.True(t, r.KernelLog[len(r.KernelLog)-1].Allowed)

	code, out, _ = kmsgChild(t, "allowed-other")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "kernel log: warning in")
}

// TestKernelLogCleanPasses: a recipe during which the kernel logs no
// splat passes, and its hosts' counters and system are in results.json.
func TestKernelLogCleanPasses(t *testing.T) {
	code, out, run := kmsgChild(t, "clean")
	require.Equal(t, 0, code, out)
	r := fixtureRecipe(t, run)
	assert.Empty(t, r.KernelLog)
	require.Len(t, r.Sysinfo, 2, "a delta per host")
	for _, d := range r.Sysinfo {
		// Two pings went out of h1's eth0 and came into h2's.
		if d.Host == "h1" {
			assert.GreaterOrEqual(t, d.Deltas["link/eth0/tx_packets"], int64(2), "%v", d.Deltas)
			assert.GreaterOrEqual(t, d.Deltas["snmp/Icmp/OutEchos"], int64(2), "%v", d.Deltas)
		}
	}
	var sys int
	for _, h := range run.Hosts {
		if h.System != nil {
			sys++
			assert.NotEmpty(t, h.System.Kernel)
			assert.NotEmpty(t, h.System.Cmdline)
			assert.Positive(t, h.System.CPUs)
			require.Len(t, h.System.NICs, 1, "%s: its matched interface", h.Name)
			assert.Equal(t, "veth", h.System.NICs[0].Driver)
		}
	}
	assert.Equal(t, 2, sys, "each host's system once: %+v", run.Hosts)
}

// TestKernelLogUserLinesIgnored: by default, a WARNING line a process
// wrote into /dev/kmsg is not the kernel's and fails nothing.
func TestKernelLogUserLinesIgnored(t *testing.T) {
	code, out, run := kmsgChild(t, "warn", "-lnst.kernel-log=on")
	require.Equal(t, 0, code, out)
	assert.Empty(t, fixtureRecipe(t, run).KernelLog)
	code, out, _ = kmsgChild(t, "clean", "-lnst.kernel-log=maybe")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, `lnsttest: -lnst.kernel-log: unknown kernel-log value "maybe" (want on, all or off)`)
}

// TestKernelLogBadRegexp: an invalid AllowKernelLog regexp fails the
// test, naming it.
func TestKernelLogBadRegexp(t *testing.T) {
	code, out, _ := kmsgChild(t, "badregexp")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "lnsttest.AllowKernelLog: invalid regexp \"WARNING: (unclosed\"")
}

// TestSysinfoTbfDrops: a recipe whose tbf qdisc drops packets shows a
// non-zero drop counter delta in its RESULTS SUMMARY and results.json.
func TestSysinfoTbfDrops(t *testing.T) {
	code, out, run := kmsgChild(t, "tbf")
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `(?m)^\s+h1\s+snmp/Ip/OutDiscards\s+\+[1-9]\d*$`, out)
	r := fixtureRecipe(t, run)
	var found bool
	for _, d := range r.Sysinfo {
		if d.Host == "h1" {
			found = d.Deltas["snmp/Ip/OutDiscards"] > 0
		}
	}
	assert.True(t, found, "h1's Ip OutDiscards went up: %+v", r.Sysinfo)
}

// TestSysinfoLevels: -lnst.sysinfo=off reads no counters; full also
// writes every counter before and after in a file per host; an unknown
// value stops the binary with exit code 2, naming it.
func TestSysinfoLevels(t *testing.T) {
	code, out, run := kmsgChild(t, "clean", "-lnst.sysinfo=off")
	require.Equal(t, 0, code, out)
	assert.Empty(t, fixtureRecipe(t, run).Sysinfo)

	code, out, run, dir := kmsgChildDir(t, "clean", "-lnst.sysinfo=full")
	require.Equal(t, 0, code, out)
	deltas := fixtureRecipe(t, run).Sysinfo
	require.Len(t, deltas, 2)
	for _, d := range deltas {
		require.NotEmpty(t, d.File, d.Host)
		assert.Equal(t, run.ID+"."+d.Host+".sysinfo.json", filepath.Base(d.File), "the file carries the run's id")
		b, err := os.ReadFile(filepath.Join(dir, d.File))
		require.NoError(t, err)
		var all struct{ Before, After map[string]uint64 }
		require.NoError(t, json.Unmarshal(b, &all))
		for k, v := range d.Deltas {
			assert.Equal(t, v, int64(all.After[k]-all.Before[k]), "%s %s", d.Host, k)
		}
		assert.Contains(t, all.Before, "snmp/Ip/OutRequests")
	}

	code, out, _ = kmsgChild(t, "clean", "-lnst.sysinfo=verbose")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, `lnsttest: -lnst.sysinfo: unknown sysinfo level "verbose" (want off, summary or full)`)
}

// TestKernelLogVMLab: on the VM lab each host has its own kernel. The
// image carries lnst_warn.ko (Debian's cloud kernel has no lkdtm: see
// README), which makes h1's kernel WARN for real, watched with the
// default -lnst.kernel-log=on (the kernel's own lines only). It fails the
// recipe with the WARNING's first line, naming only h1 (whose kernel
// logged it) without the shared-kernel caveat, and the failed recipe
// keeps both guests' agent logs; allowed, it passes; a clean recipe
// passes and has its guests' counter deltas.
func TestKernelLogVMLab(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU guests: not run with -short")
	}
	if err := vmimage.Check(); err != nil {
		t.Skipf("the VM lab requires its tools: %v", err)
	}
	code, out, run, dir := kmsgChildDir(t, "kwarn", "-lnst.lab=vm", "-lnst.agent-log=debug", "-lnst.kernel-log=on")
	require.Equal(t, 1, code, out)
	require.NotRegexp(t, `the VM image has no lnst_warn\.ko: [^$]`, out, "see the image build's vmimage: WARNING line")
	first := `WARNING: CPU: \d+ PID: \d+ at \S*lnst_warn\.c:\d+ lnst_warn_set\+0x[0-9a-f]+/0x[0-9a-f]+ \[lnst_warn\]`
	assert.Regexp(t, `kernel log: warning in the kernel of h1 during the recipe(.|\n)*`+first, out)
	r := fixtureRecipe(t, run)
	require.Len(t, r.KernelLog, 1, out)
	assert.Equal(t, []string{"h1"}, r.KernelLog[0].Hosts)
	assert.False(t, r.KernelLog[0].SharedKernel)
	assert.Equal(t, "warning", r.KernelLog[0].Kind)
	assert.Regexp(t, "^"+first, r.KernelLog[0].Lines[0])
	require.Len(t, r.AgentLogs, 2, "each VM host's agent log: %s", out)
	logs := map[string]string{}
	for _, l := range r.AgentLogs {
		assert.Equal(t, run.ID+"."+l.Host+".agent.log", filepath.Base(l.File), "the file carries the run's id")
		b, err := os.ReadFile(filepath.Join(dir, l.File))
		require.NoError(t, err)
		logs[l.Host] = string(b)
	}
	// At level debug the agent logs each job it starts: h1 ran the one
	// that triggered the warning; h2 ran none.
	assert.Regexp(t, `lnst-agent\[\d+\]: job started: .*argv=.*lnst_warn/parameters/trigger`, logs["h1"])
	assert.Contains(t, logs, "h2")

	code, out, run = kmsgChild(t, "kwarn-allowed", "-lnst.lab=vm", "-lnst.kernel-log=on")
	assert.Equal(t, 0, code, out)
	if r := fixtureRecipe(t, run); assert.Len(t, r.KernelLog, 1, out) {
		assert.True(t, r.KernelLog[0].Allowed)
		assert.Regexp(t, "^"+first, r.KernelLog[0].Lines[0])
	}

	code, out, run = kmsgChild(t, "clean", "-lnst.lab=vm", "-lnst.kernel-log=on")
	require.Equal(t, 0, code, out)
	r = fixtureRecipe(t, run)
	assert.Empty(t, r.KernelLog)
	assert.Empty(t, r.AgentLogs, "kept only when the recipe failed")
	require.Len(t, r.Sysinfo, 2, "a delta per guest")
}
