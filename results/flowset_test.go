package results

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFlowSetSchemaMatchesTypes checks, as TestSchemaMatchesTypes does,
// that the FlowSet types and their schema definitions have the same
// fields, all required.
func TestFlowSetSchemaMatchesTypes(t *testing.T) {
	var schema struct {
		Defs map[string]struct {
			Required             []string                   `json:"required"`
			Properties           map[string]json.RawMessage `json:"properties"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(SchemaJSON, &schema))
	for def, typ := range map[string]reflect.Type{
		"flow_set":           reflect.TypeFor[FlowSet](),
		"flow_stats":         reflect.TypeFor[FlowStats](),
		"metric_stats":       reflect.TypeFor[MetricStats](),
		"flow_set_iteration": reflect.TypeFor[FlowSetIteration](),
		"flow_run":           reflect.TypeFor[FlowRun](),
		"interval":           reflect.TypeFor[Interval](),
		"host_cpu":           reflect.TypeFor[HostCPU](),
		"cpu_share":          reflect.TypeFor[CPUShare](),
	} {
		d, ok := schema.Defs[def]
		require.True(t, ok, "schema has no $defs/%s", def)
		require.NotNil(t, d.AdditionalProperties, def)
		assert.False(t, *d.AdditionalProperties, def)
		var fields, props []string
		for f := range typ.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields = append(fields, tag)
		}
		for p := range d.Properties {
			props = append(props, p)
		}
		req := append([]string(nil), d.Required...)
		sort.Strings(fields)
		sort.Strings(props)
		sort.Strings(req)
		assert.Equal(t, fields, props, def)
		assert.Equal(t, fields, req, def)
	}
}

func sampleFlowSet() FlowSet {
	ms := func(unit string, v float64) MetricStats {
		return MetricStats{Unit: unit, Iterations: []float64{v}, Mean: v, CILow: v, CIHigh: v}
	}
	return FlowSet{
		Name: "set", Interval: Duration(500 * time.Millisecond), Warmup: 1, Confidence: 0.95,
		Flows: []FlowStats{
			{Name: "tcp", Kind: "tcp_stream", Client: "h1", Server: "h2", Address: "198.18.1.2", Streams: 1, Processes: 1,
				Duration: Duration(time.Second), Metrics: map[string]MetricStats{MetricRecvBits: ms(UnitBitsPerSecond, 9.41e9)}},
			{Name: "rr", Kind: "tcp_rr", Client: "h1", Server: "h2", Address: "198.18.1.2", Streams: 1, Processes: 1,
				Duration: Duration(time.Second), Metrics: map[string]MetricStats{MetricRate: ms(UnitTransactionsPerSecond, 20000), MetricLatP50: ms(UnitSeconds, 48e-6)}},
		},
		Aggregate: map[string]MetricStats{MetricRecvBits: ms(UnitBitsPerSecond, 9.41e9)},
		CPU:       map[string]MetricStats{"h1": ms(UnitPercent, 40)},
		Iterations: []FlowSetIteration{{StartAt: "2026-01-02T03:04:05Z", WindowStart: 0.01, WindowEnd: 1,
			Flows:     []FlowRun{{Name: "tcp", End: 1, Metrics: map[string]float64{MetricRecvBits: 9.41e9}, Intervals: []Interval{{End: 0.5, Metrics: map[string]float64{MetricRecvBits: 9e9}}}}},
			Aggregate: map[string]float64{MetricRecvBits: 9.41e9},
			CPU: map[string]HostCPU{"h1": {Total: CPUShare{CPU: "cpu", Busy: 40}, PerCPU: []CPUShare{{CPU: "cpu0", Busy: 80}},
				Intervals: []Interval{{End: 0.5, Metrics: map[string]float64{"busy": 40}}}}},
		}},
	}
}

func TestFlowSetRecordValidates(t *testing.T) {
	s := sampleFlowSet()
	rec := NewRecord("perf set", &s)
	assert.Equal(t, KindFlowSet, rec.Kind)
	got, ok := rec.FlowSet()
	require.True(t, ok)
	assert.Equal(t, s, got)
	run := &Run{Schema: SchemaVersion, Recipes: []Recipe{{Name: "TestX", Verdict: Pass, Records: []Record{rec}}}}
	require.NoError(t, Write(t.TempDir(), run))

	// The schema checks the value of a flow_set record.
	bad := s
	bad.Flows = append([]FlowStats(nil), s.Flows...)
	bad.Flows[0].Kind = "tcp_bogus"
	run.Recipes[0].Records = []Record{NewRecord("perf set", bad)}
	assert.ErrorContains(t, Write(t.TempDir(), run), "kind")

	assert.Equal(t, `2 flows in parallel, 1 run
  tcp (tcp_stream h1->h2): recv 9.41 Gbit/s
  rr (tcp_rr h1->h2): rate 20000 trans/s p50 48.0µs
  aggregate: recv 9.41 Gbit/s
  cpu: h1 40%`, s.String())
}

// TestFlowSetMetrics checks the names, subjects and directions a flow set
// gives evaluators and lnst results compare: rates higher-is-better,
// latency and CPU lower-is-better.
func TestFlowSetMetrics(t *testing.T) {
	type row struct {
		subject, name, unit string
		higher              bool
		mean                float64
	}
	var got []row
	for _, m := range sampleFlowSet().Metrics() {
		got = append(got, row{m.Subject, m.Name, m.Unit, m.HigherIsBetter, m.Mean()})
	}
	assert.Equal(t, []row{
		{"tcp", "tcp receiver_bits_per_second", UnitBitsPerSecond, true, 9.41e9},
		{"rr", "rr latency_p50", UnitSeconds, false, 48e-6},
		{"rr", "rr transactions_per_second", UnitTransactionsPerSecond, true, 20000},
		{"aggregate", "aggregate receiver_bits_per_second", UnitBitsPerSecond, true, 9.41e9},
		{"aggregate", "cpu h1", UnitPercent, false, 40},
	}, got)
}
