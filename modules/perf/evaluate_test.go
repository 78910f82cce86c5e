package perf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJudgeTwoSided: a change beyond the tolerance is a failure in the
// worse direction and an improvement in the better one, for both
// directions of metric; within it, a pass.
func TestJudgeTwoSided(t *testing.T) {
	for _, c := range []struct {
		value, base, tol float64
		higher           bool
		verdict          string
		delta            float64
	}{
		{95, 100, 0.1, true, results.EvalPass, -5},
		{85, 100, 0.1, true, results.EvalFail, -15},
		{115, 100, 0.1, true, results.EvalImproved, 15},
		{115, 100, 0.1, false, results.EvalFail, 15},
		{85, 100, 0.1, false, results.EvalImproved, -15},
		{105, 100, 0.1, false, results.EvalPass, 5},
		{0, 0, 0.1, true, results.EvalPass, 0},
		{1, 0, 0.1, false, results.EvalFail, 0},
	} {
		v, d := judge(c.value, c.base, c.tol, c.higher)
		assert.Equal(t, c.verdict, v, "%+v", c)
		assert.InDelta(t, c.delta, d, 1e-9, "%+v", c)
	}
}

// TestCPUPerGbit: 50% of 2 CPUs at 5 Gbit/s is 1 CPU-second per 5 Gbit,
// 0.2 CPU-s/Gbit; an iteration that carried nothing is left out.
func TestCPUPerGbit(t *testing.T) {
	got := cpuPerGbit([]float64{50, 25, 40}, []float64{5e9, 10e9, 0}, 2)
	require.Len(t, got, 2)
	assert.InDelta(t, 0.2, got[0], 1e-12)
	assert.InDelta(t, 0.05, got[1], 1e-12)
}

func TestClassOf(t *testing.T) {
	assert.Equal(t, "amd-epyc_6.18.44-fc-v1300",
		classOf("6.18.44-fc-v1300\nx86_64\nprocessor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.132\n"))
	assert.Equal(t, "intel-xeon-cpu-e5-2680-v4-2.40ghz_6.1.0-18-amd64",
		classOf("6.1.0-18-amd64\nx86_64\nmodel name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz\n"))
	assert.Equal(t, "0xd0c_6.1.0-arm64", classOf("6.1.0-arm64\naarch64\nCPU part\t: 0xd0c\n"))
	assert.Equal(t, "riscv64_6.6", classOf("6.6\nriscv64\nprocessor : 0\n"))
}

// TestSubjectOf: a Measurement gives throughput (higher is better) and
// each host's CPU (lower is better), per iteration.
func TestSubjectOf(t *testing.T) {
	m := &results.Measurement{Flow: "tcp", Unit: results.UnitBitsPerSecond, Iterations: []float64{1, 2},
		CPU: map[string]results.CPUStats{"h2": {Iterations: []float64{3, 4}}, "h1": {Iterations: []float64{5, 6}}}}
	s := SubjectOf(m)
	assert.Equal(t, "tcp", s.Name)
	assert.Equal(t, []Metric{
		{Name: "throughput", Unit: "bit/s", HigherIsBetter: true, Samples: []float64{1, 2}},
		{Name: "cpu h1", Unit: "%", Samples: []float64{5, 6}},
		{Name: "cpu h2", Unit: "%", Samples: []float64{3, 4}},
	}, s.Metrics)
	assert.InDelta(t, 1.5, s.Metrics[0].Mean(), 1e-12)
}

// TestNonZero: a flow with an iteration that carried nothing fails,
// naming it; lower-is-better metrics are not its business.
func TestNonZero(t *testing.T) {
	s := Subject{Name: "udp", Metrics: []Metric{
		{Name: "throughput", Unit: "bit/s", HigherIsBetter: true, Samples: []float64{1e9, 0, 2e9}},
		{Name: "cpu h1", Unit: "%", Samples: []float64{0, 0, 0}},
	}}
	var es []results.Evaluation
	f := run(t, "TestX", func(tb testing.TB) { es = NonZero(tb, s) })
	require.Len(t, es, 1)
	assert.Equal(t, results.EvalFail, es[0].Verdict)
	assert.Contains(t, es[0].Note, "nothing in iteration 2 of 3")
	require.Len(t, f.errors, 1)
	assert.Contains(t, f.errors[0], "nonzero udp throughput")

	s.Metrics[0].Samples[1] = 5
	f = run(t, "TestX", func(tb testing.TB) { es = NonZero(tb, s) })
	assert.Empty(t, f.errors)
	assert.Equal(t, results.EvalPass, es[0].Verdict)
}

