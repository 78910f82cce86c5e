package perf

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeFlow is a flow tool that reports, from the start time it is given,
// intervals of 500ms after a delay of its own, of bytes each.
type fakeFlow struct {
	name     string
	delay    time.Duration
	bytes    []float64
	prepared bool
	finished bool
	at       time.Time
}

func (f *fakeFlow) prepare(testing.TB) { f.prepared = true }

func (f *fakeFlow) start(t testing.TB, at time.Time) {
	if !f.prepared {
		t.Errorf("flow %s started before its servers", f.name)
	}
	f.at = at
}

func (f *fakeFlow) finish(testing.TB) (flowSamples, error) {
	f.finished = true
	fs := flowSamples{Name: f.name}
	for i, b := range f.bytes {
		s := f.at.Add(f.delay + time.Duration(i)*500*time.Millisecond)
		fs.Samples = append(fs.Samples, sample{Start: s, End: s.Add(500 * time.Millisecond), GenBytes: b, RecvBytes: b})
	}
	return fs, nil
}

// fakeCPU is a host whose two CPUs are 25% and 75% busy all the time.
type fakeCPU struct {
	at           time.Time
	every        time.Duration
	count, calls int
}

func (c *fakeCPU) start(_ testing.TB, at time.Time, every time.Duration, count int) {
	c.at, c.every, c.count = at, every, count
	c.calls++
}

func (c *fakeCPU) finish(testing.TB) ([]cpuSample, error) {
	var out []cpuSample
	for k := 0; k <= c.count; k++ {
		j := uint64(k) * 100
		out = append(out, cpuSample{At: c.at.Add(time.Duration(k) * c.every), Lines: []cpuLine{
			{Name: "cpu", User: j, Idle: j}, {Name: "cpu0", User: j / 4, Idle: 3 * j / 4}, {Name: "cpu1", User: 3 * j / 4, Idle: j / 4}}})
	}
	return out, nil
}

// fakeHook is a profiler that notes when it was told the window began
// and ended, and what the flows had done by then.
type fakeHook struct {
	flows              []*fakeFlow
	at                 time.Time
	startedBefore      bool // a flow had its start time before begin
	ended, allFinished bool
}

func (h *fakeHook) begin(_ testing.TB, at time.Time) {
	h.at = at
	for _, f := range h.flows {
		h.startedBefore = h.startedBefore || !f.at.IsZero()
	}
}

func (h *fakeHook) end(testing.TB) {
	h.ended, h.allFinished = true, true
	for _, f := range h.flows {
		h.allFinished = h.allFinished && f.finished
	}
}

// TestRunIterationStartsTogether checks with fake tools that every flow
// and the CPU sampler get the same start time, after the servers, and
// that the figures are over the intersection of the flows' spans.
func TestRunIterationStartsTogether(t *testing.T) {
	a := &fakeFlow{name: "a", delay: 10 * time.Millisecond, bytes: []float64{100, 100, 100, 100}}
	b := &fakeFlow{name: "b", delay: 260 * time.Millisecond, bytes: []float64{50, 50, 50, 50}}
	cpu := &fakeCPU{}
	hook := &fakeHook{flows: []*fakeFlow{a, b}}
	before := time.Now()
	it, err := runIteration(t, []flowRunner{a, b}, map[string]cpuSampler{"h1": cpu}, 500*time.Millisecond, 2*time.Second, startLead(3, 40*time.Millisecond), hook)
	require.NoError(t, err)
	assert.Equal(t, a.at, hook.at, "the profiler starts at the flows' start time")
	assert.False(t, hook.startedBefore, "the profiler is started before any flow client")
	assert.True(t, hook.ended && hook.allFinished, "the profiler is stopped once every flow has finished")
	assert.Equal(t, a.at, b.at, "flows start together")
	assert.Equal(t, a.at, cpu.at, "CPU sampled on the flows' clock")
	assert.True(t, a.at.After(before), "the start is set ahead, for the jobs to be started")
	assert.Equal(t, 1, cpu.calls)
	assert.Equal(t, 5, cpu.count, "a sample at the start, every interval, one past the end")
	// a spans 10..2010ms, b 260..2260ms: the window is 260..2010ms.
	assert.InDelta(t, 0.26, it.WindowStart, 1e-9)
	assert.InDelta(t, 2.01, it.WindowEnd, 1e-9)
	// a over the window: half of its first interval (260..510 of
	// 10..510) and all of the other three: 350 bytes in 1.75s; b: all
	// but the last 250ms of its last interval: 175 bytes.
	assert.InDelta(t, 350*8/1.75, it.Flows[0].Metrics[results.MetricRecvBits], 1e-9)
	assert.InDelta(t, 175*8/1.75, it.Flows[1].Metrics[results.MetricRecvBits], 1e-9)
	assert.InDelta(t, 525*8/1.75, it.Aggregate[results.MetricRecvBits], 1e-9)
	c := it.CPU["h1"]
	assert.InDelta(t, 50, c.Total.Busy, 1e-9)
	require.Len(t, c.PerCPU, 2)
	assert.InDelta(t, 25, c.PerCPU[0].Busy, 1e-9)
	assert.InDelta(t, 75, c.PerCPU[1].User, 1e-9)
}

func TestRetryTransient(t *testing.T) {
	lost := transientError{fmt.Errorf("flow udp_stream_1400: iperf3: %s: Resource temporarily unavailable", iperf3UDPSetupLost)}
	for _, tc := range []struct {
		name      string
		errs      []error // what each call returns, nil for success
		wantCalls int
		wantErr   bool
	}{
		{"first try", []error{nil}, 1, false},
		{"lost setup then measured", []error{lost, lost, nil}, 3, false},
		{"lost every time", []error{lost, lost, lost, nil}, 1 + transientRetries, true},
		{"a real failure is not retried", []error{errors.New("iperf3: unable to connect to server: Connection refused"), nil}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			it, err := retryTransient(t, "perf x: iteration 1", func(try int) (results.FlowSetIteration, error) {
				assert.Equal(t, calls, try, "try number")
				e := tc.errs[calls]
				calls++
				if e != nil {
					return results.FlowSetIteration{}, e
				}
				return results.FlowSetIteration{WindowEnd: 1}, nil
			})
			assert.Equal(t, tc.wantCalls, calls, "calls")
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 1.0, it.WindowEnd, "the successful try's iteration is returned")
		})
	}
}
