package perf

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMeasureFlowsLab measures TCP and UDP streams both ways, tcp_rr and
// tcp_crr between two lab hosts, all at once, and checks every figure is
// there and the record validates against the results schema.
func TestMeasureFlowsLab(t *testing.T) {
	h1, h2, addr := labPair(t, 6)
	base := Flow{Client: h1, Server: h2, ServerAddr: addr, Duration: time.Second}
	with := func(name string, kind FlowKind, reverse bool) Flow {
		f := base
		f.Name, f.Kind, f.Reverse = name, kind, reverse
		if kind == UDPStream {
			f.Bitrate, f.MsgSize = "100M", 1400
		}
		return f
	}
	set := MeasureFlows(t, "lab", Options{Iterations: 1, Warmup: -1, Interval: 250 * time.Millisecond},
		with("tcp_fwd", TCPStream, false), with("tcp_rev", TCPStream, true),
		with("udp_fwd", UDPStream, false), with("udp_rev", UDPStream, true),
		with("rr", TCPRR, false), with("crr", TCPCRR, false))
	require.Len(t, set.Flows, 6)
	require.Len(t, set.Iterations, 1)
	it := set.Iterations[0]
	assert.Greater(t, it.WindowEnd-it.WindowStart, 0.5, "the flows overlap for most of their second")
	for _, f := range set.Flows[:4] {
		for _, m := range []string{results.MetricGenBits, results.MetricRecvBits, results.MetricGenPackets, results.MetricRecvPkts} {
			assert.Positive(t, f.Metrics[m].Mean, "%s %s", f.Name, m)
		}
	}
	for _, f := range set.Flows[4:] {
		assert.Positive(t, f.Metrics[results.MetricRate].Mean, f.Name)
		p50, p99, mx := f.Metrics[results.MetricLatP50].Mean, f.Metrics[results.MetricLatP99].Mean, f.Metrics[results.MetricLatMax].Mean
		assert.Positive(t, p50, f.Name)
		assert.LessOrEqual(t, p50, p99, f.Name)
		assert.LessOrEqual(t, p99, mx, f.Name)
	}
	assert.Positive(t, set.Aggregate[results.MetricRecvBits].Mean)
	require.Contains(t, set.CPU, "h1")
	require.Contains(t, set.CPU, "h2")
	assert.NotEmpty(t, it.CPU["h1"].PerCPU)
	assert.Positive(t, set.CPU["h1"].Mean, "the flows load the CPUs")
	assert.Len(t, it.Flows[0].Intervals, 4)

	rec := results.NewRecord("perf lab", set)
	run := &results.Run{Schema: results.SchemaVersion, Recipes: []results.Recipe{{Name: t.Name(), Verdict: results.Pass, Records: []results.Record{rec}}}}
	require.NoError(t, results.Write(t.TempDir(), run))
	b, _ := json.Marshal(set)
	t.Logf("%d bytes of JSON", len(b))
}
