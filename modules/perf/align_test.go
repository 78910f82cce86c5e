package perf

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// streamSamples are samples of 500ms from startMs, each of bytes bytes
// sent and received in pkts packets.
func streamSamples(startMs int, bytes ...float64) []sample {
	var out []sample
	for i, b := range bytes {
		s := at(startMs + 500*i)
		out = append(out, sample{Start: s, End: s.Add(500 * time.Millisecond), GenBytes: b, RecvBytes: b / 2, GenPackets: b / 1000, RecvPackets: b / 2000})
	}
	return out
}

// TestAlignIteration is the fake flow tool: two stream flows that
// started 100ms and 200ms after the common start and an RR flow, with
// counts chosen by hand, and two CPU samplers.
func TestAlignIteration(t *testing.T) {
	a := flowSamples{Name: "a", Samples: streamSamples(100, 1000, 2000, 3000, 4000)} // 100..2100
	b := flowSamples{Name: "b", Samples: streamSamples(200, 500, 500, 500)}          // 200..1700
	h1 := &Histogram{}
	for _, us := range []int{10, 20, 30, 40} {
		h1.Add(time.Duration(us) * time.Nanosecond)
	}
	h2 := &Histogram{}
	for _, us := range []int{50, 60, 70, 80, 90, 100} {
		h2.Add(time.Duration(us) * time.Nanosecond)
	}
	h3 := &Histogram{}
	h3.Add(200 * time.Nanosecond) // in an interval mostly outside the window: left out
	rr := flowSamples{Name: "rr", RR: true, Samples: []sample{
		{Start: at(0), End: at(1000), Trans: 100, Lat: h1},
		{Start: at(1000), End: at(2000), Trans: 200, Lat: h2},
		{Start: at(2000), End: at(3000), Trans: 50, Lat: h3},
	}}
	cpu := map[string][]cpuSample{"h1": {
		{At: at(0), Lines: []cpuLine{{Name: "cpu", User: 100, Idle: 100}, {Name: "cpu0", User: 50, Idle: 50}, {Name: "cpu1", User: 50, Idle: 50}}},
		{At: at(250), Lines: []cpuLine{{Name: "cpu", User: 110, Idle: 110}, {Name: "cpu0", User: 55, Idle: 55}, {Name: "cpu1", User: 55, Idle: 55}}},
		{At: at(1750), Lines: []cpuLine{{Name: "cpu", User: 200, Nice: 20, System: 40, Idle: 120, IOWait: 10, Softirq: 50, Irq: 10},
			{Name: "cpu0", User: 145, Nice: 20, System: 15, Idle: 55, IOWait: 10, Softirq: 50, Irq: 10}, {Name: "cpu1", User: 55, System: 25, Idle: 65}}},
	}}

	it, err := alignIteration(t0, []flowSamples{a, b, rr}, cpu)
	require.NoError(t, err)
	// The window is the intersection: the latest start (b, 200ms) to the
	// earliest end (b, 1700ms).
	assert.InDelta(t, 0.2, it.WindowStart, 1e-9)
	assert.InDelta(t, 1.7, it.WindowEnd, 1e-9)
	assert.Equal(t, t0.Format(time.RFC3339Nano), it.StartAt)

	// a over 200..1700: 4/5 of [100,600) + all of [600,1100) and
	// [1100,1600) + 1/5 of [1600,2100) = 800+2000+3000+800 = 6600 bytes
	// in 1.5s: 35200 bit/s generated, half received; 6.6 packets/1.5s.
	fa := it.Flows[0].Metrics
	assert.InDelta(t, 6600*8/1.5, fa[results.MetricGenBits], 1e-6)
	assert.InDelta(t, 3300*8/1.5, fa[results.MetricRecvBits], 1e-6)
	assert.InDelta(t, 6.6/1.5, fa[results.MetricGenPackets], 1e-9)
	assert.InDelta(t, 3.3/1.5, fa[results.MetricRecvPkts], 1e-9)
	assert.InDelta(t, 0.1, it.Flows[0].Start, 1e-9)
	assert.InDelta(t, 2.1, it.Flows[0].End, 1e-9)
	assert.Len(t, it.Flows[0].Intervals, 4)
	assert.InDelta(t, 1000*8/0.5, it.Flows[0].Intervals[0].Metrics[results.MetricGenBits], 1e-6)
	// b: all of its 1500 bytes in 1.5s.
	fb := it.Flows[1].Metrics
	assert.InDelta(t, 1500*8/1.5, fb[results.MetricGenBits], 1e-6)
	// The aggregate is the sum over the same window.
	assert.InDelta(t, (6600+1500)*8/1.5, it.Aggregate[results.MetricGenBits], 1e-6)
	assert.InDelta(t, (3300+750)*8/1.5, it.Aggregate[results.MetricRecvBits], 1e-6)

	// rr: 0.8 of 100 + 0.7 of 200 + 0 of the third = 220 transactions in
	// 1.5s; latencies of the first two intervals (at least half inside):
	// 10..100 ns, ten values: p50 is the 5th (50), p90 the 9th (90), p99
	// the 10th (100); the 200ns of the third interval is not in.
	fr := it.Flows[2].Metrics
	assert.InDelta(t, 220/1.5, fr[results.MetricRate], 1e-9)
	assert.InDelta(t, 50e-9, fr[results.MetricLatP50], 1e-15)
	assert.InDelta(t, 90e-9, fr[results.MetricLatP90], 1e-15)
	assert.InDelta(t, 100e-9, fr[results.MetricLatP99], 1e-15)
	assert.InDelta(t, 100e-9, fr[results.MetricLatMax], 1e-15)
	assert.InDelta(t, 220/1.5, it.Aggregate[results.MetricRate], 1e-9)
	assert.NotContains(t, it.Aggregate, results.MetricLatP50, "percentiles do not add up")

	// CPU: the samples nearest to the window's ends are at 250ms and
	// 1750ms. Total: 90 user + 20 nice + 40 system + 10 idle + 10
	// iowait + 10 irq + 50 softirq = 230 jiffies, 20 of them idle.
	c := it.CPU["h1"]
	assert.Equal(t, "cpu", c.Total.CPU)
	assert.InDelta(t, 100*210/230.0, c.Total.Busy, 1e-9)
	assert.InDelta(t, 100*110/230.0, c.Total.User, 1e-9, "user includes nice")
	assert.InDelta(t, 100*40/230.0, c.Total.System, 1e-9)
	assert.InDelta(t, 100*50/230.0, c.Total.Softirq, 1e-9)
	assert.InDelta(t, 100*10/230.0, c.Total.Irq, 1e-9)
	require.Len(t, c.PerCPU, 2)
	// cpu0: 90+20+15+0+10+10+50 = 195 jiffies, 10 of them iowait.
	assert.Equal(t, "cpu0", c.PerCPU[0].CPU)
	assert.InDelta(t, 100*185/195.0, c.PerCPU[0].Busy, 1e-9)
	assert.InDelta(t, 100*50/195.0, c.PerCPU[0].Softirq, 1e-9)
	// cpu1: 0 user + 25 system + 10 idle = 35 jiffies.
	assert.InDelta(t, 100*25/35.0, c.PerCPU[1].Busy, 1e-9)
	assert.InDelta(t, 100*25/35.0, c.PerCPU[1].System, 1e-9)
	assert.Zero(t, c.PerCPU[1].User)
	require.Len(t, c.Intervals, 2)
	assert.InDelta(t, 50, c.Intervals[0].Metrics["busy"], 1e-9)
}

