package perf

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTB records what an evaluator reports instead of failing the real
// test; its logs go to the real test.
type fakeTB struct {
	testing.TB
	name string

	mu     sync.Mutex
	errors []string
	logs   []string
	fatal  bool
}

func (f *fakeTB) Helper()      {}
func (f *fakeTB) Name() string { return f.name }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	f.mu.Lock()
	f.fatal = true
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	f.TB.Logf("(fake %s) "+format, append([]any{f.name}, args...)...)
}
func (f *fakeTB) Log(args ...any) { f.Logf("%s", fmt.Sprint(args...)) }

// run calls fn with a fake test named name, in its own goroutine so that
// a Fatal ends only that, and returns the fake.
func run(t *testing.T, name string, fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{TB: t, name: name}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func meas(mean float64, iterations ...float64) *results.Measurement {
	return &results.Measurement{Flow: "tcp", Unit: results.UnitBitsPerSecond, Mean: mean, Iterations: iterations}
}

func TestBaselinesRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "baselines.json")
	b, err := ReadBaselines(path)
	require.NoError(t, err, "a missing file holds no baselines")
	assert.Empty(t, b)

	rec := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	b[BaselineKey("TestPerfTCP", "lab", "tcp")] = Baseline{Value: 9.41e9, Unit: "bit/s", Recorded: rec}
	require.NoError(t, b.Write(path))
	got, err := ReadBaselines(path)
	require.NoError(t, err)
	assert.Equal(t, b, got)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"TestPerfTCP|lab|tcp": {`)

	require.NoError(t, os.WriteFile(path, []byte("{"), 0o644))
	_, err = ReadBaselines(path)
	assert.ErrorContains(t, err, path)
}

func TestCheckBaselineFailsBelowTolerance(t *testing.T) {
	file := filepath.Join(t.TempDir(), "baselines.json")
	key := BaselineKey("TestRecipe", "lab", "tcp")
	require.NoError(t, Baselines{key: {Value: 10e9, Unit: "bit/s"}}.Write(file))

	m := meas(1e9, 1e9, 1e9, 1e9) // a tenth of the baseline
	f := run(t, "TestRecipe", func(tb testing.TB) { CheckBaseline(tb, m, BaselineOptions{File: file}) })
	require.Len(t, f.errors, 1)
	assert.Contains(t, f.errors[0], "90.0% below the baseline 10.00 Gbit/s")
	assert.Contains(t, f.errors[0], "tolerance 10%")
	assert.Contains(t, f.errors[0], key)
	assert.False(t, f.fatal, "a slow flow fails the recipe without stopping it")
	require.NotNil(t, m.Baseline)
	assert.Equal(t, results.BaselineCheck{Key: key, Baseline: 10e9, Tolerance: 0.1, Delta: -90, Pass: false}, *m.Baseline)

	// Within tolerance: 9.1 of 10 passes at 10%, fails at 5%.
	m = meas(9.1e9, 9.1e9)
	f = run(t, "TestRecipe", func(tb testing.TB) { CheckBaseline(tb, m, BaselineOptions{File: file}) })
	assert.Empty(t, f.errors)
	assert.True(t, m.Baseline.Pass)
	assert.InDelta(t, -9, m.Baseline.Delta, 1e-9)
	f = run(t, "TestRecipe", func(tb testing.TB) { CheckBaseline(tb, m, BaselineOptions{File: file, Tolerance: 0.05}) })
	assert.Len(t, f.errors, 1)

	// Faster than the baseline passes.
	m = meas(12e9, 12e9)
	f = run(t, "TestRecipe", func(tb testing.TB) { CheckBaseline(tb, m, BaselineOptions{File: file}) })
	assert.Empty(t, f.errors)
	assert.InDelta(t, 20, m.Baseline.Delta, 1e-9)
}

func TestCheckBaselineMissing(t *testing.T) {
	file := filepath.Join(t.TempDir(), "baselines.json")
	m := meas(5e9, 5e9)
	f := run(t, "TestRecipe", func(tb testing.TB) { CheckBaseline(tb, m, BaselineOptions{File: file}) })
	assert.Empty(t, f.errors)
	assert.Nil(t, m.Baseline)
	require.Len(t, f.logs, 1)
	assert.Contains(t, f.logs[0], "no baseline")
	_, err := os.Stat(file)
	assert.True(t, os.IsNotExist(err), "nothing recorded")

	f = run(t, "TestRecipe", func(tb testing.TB) {
		CheckBaseline(tb, m, BaselineOptions{File: file, RecordMissing: true, Match: "pool-a"})
	})
	assert.Empty(t, f.errors)
	require.NotNil(t, m.Baseline)
	assert.True(t, m.Baseline.Recorded)
	b, err := ReadBaselines(file)
	require.NoError(t, err)
	assert.Equal(t, 5e9, b["TestRecipe|pool-a|tcp"].Value)
	assert.WithinDuration(t, time.Now(), b["TestRecipe|pool-a|tcp"].Recorded, time.Minute)

	// RecordMissing leaves an existing baseline alone.
	m = meas(1e9, 1e9)
	f = run(t, "TestRecipe", func(tb testing.TB) {
		CheckBaseline(tb, m, BaselineOptions{File: file, RecordMissing: true, Match: "pool-a"})
	})
	assert.Len(t, f.errors, 1)
	b, _ = ReadBaselines(file)
	assert.Equal(t, 5e9, b["TestRecipe|pool-a|tcp"].Value)
}

func TestCheckBaselineRecord(t *testing.T) {
	file := filepath.Join(t.TempDir(), "baselines.json")
	require.NoError(t, Baselines{"k": {Value: 10e9, Unit: "bit/s"}, "other": {Value: 1, Unit: "bit/s"}}.Write(file))
	t.Setenv(EnvBaselineRecord, "1")
	m := meas(1e9, 1e9)
	f := run(t, "TestRecipe", func(tb testing.TB) { CheckBaseline(tb, m, BaselineOptions{File: file, Key: "k"}) })
	assert.Empty(t, f.errors, "recording does not fail against the old baseline")
	assert.True(t, m.Baseline.Recorded)
	assert.InDelta(t, -90, m.Baseline.Delta, 1e-9, "the delta is against the old baseline")
	b, err := ReadBaselines(file)
	require.NoError(t, err)
	assert.Equal(t, 1e9, b["k"].Value)
	assert.Equal(t, 1.0, b["other"].Value, "other keys are kept")
}

func TestCheckBaselineErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "baselines.json")
	require.NoError(t, Baselines{"k": {Value: 10, Unit: "pps"}}.Write(file))
	f := run(t, "T", func(tb testing.TB) { CheckBaseline(tb, meas(10, 10), BaselineOptions{File: file, Key: "k"}) })
	require.Len(t, f.errors, 1)
	assert.Contains(t, f.errors[0], "is in pps")

	f = run(t, "T", func(tb testing.TB) { CheckBaseline(tb, meas(10, 10), BaselineOptions{File: file, Tolerance: 2}) })
	require.Len(t, f.errors, 1)
	assert.Contains(t, f.errors[0], "Tolerance 2")

	require.NoError(t, os.WriteFile(file, []byte("not json"), 0o644))
	f = run(t, "T", func(tb testing.TB) { CheckBaseline(tb, meas(10, 10), BaselineOptions{File: file}) })
	require.Len(t, f.errors, 1)
	assert.Contains(t, f.errors[0], file)
}

func TestDefaultBaselineFile(t *testing.T) {
	t.Setenv(EnvBaselines, "/x/b.json")
	assert.Equal(t, "/x/b.json", DefaultBaselineFile())
	t.Setenv(EnvBaselines, "")
	assert.True(t, strings.HasSuffix(DefaultBaselineFile(), filepath.Join("lnst-go", "baselines.json")))
}

func TestZeroThroughput(t *testing.T) {
	f := run(t, "T", func(tb testing.TB) { ZeroThroughput(tb, meas(2, 3, 0, 3, 0)) })
	require.Len(t, f.errors, 1)
	assert.Contains(t, f.errors[0], "no throughput in iterations 2, 4 of 4")
	f = run(t, "T", func(tb testing.TB) { ZeroThroughput(tb, meas(0)) })
	require.Len(t, f.errors, 1)
	assert.Contains(t, f.errors[0], "no iteration")
	f = run(t, "T", func(tb testing.TB) { ZeroThroughput(tb, meas(1, 1, 1)) })
	assert.Empty(t, f.errors)
}

// TestCheckBaselineLabMatch checks the default Match: "lab:vm" for a
// measurement Measure made on VM lab hosts, "lab" for any other, as the
// keys were when lnsttest named the lab.
func TestCheckBaselineLabMatch(t *testing.T) {
	file := filepath.Join(t.TempDir(), "baselines.json")
	onVM, onNetns := meas(7e9), meas(3e9)
	measuredLab.Store(onVM, "vm")
	measuredLab.Store(onNetns, "netns")
	for _, m := range []*results.Measurement{onVM, onNetns} {
		f := run(t, "TestRecipe", func(tb testing.TB) { CheckBaseline(tb, m, BaselineOptions{File: file, RecordMissing: true}) })
		require.Empty(t, f.errors)
	}
	b, err := ReadBaselines(file)
	require.NoError(t, err)
	assert.Equal(t, 7e9, b["TestRecipe|lab:vm|tcp"].Value)
	assert.Equal(t, 3e9, b["TestRecipe|lab|tcp"].Value)
	assert.Len(t, b, 2)

	// A measurement Measure did not make is checked against "lab".
	m := meas(3e9)
	f := run(t, "TestRecipe", func(tb testing.TB) { CheckBaseline(tb, m, BaselineOptions{File: file}) })
	require.Empty(t, f.errors)
	require.NotNil(t, m.Baseline)
	assert.False(t, m.Baseline.Recorded)
	assert.Equal(t, 3e9, m.Baseline.Baseline)
}

// TestBaselineFlags checks perf's own flags: -lnst.baselines names the
// file before $LNST_BASELINES, and -lnst.baseline-record records.
func TestBaselineFlags(t *testing.T) {
	for name, value := range map[string]string{"lnst.baselines": "/from/flag.json", "lnst.baseline-record": "true"} {
		f := flag.Lookup(name)
		require.NotNil(t, f, "perf registers -%s", name)
		old := f.Value.String()
		require.NoError(t, f.Value.Set(value))
		t.Cleanup(func() { f.Value.Set(old) })
	}
	t.Setenv(EnvBaselines, "/from/env.json")
	assert.Equal(t, "/from/flag.json", DefaultBaselineFile())

	file := filepath.Join(t.TempDir(), "baselines.json")
	require.NoError(t, Baselines{"k": {Value: 10e9, Unit: "bit/s"}}.Write(file))
	m := meas(1e9)
	f := run(t, "TestRecipe", func(tb testing.TB) { CheckBaseline(tb, m, BaselineOptions{File: file, Key: "k"}) })
	assert.Empty(t, f.errors, "recorded, not checked")
	b, err := ReadBaselines(file)
	require.NoError(t, err)
	assert.Equal(t, 1e9, b["k"].Value)
}

// TestCheckBaselineNoPlace: where no baseline file can be read or made (a
// CI account without a home), CheckBaseline does not fail the test: it
// says where it looked; asked to record, it fails.
func TestCheckBaselineNoPlace(t *testing.T) {
	file := "/proc/lnst-no-such-dir/baselines.json" // mkdir fails, root or not
	f := run(t, "TestX", func(tb testing.TB) { CheckBaseline(tb, meas(5, 5), BaselineOptions{File: file, RecordMissing: true}) })
	assert.Empty(t, f.errors)
	require.NotEmpty(t, f.logs)
	assert.Contains(t, f.logs[len(f.logs)-1], "baseline not checked")
	assert.Contains(t, f.logs[len(f.logs)-1], file)
	f = run(t, "TestX", func(tb testing.TB) { CheckBaseline(tb, meas(5, 5), BaselineOptions{File: file, Record: true}) })
	assert.NotEmpty(t, f.errors)
}
