package lnsttest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The end-to-end tests run this test binary again as a child whose
// TestFixture plays a recipe (case named by LNST_E2E_CASE), and check how
// the child ended and that the machine is exactly as before.

const (
	caseEnv   = "LNST_E2E_CASE"
	markerEnv = "LNST_E2E_MARKER"
	// pokeEnv names the file whose creation ends the "poke" case's wait.
	pokeEnv = "LNST_E2E_POKE"
	// dirEnv names the directory the fixture puts a file in; the child's
	// TMPDIR is the same directory, so its lab agent's temporary
	// directories (TempDir) and backups are made there too, and the
	// snapshot (machine) sees them.
	dirEnv = "LNST_E2E_DIR"
	// undoEnv, set, makes the fixture add the bridge undoBridge on h1
	// with a raw command whose Undo deletes it (the fault suite's pool
	// cases: the Undo runs on lease expiry and on journal replay).
	undoEnv    = "LNST_E2E_UNDO"
	undoBridge = "e2eundo0"
	// xfrmEnv, set, makes the fixture add IPsec policies on h1 (and, on
	// a kernel with ESP, states) and an nftables table with a chain and
	// rules, through the agent's journaled APIs: the fault suite checks
	// that lease expiry takes them away.
	xfrmEnv = "LNST_E2E_XFRM"
	// putName is the file the fixture puts in dirEnv's directory.
	putName = "e2e-put"
	// globalSysctl is changed by the fixture through a lab host. It is not
	// per network namespace, so only a restore takes it back.
	globalSysctl = "kernel.msgmax"
	readyLine    = "E2E-FIXTURE-READY"
)

func TestFixture(t *testing.T) {
	c := os.Getenv(caseEnv)
	if c == "" {
		t.Skip("fixture: runs only as a child of the e2e tests (requires " + caseEnv + ")")
	}
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
	h1, h2 := m.Host("h1"), m.Host("h2")
	if os.Geteuid() == 0 {
		// The rootless lab cannot change a host-wide value.
		old, err := strconv.Atoi(h1.ReadSysctl(t, globalSysctl))
		require.NoError(t, err)
		h1.Sysctl(t, globalSysctl, strconv.Itoa(old+1))
	}
	h1.Iface("eth0").AddIP(t, "198.18.9.1/24")
	h1.Iface("eth0").SetMTU(t, 1400)
	h1.Sysctl(t, "net.ipv4.ip_forward", "1")
	h1.AddRoute(t, "198.18.10.0/24", lnsttest.Via("198.18.9.254"), lnsttest.Table(100))
	br := h2.Create(t, devices.Bridge{Name: "e2ebr"})
	h2.Create(t, devices.Veth{Name: "e2ev0", PeerName: "e2ev1"}).SetMaster(t, br)
	if dir := os.Getenv(dirEnv); dir != "" && h1.Lab() != "vm" {
		// Files on this machine, through the lab host (which shares its
		// filesystem; a VM's is its own): a put and a temporary
		// directory with a file put in it.
		local := filepath.Join(t.TempDir(), "local")
		require.NoError(t, os.WriteFile(local, []byte("put by the e2e fixture\n"), 0o644))
		h1.PutFile(t, local, filepath.Join(dir, putName))
		h1.PutFile(t, local, h1.TempDir(t))
	}
	if os.Getenv(undoEnv) != "" {
		h1.Run(t, "ip link add "+undoBridge+" type bridge", lnsttest.Undo("ip link del "+undoBridge), lnsttest.Quiet())
	}
	if os.Getenv(xfrmEnv) != "" {
		e2eXfrm(t, h1)
	}
	// Its jobs are marked too: on a pool they do not inherit the marker.
	h1.Start(t, "sleep 600", lnsttest.Desc("background sleeper"), lnsttest.Env(markerEnv+"="+os.Getenv(markerEnv)+"-job"))
	switch c {
	case "pass":
	case "fail":
		t.Fatal("fails on purpose")
	case "panic":
		panic("panics on purpose")
	case "missing":
		h1.Run(t, "no-such-command-lnst")
	case "timeout":
		h1.Run(t, "sleep 30", lnsttest.Timeout(300*time.Millisecond))
	case "expectfail":
		h1.Run(t, "true", lnsttest.ExpectFail())
	case "waitjob":
		// A call to the agent still running when -test.timeout nears.
		h1.Run(t, "sleep 600", lnsttest.Desc("a job outliving the test"))
	case "wait":
		// Until the parent interrupts or -test.timeout fires.
		fmt.Println(readyLine)
		time.Sleep(5 * time.Minute)
	case "poke":
		// Until the parent creates the file named by pokeEnv; then the
		// recipe changes h1 again.
		fmt.Println(readyLine)
		lnsttest.WaitFor(t, "the parent's poke file", 2*time.Minute, func() bool {
			_, err := os.Stat(os.Getenv(pokeEnv))
			return err == nil
		})
		h1.Iface("eth0").SetMTU(t, 1300)
		h1.Run(t, "true")
	default:
		t.Fatalf("unknown fixture case %q", c)
	}
}