// TestTimeTaken: over the limit fails; within it passes; the time comes
// back as a lower-is-better metric.
func TestTimeTaken(t *testing.T) {
	var m Metric
	f := run(t, "TestX", func(tb testing.TB) { m = TimeTaken(tb, "tcp", time.Hour, func() {}) })
	assert.Empty(t, f.errors)
	assert.Equal(t, "time", m.Name)
	assert.False(t, m.HigherIsBetter)
	f = run(t, "TestX", func(tb testing.TB) { TimeTaken(tb, "tcp", -1, func() {}) })
	require.Len(t, f.errors, 1)
	assert.Contains(t, f.errors[0], "over the limit")
}

// TestMetricBaselines: against a committed file, every metric is judged
// both ways with its own tolerance (the file's, the caller's, the
// family's default); a missing file leaves every metric unchecked with a
// note naming where it was looked for; recording writes the means and
// keeps the file's tolerances.
func TestMetricBaselines(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "amd-epyc_6.18.json")
	stored := BaselineFile{Class: "amd-epyc_6.18", Metrics: map[string]MetricBaseline{
		"TestX|tcp|throughput": {Value: 10e9, Unit: "bit/s", HigherIsBetter: true, Tolerance: 0.05},
		"TestX|tcp|cpu h1":     {Value: 40, Unit: "%"},
		"TestX|tcp|cpu h2":     {Value: 40, Unit: "%"},
	}}
	data, err := json.Marshal(stored)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, data, 0o644))

	s := Subject{Name: "tcp", Metrics: []Metric{
		{Name: "throughput", Unit: "bit/s", HigherIsBetter: true, Samples: []float64{9.4e9, 9.4e9}}, // -6%, tol 5%: fail
		{Name: "cpu h1", Unit: "%", Samples: []float64{30, 30}},                                     // -25%, tol 20%: improved
		{Name: "cpu h2", Unit: "%", Samples: []float64{50, 50}},                                     // +25%, tol 0.3 given: pass
		{Name: "latency p99", Unit: "s", Samples: []float64{1e-4}},                                  // no baseline
	}}
	b := &MetricBaselines{Class: stored.Class, File: file, Tolerance: map[string]float64{"cpu h2": 0.3}}
	require.NoError(t, b.load())
	var es []results.Evaluation
	f := run(t, "TestX", func(tb testing.TB) { es = b.Check(tb, s) })
	require.Len(t, es, 4)
	verdicts := map[string]string{}
	for _, e := range es {
		verdicts[e.Metric] = e.Verdict
	}
	assert.Equal(t, map[string]string{"throughput": "fail", "cpu h1": "improved", "cpu h2": "pass", "latency p99": "unchecked"}, verdicts)
	assert.InDelta(t, -6, es[0].Delta, 1e-9)
	assert.Equal(t, 0.05, es[0].Tolerance)
	assert.Equal(t, 10e9, es[0].Reference)
	assert.Equal(t, 0.2, es[1].Tolerance, "the family default")
	require.Len(t, f.errors, 1, "only the regression fails")
	assert.Contains(t, f.errors[0], "baseline tcp throughput")

	missing := &MetricBaselines{Class: "other", File: filepath.Join(dir, "nope", "other.json")}
	require.NoError(t, missing.load())
	f = run(t, "TestX", func(tb testing.TB) { es = missing.Check(tb, s) })
	assert.Empty(t, f.errors)
	for _, e := range es {
		assert.Equal(t, results.EvalUnchecked, e.Verdict)
		assert.Contains(t, e.Note, "looked for "+filepath.Join(dir, "nope", "other.json"))
	}

	b.Record = true
	f = run(t, "TestX", func(tb testing.TB) { b.Check(tb, s) })
	assert.Empty(t, f.errors, "recording does not fail")
	var after BaselineFile
	data, err = os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &after))
	assert.Equal(t, 9.4e9, after.Metrics["TestX|tcp|throughput"].Value)
	assert.Equal(t, 0.05, after.Metrics["TestX|tcp|throughput"].Tolerance, "the file's tolerance is kept")
	assert.Contains(t, after.Metrics, "TestX|tcp|latency p99")
	assert.False(t, strings.Contains(string(data), "\"tolerance\": 0,"))
}
