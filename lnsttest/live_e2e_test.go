package lnsttest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// suiteEnv names the case TestFixtureSuite plays: a suite of recipes
// r1..r3 that pass, then a fourth that stays running.
const suiteEnv = "LNST_E2E_SUITE"

// TestFixtureSuite runs only as a child of the live-results tests: its
// subtests r1, r2 and r3 are recipes that pass; then r4 starts
// "sleep 600" on h1 and, by case,
//   - "poke": prints readyLine and waits in a foreground job on h2 (a
//     sleep loop) for the parent's poke file (pokeEnv), then ends;
//   - "hang": prints readyLine and hangs in a foreground "sleep 600" on
//     h2 until -test.timeout comes near.
func TestFixtureSuite(t *testing.T) {
	c := os.Getenv(suiteEnv)
	if c == "" {
		t.Skip("fixture: runs only as a child of the live-results tests (requires " + suiteEnv + ")")
	}
	reqs := []lnsttest.Requirement{
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	}
	for _, n := range []string{"r1", "r2", "r3"} {
		t.Run(n, func(t *testing.T) {
			m := lnsttest.Require(t, reqs...)
			m.Host("h1").Run(t, "echo recipe "+n)
		})
	}
	t.Run("r4", func(t *testing.T) {
		m := lnsttest.Require(t, reqs...)
		m.Host("h1").Start(t, "echo sleeper-says-hi; sleep 600", lnsttest.Desc("the sleeper"),
			lnsttest.Env(markerEnv+"="+os.Getenv(markerEnv)+"-job"))
		fmt.Println(readyLine)
		switch c {
		case "poke":
			m.Host("h2").Run(t, `echo fg-says-hi; while [ ! -e "$POKE" ]; do sleep 0.1; done`,
				lnsttest.Env("POKE="+os.Getenv(pokeEnv)), lnsttest.Timeout(2*time.Minute))
		case "hang":
			m.Host("h2").Run(t, "echo fg-says-hi; sleep 600")
		default:
			t.Fatalf("unknown suite case %q", c)
		}
	})
}

// suite prepares a child running TestFixtureSuite's case c, writing its
// results into a new directory, which it returns.
func suite(t *testing.T, c string, args ...string) (*child, string) {
	t.Helper()
	ch := fixture(t, "suite", args...)
	dir := filepath.Join(ch.dir, "results")
	ch.cmd.Args = append(ch.cmd.Args, "-test.run=^TestFixtureSuite$", "-lnst.results="+dir)
	ch.cmd.Env = append(ch.cmd.Env, suiteEnv+"="+c, pokeEnv+"="+filepath.Join(ch.dir, "poke"))
	return ch, dir
}

// lnstCmd builds cmd/lnst (once per test) and runs it with args.
func lnstCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(lnstPath(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); !ok {
		require.NoError(t, err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// lnstPath builds cmd/lnst, once per test, and returns its path.
func lnstPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds cmd/lnst with go build; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("running lnst requires the go command in PATH to build it")
	}
	bin := filepath.Join(os.TempDir(), "lnst-e2e-"+strings.NewReplacer("/", "_").Replace(t.Name()))
	if _, err := os.Stat(bin); err != nil {
		out, err := exec.Command(gobin, "build", "-o", bin, "../cmd/lnst").CombinedOutput()
		require.NoError(t, err, "go build ../cmd/lnst: %s", out)
		t.Cleanup(func() { os.Remove(bin) })
	}
	return bin
}

// recipeNames are the names of a run's recipes.
func recipeNames(r *results.Run) []string {
	var names []string
	for _, rc := range r.Recipes {
		names = append(names, rc.Name+"="+rc.Verdict)
	}
	return names
}

// eventsFile is the one events file of dir.
func eventsFile(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "events-*.jsonl"))
	require.NoError(t, err)
	require.Len(t, files, 1, "one events file in %s", dir)
	return files[0]
}

