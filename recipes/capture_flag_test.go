package recipes

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/modules"
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// captureFixtureEnv makes TestCaptureFailFixture run (and fail).
const captureFixtureEnv = "LNST_TEST_CAPTURE_FIXTURE"

// TestCaptureFailFixture runs only as a child of TestCaptureFlagE2E: a
// recipe that pings and then fails, whose captures -lnst.capture=failed
// keeps.
func TestCaptureFailFixture(t *testing.T) {
	if os.Getenv(captureFixtureEnv) == "" {
		t.Skip("fixture: runs only as a child of TestCaptureFlagE2E (requires " + captureFixtureEnv + ")")
	}
	m := twoHosts(t)
	m.Host("h1").Iface("eth0").AddIP(t, "198.18.71.1/24")
	m.Host("h2").Iface("eth0").AddIP(t, "198.18.71.2/24")
	modules.Ping{Dst: "198.18.71.2", Count: 2, Interval: 50 * time.Millisecond}.Run(t, m.Host("h1"))
	t.Error("this fixture fails on purpose")
}

// runRecipeChild runs recipe test in a child of this test binary with
// -lnst.capture=mode and a fresh results directory, which it returns.
func runRecipeChild(t *testing.T, mode, test string) (string, string, error) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-lnst.capture="+mode, "-lnst.results="+dir)
	cmd.Env = append(os.Environ(), captureFixtureEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return dir, out.String(), err
}

// pcapngs lists the pcapng files under dir, relative to it.
func pcapngs(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".pcapng") {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return err
	})
	require.NoError(t, err)
	slices.Sort(files)
	return files
}

// TestCaptureFlagE2E runs recipes in children with -lnst.capture: with
// all, TestPing leaves a pcapng per interface that tcpdump -r reads and
// results.json lists; with failed, TestPing (passing) leaves none and a
// failing recipe keeps its.
func TestCaptureFlagE2E(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the local lab requires root")
	}
	if testing.Short() {
		t.Skip("-short: runs the recipes binary three times")
	}
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not installed: it is what checks the pcapng files")
	}

	dir, out, err := runRecipeChild(t, "all", "TestPing")
	require.NoError(t, err, "TestPing with -lnst.capture=all:\n%s", out)
	run, err := results.Read(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	// The files carry the run's id, as job outputs.
	want := []string{"TestPing/" + run.ID + ".h1-eth0.pcapng", "TestPing/" + run.ID + ".h2-eth0.pcapng"}
	require.Equal(t, want, pcapngs(t, dir))
	for _, f := range want {
		r, err := exec.Command(tcpdump, "-nn", "-r", filepath.Join(dir, f)).CombinedOutput()
		require.NoError(t, err, "tcpdump -r %s:\n%s", f, r)
		assert.Contains(t, string(r), "ICMP echo request", f)
		assert.Contains(t, string(r), "ICMP6, echo request", f)
	}
	require.Len(t, run.Recipes, 1)
	var files []string
	for _, c := range run.Recipes[0].Captures {
		files = append(files, c.File)
		assert.Positive(t, c.Packets, c.File)
	}
	assert.Equal(t, want, files, "results.json lists the captures")

	dir, out, err = runRecipeChild(t, "failed", "TestPing")
	require.NoError(t, err, "TestPing with -lnst.capture=failed:\n%s", out)
	assert.Empty(t, pcapngs(t, dir), "a recipe that passed leaves no capture")

	dir, out, err = runRecipeChild(t, "failed", "TestCaptureFailFixture")
	require.Error(t, err, "the fixture fails:\n%s", out)
	require.Contains(t, out, "this fixture fails on purpose")
	run, err = results.Read(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	files = pcapngs(t, dir)
	require.Equal(t, []string{"TestCaptureFailFixture/" + run.ID + ".h1-eth0.pcapng", "TestCaptureFailFixture/" + run.ID + ".h2-eth0.pcapng"}, files)
	r, err := exec.Command(tcpdump, "-nn", "-r", filepath.Join(dir, files[0])).CombinedOutput()
	require.NoError(t, err, "tcpdump -r:\n%s", r)
	assert.Contains(t, string(r), "198.18.71.1 > 198.18.71.2: ICMP echo request")
}
