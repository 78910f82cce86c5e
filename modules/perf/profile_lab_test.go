package perf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// profileFixtureEnv makes TestProfileFixture run: only as
// TestProfileLab's child, with -lnst.profile=perf.
const profileFixtureEnv = "LNST_PERF_PROFILE_FIXTURE"

// TestProfileFixture measures one TCP stream, one warm-up and one
// measured iteration, between two lab hosts.
func TestProfileFixture(t *testing.T) {
	if os.Getenv(profileFixtureEnv) == "" {
		t.Skip("runs only as TestProfileLab's child, under -lnst.profile=perf")
	}
	h1, h2, addr := labPair(t, 9)
	MeasureFlows(t, "profiled", Options{Iterations: 1, Warmup: 1, Interval: 250 * time.Millisecond},
		Flow{Name: "tcp", Client: h1, Server: h2, ServerAddr: addr, Duration: time.Second})
}

// TestProfileLab runs TestProfileFixture under -lnst.profile=perf and
// checks that the measured iteration, and only it, was recorded once for
// the two lab hosts (they share this machine's kernel), that perf.data
// and the report are in the results directory, and that results.json
// lists them and still validates.
func TestProfileLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the namespace lab and system-wide perf record need root")
	}
	if testing.Short() {
		t.Skip("-short: runs a test binary on the namespace lab")
	}
	if _, err := exec.LookPath("perf"); err != nil {
		t.Skip("no perf on PATH (Debian package linux-perf)")
	}
	probe := filepath.Join(t.TempDir(), "probe.data")
	if out, err := exec.Command("perf", "record", "-a", "-o", probe, "--", "true").CombinedOutput(); err != nil {
		t.Skipf("perf cannot record system-wide here (perf_event_paranoid or the container forbids it): %v: %s", err, out)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestProfileFixture$", "-test.v", "-lnst.results="+dir,
		"-lnst.profile=perf", "-lnst.profile.run=Fixture")
	cmd.Env = append(os.Environ(), profileFixtureEnv+"=1")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Run(), "child output:\n%s", out)
	run, err := results.Read(filepath.Join(dir, results.FileName))
	require.NoError(t, err)
	var rec *results.Recipe
	for i := range run.Recipes {
		if run.Recipes[i].Name == "TestProfileFixture" {
			rec = &run.Recipes[i]
		}
	}
	require.NotNil(t, rec, "child output:\n%s", out)
	require.Len(t, rec.Profiles, 1, "one recording for both lab hosts, of the measured iteration only; child output:\n%s", out)
	p := rec.Profiles[0]
	assert.Empty(t, p.Error)
	assert.Equal(t, "h1", p.Host)
	assert.Equal(t, []string{"h1", "h2"}, p.Hosts)
	assert.Equal(t, "perf profiled iteration 1/1", p.Window)
	assert.GreaterOrEqual(t, time.Duration(p.Duration), time.Second, "the recording spans the 1s flow")
	for _, f := range []string{p.Data, p.Report} {
		assert.True(t, strings.HasPrefix(filepath.Base(f), run.ID+"."), "%s carries the run's id %s", f, run.ID)
	}
	fi, err := os.Stat(filepath.Join(dir, p.Data))
	require.NoError(t, err)
	assert.Positive(t, fi.Size())
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "perf.data may hold what only root could read")
	rep, err := os.ReadFile(filepath.Join(dir, p.Report))
	require.NoError(t, err)
	assert.Contains(t, string(rep), "# Samples:")
	assert.True(t, strings.HasSuffix(p.Report, ".perf-report.txt"), p.Report)
}