// TestE2EResultsSurviveKill SIGKILLs a suite while its fourth recipe
// runs: results.json holds the first three, the events file is whole
// JSON lines, and lnst results shows the three and says the run died.
func TestE2EResultsSurviveKill(t *testing.T) {
	c, dir := suite(t, "poke")
	require.NoError(t, c.cmd.Start())
	waitFor(t, c, readyLine)
	require.NoError(t, syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL))
	c.wait(t)

	run, err := results.Read(dir)
	require.NoError(t, err, c.out.String())
	assert.Equal(t, []string{"TestFixtureSuite/r1=pass", "TestFixtureSuite/r2=pass", "TestFixtureSuite/r3=pass"}, recipeNames(run))
	assert.Equal(t, results.StateRunning, run.State, "the file was last written after r3")
	require.NotEmpty(t, run.ID)
	// Every file the run made carries its id.
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != results.FileName {
			assert.Contains(t, d.Name(), run.ID, "file %s", p)
		}
		return err
	}))

	ev := eventsFile(t, dir)
	assert.Equal(t, results.EventsName(run.ID), filepath.Base(ev))
	data, err := os.ReadFile(ev)
	require.NoError(t, err)
	require.True(t, bytes.HasSuffix(data, []byte("\n")), "the events file ends with a whole line")
	types := map[string]int{}
	for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var e results.Event
		require.NoError(t, json.Unmarshal(line, &e), "line %d: %s", i+1, line)
		types[e.Type]++
	}
	for _, want := range []string{results.EventRunStarted, results.EventHost, results.EventRecipeStarted, results.EventMatch,
		results.EventJobStarted, results.EventJobEnded, results.EventRecipeEnded} {
		assert.NotZero(t, types[want], "an event %s", want)
	}
	assert.Equal(t, 3, types[results.EventRecipeEnded])
	assert.Equal(t, 4, types[results.EventRecipeStarted])
	assert.Zero(t, types[results.EventRunEnded])

	out, code := lnstCmd(t, "results", dir)
	assert.Zero(t, code, out)
	assert.Regexp(t, run.ID+` +\S+ \S+ \S+ +died +3 +0 +0 +1`, out, "the run is listed as died, with its running recipe")
	for _, r := range []string{"r1", "r2", "r3"} {
		assert.Regexp(t, `TestFixtureSuite/`+r+` +PASS`, out)
	}
	assert.Contains(t, out, "not ended: TestFixtureSuite/r4")
	assert.Regexp(t, `  h1 job \d+: echo sleeper-says-hi; sleep 600`, out)
}

// TestE2EStatus runs lnst status on a suite while its fourth recipe
// runs, then after the suite ended.
func TestE2EStatus(t *testing.T) {
	c, dir := suite(t, "poke")
	require.NoError(t, c.cmd.Start())
	waitFor(t, c, readyLine)

	out, code := lnstCmd(t, "status", dir)
	assert.Zero(t, code, out)
	assert.Regexp(t, `(?m)^run \S+ \(pid \d+, lab:netns\): running for`, out)
	assert.Regexp(t, `(?m)^RUNNING\n  TestFixtureSuite/r4 +\S+ +h1=lab:\S+ h2=lab:\S+\n    h1 job \d+ +\S+ +"the sleeper" \(echo sleeper-says-hi; sleep 600\)`, out)
	assert.Regexp(t, `(?m)^LAST RESULTS\n  TestFixtureSuite/r1 +PASS .*\n  TestFixtureSuite/r2 +PASS .*\n  TestFixtureSuite/r3 +PASS`, out)
	// The foreground job on h2 shows with its id while it runs (its
	// agent tells it at the job's start), not as "job ?".
	fg := regexp.MustCompile(`(?m)^    h2 job (\d+) +\S+ +echo fg-says-hi; while`)
	lnsttest.WaitFor(t, "lnst status to show the foreground job on h2 with its id", time.Minute, func() bool {
		out, _ = lnstCmd(t, "status", dir)
		return fg.MatchString(out)
	})
	assert.NotContains(t, out, "job ?", out)

	// lnst status -f follows the run from here to its end.
	followed := &lockedBuffer{}
	follow := exec.Command(lnstPath(t), "status", "-f", "-every", "100ms", dir)
	follow.Stdout, follow.Stderr = followed, followed
	follow.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, follow.Start())
	lnsttest.WaitFor(t, "lnst status -f to show the running recipe", time.Minute, func() bool {
		return strings.Contains(followed.String(), "TestFixtureSuite/r4")
	})

	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "poke"), nil, 0o644))
	require.Zero(t, c.wait(t), c.out.String())
	require.True(t, endsWithin(follow, time.Minute), "lnst status -f ends with the run:\n%s", followed.String())
	assert.Zero(t, follow.ProcessState.ExitCode(), followed.String())
	f := followed.String()
	assert.Regexp(t, `(?s)^run \S+ .*: running for .*RUNNING\n  TestFixtureSuite/r4 .*\n---- \S+\n.*: ended after .*RESULTS SUMMARY\n`, f,
		"it showed the running run, then the ended one")
	assert.Equal(t, 1, strings.Count(f, "RESULTS SUMMARY"), f)

	// The events go to their file only: go test's output (and so
	// go test -json's) is as without -lnst.results.
	assert.NotContains(t, c.out.String(), `"type":`)
	assert.NotContains(t, c.out.String(), "lnsttest:")
	out, code = lnstCmd(t, "status", dir)
	assert.Zero(t, code, out)
	assert.Regexp(t, `(?m)^run \S+ \(pid \d+, lab:netns\): ended after \S+; recipes: 4 pass, 0 fail, 0 skip`, out)
	assert.Regexp(t, `(?m)^RESULTS SUMMARY\n(  TestFixtureSuite/r\d +PASS .*\n){4}`, out)
	assert.NotContains(t, out, "RUNNING")

	// -f on an ended run shows it once and returns.
	out, code = lnstCmd(t, "status", "-f", dir)
	assert.Zero(t, code, out)
	assert.Equal(t, 1, strings.Count(out, "RESULTS SUMMARY"))
}

