package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flowSetRun writes a run whose recipe recorded a flow set of a TCP
// stream and a tcp_rr flow, two iterations of three 0.5s intervals each,
// and a baseline evaluation of the stream's receiver throughput (9 Gbit/s
// ±10%), and returns its directory.
func flowSetRun(t *testing.T) string {
	t.Helper()
	ms := func(unit string, vs ...float64) results.MetricStats {
		m := 0.0
		for _, v := range vs {
			m += v / float64(len(vs))
		}
		return results.MetricStats{Unit: unit, Iterations: vs, Mean: m, CILow: m, CIHigh: m}
	}
	iv := func(s float64, k string, v float64) results.Interval {
		return results.Interval{Start: s, End: s + 0.5, Metrics: map[string]float64{k: v}}
	}
	bits, rate := results.MetricRecvBits, results.MetricRate
	it := func(a, b, c, r float64, ws float64) results.FlowSetIteration {
		return results.FlowSetIteration{StartAt: "2026-01-02T03:04:05Z", WindowStart: ws, WindowEnd: 1.5,
			Flows: []results.FlowRun{
				{Name: "tcp", Start: ws, End: 1.5, Metrics: map[string]float64{bits: (a + b + c) / 3},
					Intervals: []results.Interval{iv(0, bits, a), iv(0.5, bits, b), iv(1, bits, c)}},
				{Name: "rr", Start: 0, End: 1.5, Metrics: map[string]float64{rate: r},
					Intervals: []results.Interval{iv(0, rate, r), iv(0.5, rate, r), iv(1, rate, r)}},
			},
			Aggregate: map[string]float64{bits: (a + b + c) / 3, rate: r},
			CPU:       map[string]results.HostCPU{"h1": {Total: results.CPUShare{CPU: "cpu", Busy: 40}, PerCPU: []results.CPUShare{}, Intervals: []results.Interval{}}},
		}
	}
	set := results.FlowSet{Name: "std", Interval: results.Duration(500 * time.Millisecond), Confidence: 0.95,
		Flows: []results.FlowStats{
			{Name: "tcp", Kind: "tcp_stream", Client: "h1", Server: "h2", Address: "198.18.1.2", Streams: 1, Processes: 1,
				Duration: results.Duration(time.Second), Metrics: map[string]results.MetricStats{bits: ms(results.UnitBitsPerSecond, 9e9, 8e9)}},
			{Name: "rr", Kind: "tcp_rr", Client: "h1", Server: "h2", Address: "198.18.1.2", Streams: 1, Processes: 1,
				Duration: results.Duration(time.Second), Metrics: map[string]results.MetricStats{rate: ms(results.UnitTransactionsPerSecond, 20000, 22000)}},
		},
		Aggregate:  map[string]results.MetricStats{bits: ms(results.UnitBitsPerSecond, 9e9, 8e9), rate: ms(results.UnitTransactionsPerSecond, 20000, 22000)},
		CPU:        map[string]results.MetricStats{"h1": ms(results.UnitPercent, 40, 42)},
		Iterations: []results.FlowSetIteration{it(9e9, 9e9, 9e9, 20000, 0.1), it(7e9, 8e9, 9e9, 22000, 0.2)},
	}
	ev := results.Evaluation{Evaluator: "baseline", Subject: "tcp", Metric: "tcp " + bits, Unit: results.UnitBitsPerSecond,
		HigherIsBetter: true, Value: 8.5e9, Reference: 9e9, Tolerance: 0.1, Delta: -5.6, Verdict: results.EvalPass}
	start := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	run := &results.Run{Schema: results.SchemaVersion, Start: start, End: start.Add(10 * time.Second), Pool: "lab:netns",
		Recipes: []results.Recipe{{Name: "TestFlows", Verdict: results.Pass, Start: start, Duration: results.Duration(5 * time.Second),
			Jobs: []results.Job{}, Records: []results.Record{results.NewRecord("perf std", &set), results.NewRecord("eval baseline tcp", ev)}}}}
	dir := t.TempDir()
	require.NoError(t, results.Write(dir, run))
	return dir
}

// TestResultsHTMLFlowSets: a chart per flow of a flow set, a line per
// iteration through its intervals, the common window and the baseline
// band; the numbers are the intervals' own.
func TestResultsHTMLFlowSets(t *testing.T) {
	dir := flowSetRun(t)
	out := filepath.Join(t.TempDir(), "report.html")
	code, _, errOut := runCmd("results", "html", "-o", out, dir)
	require.Equal(t, 0, code, errOut)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	page := string(data)
	assert.Contains(t, page, "<h4>flow set std</h4>")
	assert.Equal(t, 2, strings.Count(page, `data-metric=`), "a chart per flow")
	assert.Contains(t, page, `data-metric="receiver_bits_per_second"`)
	assert.Contains(t, page, `data-metric="transactions_per_second"`)
	assert.Contains(t, page, "tcp — tcp_stream h1→h2, received, 2 runs")
	assert.Contains(t, page, "rr — tcp_rr h1→h2, transactions, 2 runs")
	assert.Equal(t, 4, strings.Count(page, `<polyline class="iteration"`), "a line per iteration per flow")
	assert.Equal(t, 12, strings.Count(page, "<circle "), "a dot per interval")
	// The first interval of iteration 1 at 9 Gbit/s: the axes run to 10
	// Gbit/s and 1.5s; its middle (0.25s) is at x 56+492*0.25/1.5 = 138,
	// 9 Gbit/s at y 34+186*(1-0.9) = 52.6.
	assert.Contains(t, page, `points="138.0,52.6 302.0,52.6 466.0,52.6"`)
	assert.Contains(t, page, "iteration 2, 0–0.5s: 7 Gbit/s")
	assert.Contains(t, page, "iteration 2, 1–1.5s: 22000 trans/s")
	assert.Contains(t, page, "mean 8.5 Gbit/s")
	assert.Equal(t, 1, strings.Count(page, `<rect class="band"`), "the baseline band on the judged metric only")
	assert.Contains(t, page, "baseline ±10%: 8.1–9.9 Gbit/s (pass)")
	// The common window of both iterations: 0.2s to 1.5s.
	assert.Contains(t, page, `<rect class="window" x="121.6" y="34" width="426.4"`)
	assert.Contains(t, page, "std: 2 flows, 2 runs, recv 8.50 Gbit/s, rate 21000 trans/s, cpu h1 41%", "the recipes table's line")
	assert.Contains(t, page, "tcp (tcp_stream h1-&gt;h2): recv 8.50 Gbit/s", "the set's summary")
	assert.NotContains(t, page, "<script")
}

// TestResultsTableFlowSets: lnst results lists a recipe's flow sets in
// MEASUREMENTS, a line each.
func TestResultsTableFlowSets(t *testing.T) {
	code, out, errOut := runCmd("results", flowSetRun(t))
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `TestFlows +PASS +5s +0 +std: 2 flows, 2 runs, recv 8.50 Gbit/s, rate 21000 trans/s, cpu h1 41%\n`, out)
}
