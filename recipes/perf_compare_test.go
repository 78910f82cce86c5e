package recipes

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPerfCompareTbf runs TestPerfTCP three times in child test binaries
// on the namespace lab, the first two at once, the third with a tbf rate limit on the sender
// (-lnst.set perf.shape=200mbit), and compares their results.json with
// lnst results compare: two plain runs show no regression at the default
// tolerance (exit 0); the shaped run is flagged as a throughput
// regression (exit 1).
func TestPerfCompareTbf(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs TestPerfTCP three times in child test binaries (about 40 s)")
	}
	if os.Geteuid() != 0 {
		t.Skip("requires root: the child runs use the namespace lab and tc")
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("requires the go command on PATH to build cmd/lnst")
	}
	dir := t.TempDir()
	lnst := filepath.Join(dir, "lnst")
	out, err := exec.Command(gocmd, "build", "-o", lnst, "github.com/lnst-go/lnst/cmd/lnst").CombinedOutput()
	require.NoError(t, err, "go build cmd/lnst: %s", out)

	// perf runs TestPerfTCP in a child test binary writing results to
	// dir/name, and says how it went.
	perf := func(name string, args ...string) (string, string, error) {
		res := filepath.Join(dir, name)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// 5 iterations: Welch's test on 3 noisy lab iterations against 3
		// may miss even a large drop.
		argv := append([]string{"-test.run=^TestPerfTCP$", "-test.count=1", "-lnst.results=" + res,
			"-lnst.set", "perf.iterations=5", "-lnst.set", "perf.duration=1s"}, args...)
		out, err := exec.CommandContext(ctx, os.Args[0], argv...).CombinedOutput()
		t.Logf("run %s: %v (exit: %v)", name, argv, err)
		return res, string(out), err
	}
	check := func(name, res, out string) string {
		t.Helper()
		r, rerr := results.Read(res)
		require.NoError(t, rerr, "results.json of run %s:\n%s", name, out)
		require.NotEmpty(t, r.Recipes, "run %s:\n%s", name, out)
		return res
	}
	runPerf := func(name string, args ...string) string {
		t.Helper()
		res, out, _ := perf(name, args...)
		return check(name, res, out)
	}
	compare := func(a, b string) (int, string) {
		t.Helper()
		cmd := exec.Command(lnst, "results", "compare", a, b)
		out, err := cmd.CombinedOutput()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("lnst results compare: %v", err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}

	// The two plain runs run at the same time, each on its own lab
	// instance: whatever else loads the machine (other packages' tests in
	// CI) loads both alike, as it would not two runs one after the other.
	var resA, outA, resB, outB string
	var wg sync.WaitGroup
	wg.Go(func() { resA, outA, _ = perf("a") })
	wg.Go(func() { resB, outB, _ = perf("b") })
	wg.Wait()
	a, b := check("a", resA, outA), check("b", resB, outB)
	// The shaped run is compared with a plain one run alone, as it is:
	// two runs side by side share the machine's two CPUs, and their
	// throughput varies so much per iteration (3.2 ± 2.8 Gbit/s seen
	// under load) that Welch's test misses even a 94% drop.
	plain := runPerf("plain")
	shaped := runPerf("shaped", "-lnst.set", "perf.shape=200mbit")

	code, cmp := compare(a, b)
	t.Logf("plain vs plain:\n%s", cmp)
	assert.Equal(t, 0, code, "two plain runs: no regression at the default tolerance")
	assert.Contains(t, cmp, "metrics: 0 regression")

	code, cmp = compare(plain, shaped)
	t.Logf("plain vs shaped:\n%s", cmp)
	assert.Equal(t, 1, code, "a tbf-shaped run is a regression")
	assert.Regexp(t, `TestPerfTCP +perf tcp +throughput .* REGRESSION`, cmp)
}
