package lnsttest_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The provisioner tests run this test binary again as a child whose
// TestProvisionFixture gets its hosts from an exec provisioner backed by
// a fake external service (testdata/provision): its scripts wait and fail
// at random, and its machines are lnst-agent processes on unix sockets.

const (
	provCaseEnv = "LNST_PROV_CASE"
	// provKilledEnv names the file the "kill" case makes when it killed
	// its host's agent: the rerun finds it and passes.
	provKilledEnv = "LNST_PROV_KILLED"
)

func TestProvisionFixture(t *testing.T) {
	c := os.Getenv(provCaseEnv)
	if c == "" {
		t.Skip("fixture: runs only as a child of the provisioner e2e tests (requires " + provCaseEnv + ")")
	}
	switch c {
	case "two":
		// Reservations hang: the parent interrupts this.
		lnsttest.Require(t,
			lnsttest.HostReq("h1", lnsttest.IfaceReq("lo", lnsttest.Net("n1"))),
			lnsttest.HostReq("h2", lnsttest.IfaceReq("lo", lnsttest.Net("n1"))))
		t.Fatal("Require returned, but the reservations should still hang")
	case "kill":
		m := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("lo", lnsttest.Net("n1"))))
		h1 := m.Host("h1")
		h1.Run(t, "true", lnsttest.Desc("before"))
		if _, err := os.Stat(os.Getenv(provKilledEnv)); err != nil {
			require.NoError(t, os.WriteFile(os.Getenv(provKilledEnv), nil, 0o644))
			killAgents(t, os.Getenv("FAKE_STATE"))
		}
		h1.Run(t, "true", lnsttest.Desc("after"))
	default:
		t.Fatalf("unknown fixture case %q", c)
	}
}

// killAgents kills, as a machine dies, the agent of every reservation
// the fake service holds.
func killAgents(t *testing.T, state string) {
	t.Helper()
	held, err := os.ReadDir(filepath.Join(state, "held"))
	require.NoError(t, err)
	require.NotEmpty(t, held, "no reservation is held")
	for _, h := range held {
		b, err := os.ReadFile(filepath.Join(state, "agents", h.Name()+".pid"))
		require.NoError(t, err)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		require.NoError(t, err)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		t.Logf("killed the agent of %s (pid %d)", h.Name(), pid)
	}
}

// fakeProv is the fake service of one test and the child using it.
type fakeProv struct {
	state, results string
	cmd            *exec.Cmd
	out            *lockedBuffer
	marker         string
}

// newFakeProv writes a pool file whose provisioner "fake" (max machines)
// runs testdata/provision's scripts, and prepares a child running case c
// of TestProvisionFixture on it; env is the fake service's settings.
func newFakeProv(t *testing.T, c string, max int, env ...string) *fakeProv {
	t.Helper()
	if testing.Short() {
		t.Skip("builds lnst-agent and runs the test binary again; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("requires the go command to build lnst-agent")
	}
	dir := t.TempDir()
	root := moduleRoot(t, gobin)
	agentBin := filepath.Join(dir, "lnst-agent")
	build(t, root, gobin, "build", "-o", agentBin, "./cmd/lnst-agent")
	scripts, err := filepath.Abs("testdata/provision")
	require.NoError(t, err)
	f := &fakeProv{state: filepath.Join(dir, "state"), results: filepath.Join(dir, "results"), out: &lockedBuffer{}}
	require.NoError(t, os.Mkdir(f.state, 0o755))
	poolFile := filepath.Join(dir, "pool.yaml")
	require.NoError(t, os.WriteFile(poolFile, fmt.Appendf(nil, `provisioners:
  - name: fake
    reserve: %s/reserve.sh
    release: %s/release.sh
    max: %d
    timeout: 1m
    idle: 1m
    interfaces:
      - {name: lo, network: n1}
`, scripts, scripts, max), 0o644))
	var r [8]byte
	rand.Read(r[:])
	f.marker = hex.EncodeToString(r[:])
	f.cmd = exec.Command(os.Args[0], "-test.run=^TestProvisionFixture$", "-test.v", "-lnst.pool="+poolFile, "-lnst.results="+f.results)
	f.cmd.Env = append(os.Environ(), provCaseEnv+"="+c, markerEnv+"="+f.marker, "FAKE_STATE="+f.state, "FAKE_AGENT="+agentBin,
		provKilledEnv+"="+filepath.Join(dir, "killed"))
	f.cmd.Env = append(f.cmd.Env, env...)
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		if f.cmd.Process != nil && f.cmd.ProcessState == nil {
			syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
			f.cmd.Wait()
		}
		for _, pid := range processesWith(f.marker) {
			syscall.Kill(pid, syscall.SIGKILL) // what a failed test left
		}
	})
	return f
}

// ls lists a directory of the fake service's state, sorted.
func (f *fakeProv) ls(sub string) []string {
	ents, _ := os.ReadDir(filepath.Join(f.state, sub))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// wait waits, bounded, for the child to end.
func (f *fakeProv) wait(t *testing.T) {
	t.Helper()
	if !endsWithin(f.cmd, 3*time.Minute) {
		t.Fatalf("the child did not end within 3m; output:\n%s", f.out)
	}
}

// TestE2EProvisionInterrupted interrupts a run (Ctrl-C, SIGTERM) while one
// of its two reservations is done and the other hangs: the pending one is
// cancelled and released, the machine held is released, and no process
// is left.
func TestE2EProvisionInterrupted(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { provisionInterrupted(t, sig) })
	}
}

