package lnsttest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fault-injection cases ("zero residue under faults"): each breaks a
// recipe run in one way and checks that every host ends exactly as it
// was, by comparing a snapshot taken before with one taken after.

// snapshotSysctls are the per-namespace sysctls a snapshot reads: the
// fixture's and the forwarding switches recipes commonly turn on.
var snapshotSysctls = []string{"net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv6.conf.all.forwarding"}

// snapshotScript prints the state of the network namespace it runs in, as
// sections "### <name>" of ip(8) and bridge(8) JSON, and the sysctls; with
// hostWide, also the host-wide sysctl the fixture changes, which every
// namespace would show alike.
func snapshotScript(hostWide bool) string {
	sysctls := snapshotSysctls
	if hostWide {
		sysctls = append([]string{globalSysctl}, sysctls...)
	}
	return `set -e
sec() { echo "### $1"; shift; "$@"; echo; }
sec links ip -j link show
sec addrs ip -j addr show
sec routes ip -j -4 route show table all
sec routes ip -j -6 route show table all
sec neigh ip -j neigh show nud permanent
sec rules ip -j -4 rule show
sec rules ip -j -6 rule show
sec bridge bridge -j link show
echo "### xfrm"
ip xfrm state 2>/dev/null | grep -e '^src ' -e '^	proto ' | sed 's/^/state /'
ip xfrm policy 2>/dev/null | grep -v -e '^	lastused' | sed 's/^/policy /'
if command -v nft >/dev/null; then nft -s list ruleset 2>/dev/null | sed 's/^/nft /'; fi
echo "### sysctl"
for k in ` + strings.Join(sysctls, " ") + `; do echo "$k=$(cat /proc/sys/$(echo $k | tr . /))"; done
`
}