// machine is what must not change: the snapshot of this machine's root
// namespace and of the processes the fixture started (faults_e2e_test.go),
// and the files in the child's directory (dirEnv) but those its own
// process leaves when killed (its lab's socket directory, its TempDirs,
// go test's build directory).
func machine(t *testing.T, c *child) string {
	t.Helper()
	return snapshot(t, c.marker) + files(t, c.dir)
}

// files lists what is under dir, one line per entry, with the mode and
// size of files, but the child's own leftovers (see machine).
func files(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && p != dir && filepath.Dir(p) == dir {
			for _, own := range []string{"lnst-lab-", "TestFixture", "go-build"} {
				if strings.HasPrefix(d.Name(), own) {
					return filepath.SkipDir
				}
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		size := ""
		if fi.Mode().IsRegular() {
			size = fmt.Sprint(fi.Size())
		}
		lines = append(lines, fmt.Sprintf("file %s %v %s", rel, fi.Mode(), size))
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		// An entry removed during the walk: the next snapshot sees it gone.
		lines = append(lines, fmt.Sprintf("file walk: %v", err))
	}
	return strings.Join(lines, "\n") + "\n"
}

// withoutProcesses drops the process lines of a snapshot: the child
// itself is one, so they differ whenever it runs.
func withoutProcesses(snap string) string {
	var keep []string
	for _, l := range strings.Split(snap, "\n") {
		if !strings.HasPrefix(l, "process ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// requireChanged checks, mid-recipe, that the snapshot sees what the
// fixture changed beyond its processes: the file it put, and as root the
// host-wide sysctl it changed through its lab host.
func requireChanged(t *testing.T, before string, c *child) {
	t.Helper()
	during := machine(t, c)
	d := snapshotDiff(withoutProcesses(before), withoutProcesses(during))
	require.NotEmpty(t, d, "the fixture changed nothing the snapshot sees but processes")
	require.Contains(t, d, "+ file "+putName+" ", "the snapshot sees the file the fixture put")
	require.Regexp(t, `\+ file lnst-tmp-\S+/local `, d, "the snapshot sees the file the fixture put in its TempDir")
	if c.cmd.SysProcAttr.Credential == nil {
		require.Contains(t, d, "+ root sysctl "+globalSysctl+"=", "the snapshot sees the host-wide sysctl the fixture changed")
	}
}

// processesWith lists the pids whose environment holds marker.
func processesWith(marker string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		env, err := os.ReadFile(d + "/environ")
		if err == nil && bytes.Contains(env, []byte(markerEnv+"="+marker)) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			pids = append(pids, pid)
		}
	}
	return pids
}

// requireClean waits (bounded: the lab agent restores after its
// controller is gone) until the machine is as before.
func requireClean(t *testing.T, before string, c *child) {
	t.Helper()
	if _, ok := waitSame(t, "the machine", before, 20*time.Second, func() string { return machine(t, c) }); !ok {
		t.FailNow()
	}
}

type child struct {
	cmd *exec.Cmd
	// out is the child's output, written by exec's copying goroutine
	// while the test reads it (waitFor).
	out    *lockedBuffer
	marker string
	// dir is the child's TMPDIR and the fixture's dirEnv; env sets both.
	dir string
	env []string
}

// fixture prepares a child running case c of TestFixture with extra
// command-line arguments.
func fixture(t *testing.T, c string, args ...string) *child {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the local lab requires root")
	}
	var r [8]byte
	rand.Read(r[:])
	marker := hex.EncodeToString(r[:])
	// Not t.TempDir: its parent is private to root, and the rootless
	// child runs as nobody.
	dir, err := os.MkdirTemp("", "lnst-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o1777))
	env := []string{caseEnv + "=" + c, markerEnv + "=" + marker, dirEnv + "=" + dir, "TMPDIR=" + dir}
	argv := append([]string{"-test.run=^TestFixture$", "-test.v"}, args...)
	cmd := exec.Command(os.Args[0], argv...)
	cmd.Env = append(os.Environ(), env...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return &child{cmd: cmd, out: out, marker: marker, dir: dir, env: env}
}

// asNobody makes the child run as user nobody, from a copy of this test
// binary that nobody can execute: the rootless lab.
func (c *child) asNobody(t *testing.T) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("the rootless case requires a user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "lnst-rootless-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "lnsttest.test")
	data, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, data, 0o755))
	c.cmd.Path, c.cmd.Args[0], c.cmd.Dir = bin, bin, dir
	c.cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// run runs the child to its end, bounded, and returns its exit code.
func (c *child) run(t *testing.T) int {
	t.Helper()
	require.NoError(t, c.cmd.Start())
	return c.wait(t)
}

func (c *child) wait(t *testing.T) int {
	t.Helper()
	if !endsWithin(c.cmd, 2*time.Minute) {
		t.Fatalf("fixture did not end within 2m; output:\n%s", c.out)
	}
	return c.cmd.ProcessState.ExitCode()
}

// endsWithin waits for cmd, started in a process group of its own, to
// end; when it has not after d, it kills the group, waits for it and
// returns false.
func endsWithin(cmd *exec.Cmd, d time.Duration) bool {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return false
	}
}