func provisionInterrupted(t *testing.T, sig syscall.Signal) {
	f := newFakeProv(t, "two", 2, "FAKE_SEED=1", "FAKE_FAIL=0", "FAKE_HANG=2")
	require.NoError(t, f.cmd.Start())
	lnsttest.WaitFor(t, "one machine reserved and one reservation pending", 30*time.Second, func() bool {
		return strings.Contains(f.out.String(), "is machine fake/r1") && len(f.ls("held")) == 2 && len(f.ls("attempts")) == 2
	})
	require.Empty(t, f.ls("released"), "nothing is released before the interrupt")
	require.NoError(t, syscall.Kill(f.cmd.Process.Pid, sig))
	f.wait(t)
	out := f.out.String()
	ws, ok := f.cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	assert.True(t, ws.Signaled() && ws.Signal() == sig, "the child dies of %v, not %v:\n%s", sig, f.cmd.ProcessState, out)
	assert.Contains(t, out, "lnsttest: "+sig.String()+": restoring every host")
	assert.Equal(t, []string{"r1.pid"}, f.ls("agents"), "r2 was cancelled while pending: it never got a machine")
	assert.Empty(t, f.ls("held"), "reservations still held after SIGINT:\n%s", out)
	assert.Equal(t, []string{"r1", "r2"}, f.ls("released"), "both reservations, held and pending, are released")
	lnsttest.WaitFor(t, "every process of the child and its machines to end", 10*time.Second, func() bool { return len(processesWith(f.marker)) == 0 })
}

// TestE2EProvisionHostDies kills the agent of a recipe's machine in the
// middle of the recipe: the machine is released, another is reserved,
// and with -lnst.reruns=1 the recipe runs again there and passes. The
// fake service fails one reservation in three on the way.
func TestE2EProvisionHostDies(t *testing.T) {
	f := newFakeProv(t, "kill", 1, "FAKE_SEED=7", "FAKE_FAIL=35", "FAKE_HANG=0")
	f.cmd.Args = append(f.cmd.Args, "-lnst.reruns=1")
	require.NoError(t, f.cmd.Start())
	f.wait(t)
	out := f.out.String()
	require.Zero(t, f.cmd.ProcessState.ExitCode(), "the rerun passes, so the run does:\n%s", out)
	assert.Contains(t, out, "--- FAIL: TestProvisionFixture", "the first attempt's failure stays in the output")
	assert.Contains(t, out, "--- PASS: TestProvisionFixture")
	assert.Regexp(t, `lnsttest: rerunning TestProvisionFixture on another machine: pool host fake#1 \(machine fake/r\d+ \(unix://\S+\)\) died: .*; it was released`, out)
	assert.Regexp(t, `lnst.rerun\s+attempt 2 of 2: attempt 1: pool host fake#1`, out, "the RESULTS SUMMARY shows the rerun")

	run, err := results.Read(filepath.Join(f.results, results.FileName))
	require.NoError(t, err)
	var verdicts []string
	records := map[string]string{}
	for _, r := range run.Recipes {
		if r.Name != "TestProvisionFixture" {
			continue
		}
		verdicts = append(verdicts, r.Verdict)
		for _, rec := range r.Records {
			records[rec.Name] = string(rec.Value)
		}
	}
	assert.Equal(t, []string{results.Fail, results.Pass}, verdicts, "results.json has both attempts")
	assert.Contains(t, records["lnst.host-died"], "died")
	assert.Contains(t, records["lnst.rerun"], "attempt 2 of 2")

	// Two machines served the recipe; the dead one was released at once,
	// the other at the end; failed reservations were released too.
	lnsttest.WaitFor(t, "every reservation to be released", 10*time.Second, func() bool { return len(f.ls("held")) == 0 })
	released := f.ls("released")
	attempts := f.ls("attempts")
	assert.GreaterOrEqual(t, len(released), 2, "released %v", released)
	assert.Len(t, released, len(attempts), "every reservation attempt printed its id and was released: %v of %v", released, attempts)
	lnsttest.WaitFor(t, "every process of the child and its machines to end", 10*time.Second, func() bool { return len(processesWith(f.marker)) == 0 })
}

// TestE2EProvisionBadReruns: a wrong -lnst.reruns stops the binary with
// exit code 2, naming the flag.
func TestE2EProvisionBadReruns(t *testing.T) {
	f := newFakeProv(t, "kill", 1, "FAKE_SEED=1")
	f.cmd.Args = append(f.cmd.Args, "-lnst.reruns=often")
	require.NoError(t, f.cmd.Start())
	f.wait(t)
	assert.Equal(t, 2, f.cmd.ProcessState.ExitCode(), f.out.String())
	assert.Contains(t, f.out.String(), `lnsttest: -lnst.reruns: "often" is not a number of reruns from 0 to 100`)
	assert.Empty(t, f.ls("attempts"), "nothing was reserved")
}