// snapshot is what a recipe must leave as it found it: the named network
// namespaces, the state of the root network namespace and of each of hosts
// (links with their state, master, MTU and address; addresses; routes of
// every table; permanent neighbours; rules; bridge ports; the sysctls of
// snapshotSysctls), the host-wide kernel.msgmax, and the processes whose
// environment holds marker. It
// is one line per item, sorted within each namespace, for diff.
func snapshot(t *testing.T, marker string, hosts ...*lnsttest.Host) string {
	t.Helper()
	netns, err := exec.Command("ip", "netns", "list").CombinedOutput()
	require.NoError(t, err, "ip netns list: %s", netns)
	lines := []string{fmt.Sprintf("netns %q", bytes.TrimSpace(netns))}
	root, err := exec.Command("sh", "-c", snapshotScript(true)).CombinedOutput()
	require.NoError(t, err, "snapshot of the root namespace: %s", root)
	lines = append(lines, namespaceState(t, "root", string(root))...)
	for _, h := range hosts {
		out := h.Output(t, snapshotScript(false), lnsttest.Quiet(), lnsttest.Desc("snapshot"))
		lines = append(lines, namespaceState(t, h.Name(), out)...)
	}
	for _, pid := range processesWith(marker) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		lines = append(lines, fmt.Sprintf("process %d %q", pid, bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '})))
	}
	return strings.Join(lines, "\n") + "\n"
}

// volatileKeys are fields of ip(8) JSON that change on their own.
var volatileKeys = []string{"expires", "valid_life_time", "preferred_life_time", "ifindex", "stats", "stats64"}

// namespaceState turns snapshotScript's output into sorted lines prefixed
// with ns.
func namespaceState(t *testing.T, ns, out string) []string {
	t.Helper()
	var lines []string
	sections := strings.Split(out, "### ")
	for _, s := range sections[1:] {
		name, body, _ := strings.Cut(s, "\n")
		body = strings.TrimSpace(body)
		if name == "xfrm" {
			for _, l := range strings.Split(body, "\n") {
				if l != "" {
					lines = append(lines, ns+" xfrm "+strings.TrimSpace(l))
				}
			}
			continue
		}
		if name == "sysctl" {
			for _, l := range strings.Split(body, "\n") {
				lines = append(lines, ns+" sysctl "+l)
			}
			continue
		}
		var items []map[string]any
		if body != "" {
			require.NoError(t, json.Unmarshal([]byte(body), &items), "%s: %s section: %s", ns, name, body)
		}
		for _, it := range items {
			for _, l := range itemLines(name, it) {
				lines = append(lines, ns+" "+name+" "+l)
			}
		}
	}
	slices.Sort(lines)
	return lines
}

// itemLines renders one JSON item of a section: links by the fields that
// matter, addresses one per line, the rest whole but for volatile fields.
func itemLines(section string, it map[string]any) []string {
	switch section {
	case "links":
		return []string{fmt.Sprintf("%v flags=%v state=%v master=%v mtu=%v address=%v",
			it["ifname"], it["flags"], it["operstate"], orNone(it["master"]), it["mtu"], it["address"])}
	case "addrs":
		var out []string
		infos, _ := it["addr_info"].([]any)
		for _, a := range infos {
			a, _ := a.(map[string]any)
			out = append(out, fmt.Sprintf("%v %v %v/%v scope %v", it["ifname"], a["family"], a["local"], a["prefixlen"], a["scope"]))
		}
		return out
	}
	for _, k := range volatileKeys {
		delete(it, k)
	}
	b, _ := json.Marshal(it) // map keys sorted
	return []string{string(b)}
}

func orNone(v any) any {
	if v == nil {
		return "-"
	}
	return v
}

// snapshotDiff lists the lines only in before ("-") and only in after
// ("+"); "" when the snapshots are the same.
func snapshotDiff(before, after string) string {
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	var d strings.Builder
	for _, l := range b {
		if !slices.Contains(a, l) {
			d.WriteString("- " + l + "\n")
		}
	}
	for _, l := range a {
		if !slices.Contains(b, l) {
			d.WriteString("+ " + l + "\n")
		}
	}
	return d.String()
}

// waitSame polls now until it returns before or timeout passes. It
// returns how long that took, or marks the test failed with the
// difference and returns false.
func waitSame(t *testing.T, what string, before string, timeout time.Duration, now func() string) (time.Duration, bool) {
	t.Helper()
	start := time.Now()
	var after string
	for deadline := start.Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		if after = now(); after == before {
			return time.Since(start), true
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Errorf("%s: not as before after %v (- before, + after):\n%s", what, timeout, snapshotDiff(before, after))
	return 0, false
}

// TestE2EKilledLeavesNothing SIGKILLs the test binary mid-recipe: it runs
// no cleanup at all; its lab agent sees its stdin close and restores at
// once.
func TestE2EKilledLeavesNothing(t *testing.T) {
	c := fixture(t, "wait")
	before := machine(t, c)
	require.NoError(t, c.cmd.Start())
	waitFor(t, c, readyLine)
	requireChanged(t, before, c)
	require.NoError(t, syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL))
	c.wait(t)
	ws := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child ended by SIGKILL: %v", c.cmd.ProcessState)
	took, ok := waitSame(t, "the machine after the test binary was killed", before, 5*time.Second, func() string { return machine(t, c) })
	require.True(t, ok)
	t.Logf("the lab agent restored the machine %v after the test binary died", took.Round(10*time.Millisecond))
}

// poolLab is the pool TestE2EPoolOverMutualTLS sets up: lab hosts running
// lnst-agent on TCP with mutual TLS, and a controller host "ctl" that runs
// test binaries with -lnst.pool.
type poolLab struct {
	lab      *lnsttest.Match
	machines []string
	// addrs are the machines' control addresses, in the order of machines.
	addrs []string
	dir   string
	// agents are the machines' agent jobs and argv, by machine.
	agents    map[string]*lnsttest.Job
	agentArgv map[string][]string
}

// hosts are the lab hosts a pool snapshot covers: the controller and
// every machine.
func (p *poolLab) hosts() []*lnsttest.Host {
	hs := []*lnsttest.Host{p.lab.Host("ctl")}
	for _, m := range p.machines {
		hs = append(hs, p.lab.Host(m))
	}
	return hs
}

// startFixture runs fixture case c on the pool from the controller host;
// the fixture's jobs carry marker+"-job" in their environment.
func (p *poolLab) startFixture(t *testing.T, c, marker string, env ...string) *lnsttest.Job {
	t.Helper()
	return p.lab.Host("ctl").StartArgv(t, []string{filepath.Join(p.dir, "lnsttest.test"), "-test.run=^TestFixture$", "-test.v",
		"-lnst.pool=" + filepath.Join(p.dir, "pool.yaml")},
		lnsttest.Env(append([]string{caseEnv + "=" + c, markerEnv + "=" + marker}, env...)...), lnsttest.Dir(p.dir),
		lnsttest.Desc("fixture "+c+" on the pool"), lnsttest.ExitCodes(0, 1))
}

// waitSleeper waits until the fixture's background sleep runs, and
// returns the machine whose agent started it (the fixture's h1).
func (p *poolLab) waitSleeper(t *testing.T, marker string, fixture *lnsttest.Job) string {
	t.Helper()
	var machine string
	lnsttest.WaitFor(t, "the fixture's sleeper on the pool", 60*time.Second, func() bool {
		for _, pid := range processesWith(marker + "-job") {
			// The sleep itself, not only the shell that forks it.
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if m := p.agentOf(pid); m != "" && bytes.HasPrefix(cmdline, []byte("sleep\x00")) {
				machine = m
				return true
			}
		}
		select {
		case <-fixture.Done():
			r := fixture.Result()
			t.Fatalf("the fixture ended (code %d) before it started its sleeper:\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
		default:
		}
		return false
	})
	return machine
}

// agentOf returns the machine whose agent is an ancestor of pid, "" if
// none is.
func (p *poolLab) agentOf(pid int) string {
	for ; pid > 1; pid = parentPid(pid) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return ""
		}
		for i, a := range p.addrs {
			if bytes.Contains(cmdline, []byte("\x00"+a+":7000\x00")) {
				return p.machines[i]
			}
		}
	}
	return ""
}

func parentPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// poolFaults runs the fault cases that need the pool; p is shared, and
// each case leaves it as it found it.
func poolFaults(t *testing.T, p *poolLab) {
	t.Run("controller killed", func(t *testing.T) { controllerKilled(t, p) })
	t.Run("agent unreachable beyond the lease TTL", func(t *testing.T) { agentUnreachable(t, p) })
	// Last: the restarted agent is a job of this subtest, gone at its end.
	t.Run("agent killed and restarted", func(t *testing.T) { agentKilled(t, p) })
}

// controllerKilled runs the e2e fixture on the pool from the controller
// host, SIGKILLs it mid-recipe, and checks that the agents restore the
// machines on their own once its lease expires: a bridge the recipe made
// with a raw command goes too, by its Undo command.
func controllerKilled(t *testing.T, p *poolLab) {
	marker := fmt.Sprintf("pool-kill-%d", time.Now().UnixNano())
	before := snapshot(t, marker, p.hosts()...)
	job := p.startFixture(t, "wait", marker, undoEnv+"=1", xfrmEnv+"=1")
	p.waitSleeper(t, marker, job)
	during := snapshot(t, marker, p.hosts()...)
	require.NotEqual(t, before, during)
	require.Contains(t, during, " xfrm policy src "+e2eXfrmSel, "the fixture's IPsec policies are on its h1")
	if _, err := exec.LookPath("nft"); err == nil {
		require.Contains(t, during, " xfrm nft table inet "+e2eNftTable, "the fixture's nftables table is on its h1")
	}
	require.Contains(t, during, " links "+undoBridge+" ", "the fixture's raw command made its bridge; only its Undo takes it away")
	killed := time.Now()
	job.Kill(t, syscall.SIGKILL)
	<-job.Done()
	waitSame(t, "the pool after the controller was killed", before, leaseTTL+5*time.Second-time.Since(killed),
		func() string { return snapshot(t, marker, p.hosts()...) })
	t.Logf("the agents restored the pool hosts %v after the controller was killed (lease TTL %v)", time.Since(killed).Round(100*time.Millisecond), leaseTTL)
}