// TestE2EDeadlineNamesTheJobs lets -test.timeout near while the suite's
// fourth recipe hangs in a job: before the deadline, lnsttest names each
// running job with its command, how long it has run and its last output,
// and results.json holds the recipes that ended.
func TestE2EDeadlineNamesTheJobs(t *testing.T) {
	c, dir := suite(t, "hang", "-test.timeout=15s")
	code := c.run(t)
	out := c.out.String()
	require.NotZero(t, code, out)
	assert.Contains(t, out, "lnsttest: the test binary's deadline (-test.timeout=15s) is 4.5s away; still running:")
	assert.Regexp(t, `  TestFixtureSuite/r4: running \S+, hosts h1=lab:\S+ h2=lab:\S+\n`+
		`    h1: job \d+ "the sleeper" \(echo sleeper-says-hi; sleep 600\): running \S+\n`+
		`      last output:\n`+
		`      \| sleeper-says-hi\n`+
		`    h2: job \d+ echo fg-says-hi; sleep 600: running \S+\n`+
		`      last output:\n`+
		`      \| fg-says-hi\n`, out)
	assert.Regexp(t, `lnsttest: results so far written to \S+/results-\S+\.json`, out)
	assert.Regexp(t, `h2: job [1-9]\d* \(echo fg-says-hi; sleep 600\): rpc error`, out, "the cut-short foreground job's failure names it")

	run, err := results.Read(dir)
	require.NoError(t, err, out)
	names := recipeNames(run)
	require.GreaterOrEqual(t, len(names), 3, out)
	assert.Equal(t, []string{"TestFixtureSuite/r1=pass", "TestFixtureSuite/r2=pass", "TestFixtureSuite/r3=pass"}, names[:3])
	events, torn, err := results.ReadEvents(eventsFile(t, dir))
	require.NoError(t, err)
	assert.False(t, torn)
	var deadline *results.Event
	for i, e := range events {
		if e.Type == results.EventDeadline {
			deadline = &events[i]
		}
	}
	require.NotNil(t, deadline, "a deadline event")
	require.NotEmpty(t, deadline.Running)
	r4 := deadline.Running[len(deadline.Running)-1]
	assert.Equal(t, "TestFixtureSuite/r4", r4.Name)
	require.Len(t, r4.Jobs, 2)
	assert.Equal(t, "sleeper-says-hi", r4.Jobs[0].Output)
	assert.Equal(t, "echo fg-says-hi; sleep 600", r4.Jobs[1].Command)
	assert.NotZero(t, r4.Jobs[1].ID, "the foreground job's id, told at its start")
	assert.Equal(t, "fg-says-hi", r4.Jobs[1].Output)
}

// TestE2EResultsDirNotWritable: a results directory the run cannot write
// in (a read-only mount: root writes anywhere else) stops it before any
// recipe, with exit code 2 and an error naming the directory.
func TestE2EResultsDirNotWritable(t *testing.T) {
	c := fixture(t, "pass")
	ro := filepath.Join(c.dir, "ro")
	require.NoError(t, os.Mkdir(ro, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "lnst-e2e-ro", ro).CombinedOutput(); err != nil {
		t.Skipf("the read-only results directory requires mounting a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", ro).Run() })
	c.cmd.Args = append(c.cmd.Args, "-lnst.results="+ro)
	assert.Equal(t, 2, c.run(t), c.out.String())
	out := c.out.String()
	assert.Contains(t, out, "lnsttest: -lnst.results "+ro+": cannot write the run's events there: ")
	assert.Contains(t, out, "read-only file system")
	assert.NotContains(t, out, "RESULTS SUMMARY", "no recipe ran")
}