func TestE2EPassLeavesNothing(t *testing.T) {
	c := fixture(t, "pass")
	before := machine(t, c)
	require.Zero(t, c.run(t), c.out.String())
	out := c.out.String()
	assert.Contains(t, out, "RESULTS SUMMARY: TestFixture")
	assert.Regexp(t, `h1\s+1\s+PASS\s+background sleeper\s+killed at cleanup`, out)
	requireClean(t, before, c)
}

// TestE2ELogLinesAtRecipe: in go test -v, every line lnsttest logs (and
// the RESULTS SUMMARY) is tagged with the recipe's file and line, as an
// IDE opens it, not with lnsttest's (hclog formats the lines).
func TestE2ELogLinesAtRecipe(t *testing.T) {
	c := fixture(t, "pass")
	require.Zero(t, c.run(t), c.out.String())
	// A log line, or the first line of the summary (empty after the tag).
	tagged := regexp.MustCompile(`(?m)^\s+(\S+\.go):\d+: (\[INFO\]  lnst: .*|\s*)$`)
	found := tagged.FindAllStringSubmatch(c.out.String(), -1)
	require.Len(t, found, 6, "hosts ready, created twice, started, killing at cleanup, the summary:\n%s", c.out)
	for _, m := range found {
		assert.Equal(t, "e2e_test.go", m[1], "the line %q is tagged with the recipe's file", m[0])
	}
}

func TestE2EFailingRecipeLeavesNothing(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"fail", "fails on purpose"},
		{"panic", "panics on purpose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(t, tc.name)
			before := machine(t, c)
			require.NotZero(t, c.run(t), c.out.String())
			assert.Contains(t, c.out.String(), tc.want)
			requireClean(t, before, c)
		})
	}
}