// agentUnreachable cuts the controller off its agents (its control
// interface down) for longer than the lease TTL: each agent restores on
// its own within TTL+5s; with the interface back, the recipe, which then
// changes its hosts again, must fail clearly rather than hang or carry on
// on hosts restored under it.
func agentUnreachable(t *testing.T, p *poolLab) {
	marker := fmt.Sprintf("pool-cut-%d", time.Now().UnixNano())
	machines := p.hosts()[1:]
	before := snapshot(t, marker, p.hosts()...)
	beforeMachines := snapshot(t, marker+"-job", machines...)
	poke := filepath.Join(p.dir, marker+".poke")
	job := p.startFixture(t, "poke", marker, pokeEnv+"="+poke)
	p.waitSleeper(t, marker, job)

	ctl0 := p.lab.Host("ctl").Iface("ctl0")
	ctl0.Down(t)
	cut := time.Now()
	took, ok := waitSame(t, "the pool machines while the controller is cut off", beforeMachines, leaseTTL+5*time.Second,
		func() string { return snapshot(t, marker+"-job", machines...) })
	if ok {
		t.Logf("the agents restored the pool machines %v after the controller was cut off (lease TTL %v)", took.Round(100*time.Millisecond), leaseTTL)
	}
	time.Sleep(time.Until(cut.Add(leaseTTL + 2*time.Second)))
	ctl0.Up(t)

	require.NoError(t, os.WriteFile(poke, nil, 0o644))
	select {
	case <-job.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the recipe still runs 30s after its hosts were restored under it: it hangs")
	}
	r := job.Result()
	out := r.Stdout + r.Stderr
	assert.Equal(t, 1, r.ExitCode, "the recipe fails once its lease expired:\n%s", out)
	assert.Regexp(t, `lease`, out, "the failure says the lease expired")
	waitSame(t, "the pool after the recipe ended", before, 10*time.Second, func() string { return snapshot(t, marker, p.hosts()...) })
}

// agentKilled SIGKILLs the agent serving the recipe's h1 mid-recipe and
// starts it again with the same --journal: the journal replay restores
// that machine (the other machines stay the recipe's), a bridge the
// recipe made with a raw command there by its Undo command, and the recipe,
// which then changes h1 again, fails with an error naming the host.
func agentKilled(t *testing.T, p *poolLab) {
	marker := fmt.Sprintf("pool-agent-%d", time.Now().UnixNano())
	before := snapshot(t, marker, p.hosts()...)
	t.Cleanup(func() {
		// A job the killed agent left (reported as a failure): this
		// machine is not to keep it.
		for _, pid := range processesWith(marker + "-job") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	poke := filepath.Join(p.dir, marker+".poke")
	job := p.startFixture(t, "poke", marker, pokeEnv+"="+poke, undoEnv+"=1")
	m := p.waitSleeper(t, marker, job)
	require.Contains(t, snapshot(t, marker+"-job", p.lab.Host(m)), m+" links "+undoBridge+" ",
		"the fixture's raw command made its bridge on %s; only its Undo, replayed from the journal, takes it away", m)

	p.agents[m].Kill(t, syscall.SIGKILL)
	<-p.agents[m].Done()
	h := p.lab.Host(m)
	var restarted *lnsttest.Job
	t.Cleanup(func() { // after the restarted agent's job is killed
		if t.Failed() && restarted != nil {
			t.Logf("the restarted agent's log:\n%s", restarted.Result().Stderr)
		}
	})
	restarted = h.StartArgv(t, p.agentArgv[m], lnsttest.Desc("lnst-agent on "+m+", restarted"), lnsttest.ExitCodes(0, 1))
	p.agents[m] = restarted
	waitListening(t, h, "7000", restarted)
	var others []string
	for _, o := range p.machines {
		if o != m {
			others = append(others, o)
		}
	}
	took, ok := waitSame(t, m+" after its agent was killed and restarted", withoutHosts(before, others...), 10*time.Second,
		func() string { return snapshot(t, marker+"-job", p.lab.Host("ctl"), h) })
	if ok {
		t.Logf("%s restored %v after its agent restarted", m, took.Round(100*time.Millisecond))
	}

	require.NoError(t, os.WriteFile(poke, nil, 0o644))
	select {
	case <-job.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the recipe still runs 30s after its agent restarted: it hangs")
	}
	r := job.Result()
	out := r.Stdout + r.Stderr
	assert.Equal(t, 1, r.ExitCode, "the recipe fails once its agent lost its changes:\n%s", out)
	assert.Regexp(t, `\b(h1|`+m+`)\b.*(restart|journal|lost|lease)`, out, "the failure names the host and says what happened")
	waitSame(t, "the pool after the recipe ended", before, 10*time.Second, func() string { return snapshot(t, marker, p.hosts()...) })
}

// withoutHosts drops the lines of the named hosts from a snapshot.
func withoutHosts(snap string, names ...string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSuffix(snap, "\n"), "\n") {
		host, _, _ := strings.Cut(l, " ")
		if !slices.Contains(names, host) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n") + "\n"
}