func TestAlignIterationErrors(t *testing.T) {
	_, err := alignIteration(t0, []flowSamples{
		{Name: "early", Samples: streamSamples(0, 1)},
		{Name: "late", Samples: streamSamples(1000, 1)},
	}, nil)
	assert.ErrorContains(t, err, "do not overlap")
	assert.ErrorAs(t, err, new(transientError), "a late start is measured again, with a longer lead")
	_, err = alignIteration(t0, []flowSamples{{Name: "none"}}, nil)
	assert.ErrorContains(t, err, `flow "none" reported no interval`)
	_, err = alignIteration(t0, []flowSamples{{Name: "a", Samples: streamSamples(0, 1)}},
		map[string][]cpuSample{"h9": {{At: t0}}})
	assert.ErrorContains(t, err, "host h9: 1 CPU samples")
}

func TestHistogram(t *testing.T) {
	var h Histogram
	assert.Zero(t, h.Percentile(0.5))
	// 1..100 µs: nearest-rank p50 is 50µs, p90 90µs, p99 99µs, within a
	// bucket (0.8%).
	for i := 1; i <= 100; i++ {
		h.Add(time.Duration(i) * time.Microsecond)
	}
	assert.EqualValues(t, 100, h.N)
	for p, want := range map[float64]time.Duration{0.5: 50 * time.Microsecond, 0.9: 90 * time.Microsecond, 0.99: 99 * time.Microsecond} {
		got := h.Percentile(p)
		assert.InEpsilon(t, float64(want), float64(got), 0.008, "p%v", p*100)
	}
	assert.Equal(t, 100*time.Microsecond, h.Percentile(1))
	// Each bucket's value is within 0.8% of what went in, everywhere.
	for v := int64(1); v < 1e12; v = v*3 + 7 {
		got := histValue(histBucket(v))
		assert.InEpsilon(t, float64(v), float64(got), 0.008, "%d", v)
		assert.Equal(t, histBucket(v), histBucket(int64(got)), "%d", v)
	}
	// Merge adds.
	var m Histogram
	m.Merge(&h)
	m.Merge(&h)
	m.Merge(nil)
	assert.EqualValues(t, 200, m.N)
	assert.InEpsilon(t, float64(50*time.Microsecond), float64(m.Percentile(0.5)), 0.008)
}

func TestParseCPULines(t *testing.T) {
	_, err := parseCPULines(cpuLines("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8\nintr 1 2 3\ncpu1 0 0 0\n"))
	require.Error(t, err, "cpu1 has 3 fields")
	l, err := parseCPULines("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8\nintr 1\n")
	require.NoError(t, err)
	assert.Equal(t, []cpuLine{{Name: "cpu", User: 1, Nice: 2, System: 3, Idle: 4, IOWait: 5, Irq: 6, Softirq: 7, Steal: 8},
		{Name: "cpu0", User: 1, Nice: 2, System: 3, Idle: 4, IOWait: 5, Irq: 6, Softirq: 7, Steal: 8}}, l)
	assert.Equal(t, 36, int(l[0].total()))
	_, err = parseCPULines("intr 1\n")
	assert.ErrorContains(t, err, "no cpu line")
	assert.Equal(t, "cpu 1\ncpu0 2\n", cpuLines("cpu 1\nintr 5\ncpu0 2\nctxt 3\n"))
	// A counter going backwards counts as nothing.
	s := share(cpuLine{Name: "cpu", Idle: 10, IOWait: 10}, cpuLine{Name: "cpu", User: 10, Idle: 20, IOWait: 5})
	assert.InDelta(t, 50, s.Busy, 1e-9)
}