func TestE2EJobErrors(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"missing", `h1: job 2 (no-such-command-lnst): exit code 127, want 0`},
		{"timeout", `h1: job 2 (sleep 30): timed out after 300ms and was killed`},
		{"expectfail", `h1: job 2 (true): exit code 0, want a failure (ExpectFail)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(t, tc.name)
			before := machine(t, c)
			require.NotZero(t, c.run(t), c.out.String())
			out := c.out.String()
			assert.Contains(t, out, tc.want)
			assert.Regexp(t, `h1\s+2\s+FAIL`, out, "RESULTS SUMMARY lists the failed job")
			if tc.name == "missing" {
				assert.Contains(t, out, "not found", "stderr of the shell is in the message")
			}
			requireClean(t, before, c)
		})
	}
}

func TestE2EBadFlagValue(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"-lnst.lab=qemu"}, "", `lnsttest: -lnst.lab: unknown lab "qemu" (want netns, rootless, vm or auto)`},
		{[]string{"-lnst.log-level=chatty"}, "", `lnsttest: -lnst.log-level: unknown log level "chatty"`},
		{nil, "LNST_STRICT=perhaps", `lnsttest: environment variable LNST_STRICT="perhaps"`},
		{[]string{"-lnst.pool=/nonexistent/pool.yaml"}, "", `lnsttest: -lnst.pool: `},
	} {
		c := fixture(t, "pass", tc.args...)
		if tc.env != "" {
			c.cmd.Env = append(c.cmd.Env, tc.env)
		}
		assert.Equal(t, 2, c.run(t), c.out.String())
		assert.Contains(t, c.out.String(), tc.want)
	}
}

// TestE2ESignals interrupts a child mid-recipe, as Ctrl-C does (SIGINT to
// the process group) and as a job scheduler does (SIGTERM to the process).
func TestE2ESignals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sig   syscall.Signal
		group bool
	}{
		{"SIGINT to the process group", syscall.SIGINT, true},
		{"SIGTERM", syscall.SIGTERM, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixture(t, "wait")
			before := machine(t, c)
			require.NoError(t, c.cmd.Start())
			waitFor(t, c, readyLine)
			pid := c.cmd.Process.Pid
			if tc.group {
				pid = -pid
			}
			require.NoError(t, syscall.Kill(pid, tc.sig))
			c.wait(t)
			ws := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
			assert.True(t, ws.Signaled() && ws.Signal() == tc.sig, "child ended by %v: %v", tc.sig, c.cmd.ProcessState)
			assert.Contains(t, c.out.String(), "restoring every host and removing the lab")
			requireClean(t, before, c)
		})
	}
}

// TestE2ETestTimeout lets go test's -timeout fire mid-recipe: the test
// binary dies of a panic without running any cleanup, and the lab agent
// restores on its own.
func TestE2ETestTimeout(t *testing.T) {
	c := fixture(t, "wait", "-test.timeout=4s")
	before := machine(t, c)
	require.NotZero(t, c.run(t))
	assert.Contains(t, c.out.String(), "test timed out after 4s")
	requireClean(t, before, c)
}

// TestE2ETestTimeoutInCall lets go test's -timeout near while the recipe
// waits in a call to its agent: the call ends first, and the recipe fails
// naming it, instead of the test binary panicking; its cleanup still
// restores the hosts.
func TestE2ETestTimeoutInCall(t *testing.T) {
	c := fixture(t, "waitjob", "-test.timeout=10s")
	before := machine(t, c)
	require.NotZero(t, c.run(t))
	out := c.out.String()
	assert.NotContains(t, out, "panic: test timed out", "the call ends before the binary's deadline")
	assert.Regexp(t, `h1: job \d+ "a job outliving the test" \(sleep 600\): .*DeadlineExceeded.*\(the test binary's deadline \(-test.timeout\) is near\)`, out)
	assert.Contains(t, out, "--- FAIL: TestFixture")
	requireClean(t, before, c)
}

// TestE2EGoTestInterrupted sends SIGINT (as Ctrl-C does) and SIGTERM to a
// `go test` running a recipe.
func TestE2EGoTestInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a test binary with go test; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go test SIGINT case requires the go command in PATH")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			c := fixture(t, "wait")
			c.cmd = exec.CommandContext(context.Background(), gobin, "test", "-count=1", "-v", "-run=^TestFixture$", ".")
			c.cmd.Env = append(os.Environ(), c.env...)
			c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
			c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			before := machine(t, c)
			require.NoError(t, c.cmd.Start())
			waitFor(t, c, readyLine)
			// To go test's process group, as a terminal's Ctrl-C or a job
			// scheduler's stop does.
			require.NoError(t, syscall.Kill(-c.cmd.Process.Pid, sig))
			assert.NotZero(t, c.wait(t))
			requireClean(t, before, c)
		})
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a child writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t *testing.T, c *child, line string) {
	t.Helper()
	printed := false
	defer func() {
		if !printed {
			syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			t.Logf("the child's output:\n%s", c.out)
		}
	}()
	lnsttest.WaitFor(t, fmt.Sprintf("the child to print %q", line), 90*time.Second, func() bool {
		return strings.Contains(c.out.String(), line)
	})
	printed = true
}

// TestE2ERootless runs the fixture as user nobody: the lab runs in a user
// namespace, and leaves nothing behind after a pass, a failure and SIGINT:
// no process, no file it put, no temporary directory (mid-recipe, the
// snapshot is seen to hold them).
func TestE2ERootless(t *testing.T) {
	for _, tc := range []string{"pass", "fail", "wait"} {
		t.Run(tc, func(t *testing.T) {
			c := fixture(t, tc)
			c.asNobody(t)
			before := machine(t, c)
			require.NoError(t, c.cmd.Start())
			switch tc {
			case "pass":
				assert.Zero(t, c.wait(t), c.out.String())
				assert.Contains(t, c.out.String(), "RESULTS SUMMARY: TestFixture")
			case "fail":
				assert.NotZero(t, c.wait(t))
				assert.Contains(t, c.out.String(), "fails on purpose")
			case "wait":
				waitFor(t, c, readyLine)
				requireChanged(t, before, c)
				require.NoError(t, syscall.Kill(-c.cmd.Process.Pid, syscall.SIGINT))
				c.wait(t)
				assert.Contains(t, c.out.String(), "restoring every host and removing the lab")
			}
			requireClean(t, before, c)
		})
	}
}

// TestE2EResultsJSON writes results.json for a passing and a failing
// recipe and checks it against the schema (results.Read validates).
func TestE2EResultsJSON(t *testing.T) {
	for _, tc := range []struct{ name, verdict string }{{"pass", results.Pass}, {"missing", results.Fail}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := fixture(t, tc.name, "-lnst.results="+dir)
			c.run(t)
			run, err := results.Read(filepath.Join(dir, results.FileName))
			require.NoError(t, err, c.out.String())
			// Jobs' output may be a root job's secrets: owner only.
			files := 0
			require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				fi, err := d.Info()
				if err == nil && fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
				}
				files++
				return err
			}))
			assert.NotZero(t, files)
			require.Len(t, run.Recipes, 1)
			r := run.Recipes[0]
			assert.Equal(t, "TestFixture", r.Name)
			assert.Equal(t, tc.verdict, r.Verdict)
			assert.Contains(t, r.Match, "h1=lab:")
			require.NotEmpty(t, r.Jobs)
			assert.Equal(t, "background sleeper", r.Jobs[0].Desc)
			assert.True(t, r.Jobs[0].Killed)
			assert.Len(t, run.Hosts, 2)
			if tc.name == "missing" {
				j := r.Jobs[len(r.Jobs)-1]
				assert.Equal(t, 127, j.ExitCode)
				assert.Equal(t, results.Fail, j.Verdict)
				require.NotEmpty(t, j.StderrFile)
				b, err := os.ReadFile(filepath.Join(dir, j.StderrFile))
				require.NoError(t, err)
				assert.Contains(t, string(b), "no-such-command-lnst: not found")
			}
		})
	}
}
