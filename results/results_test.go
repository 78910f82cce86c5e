package results

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fullRun is a Run with every field set.
func fullRun() *Run {
	start := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	m := Measurement{
		Flow: "tcp", Protocol: "TCP", Streams: 2, Duration: Duration(2 * time.Second), Unit: UnitBitsPerSecond,
		Iterations: []float64{9.3e9, 9.4e9, 9.5e9}, Warmup: []float64{8e9},
		Mean: 9.4e9, StdDev: 0.1e9, CILow: 9.15e9, CIHigh: 9.65e9, Confidence: 0.95,
		CPU: map[string]CPUStats{
			"h1": {Mean: 34, Iterations: []float64{33, 34, 35}},
			"h2": {Mean: 29, Iterations: []float64{28, 29, 30}},
		},
		Baseline: &BaselineCheck{Key: "TestPerfTCP|lab|tcp", Baseline: 9.5e9, Tolerance: 0.1, Delta: -1.05, Pass: true, Recorded: true},
	}
	return &Run{
		Schema: SchemaVersion,
		Start:  start,
		End:    start.Add(time.Minute),
		Args:   []string{"-test.v", "-lnst.results=out"},
		Pool:   "lab:netns",
		Hosts:  []HostInfo{{Name: "h1.1", Kernel: "6.12.0", Arch: "x86_64", AgentVersion: "v0.1.0"}},
		Recipes: []Recipe{{
			Name: "TestPerfTCP", Match: "h1=lab:h1.1 h2=lab:h2.1", Verdict: Pass,
			Start: start.Add(time.Second), Duration: Duration(8500 * time.Millisecond),
			Jobs: []Job{{
				Host: "h1", ID: 3, Command: "iperf3 -c 198.18.3.2 --json", Desc: "iperf3 TCP to 198.18.3.2",
				Start: start.Add(2 * time.Second), Duration: Duration(2005 * time.Millisecond),
				ExitCode: -1, Signal: 15, Killed: true, TimedOut: true, Verdict: Fail,
				StdoutFile: "TestPerfTCP/h1-3.stdout", StderrFile: "TestPerfTCP/h1-3.stderr",
				Summary: "TCP 9.41 Gbit/s, 0 retransmits, 2 streams, 2s",
			}},
			Records: []Record{NewRecord("perf tcp", m), NewRecord("note", map[string]int{"x": 1}),
				NewRecord("eval baseline tcp throughput", Evaluation{Evaluator: "baseline", Subject: "tcp", Metric: "throughput",
					Unit: UnitBitsPerSecond, HigherIsBetter: true, Value: 9.4e9, Reference: 9.8e9, Tolerance: 0.1, Delta: -4.08, Verdict: EvalPass,
					Note: "key TestPerfTCP|tcp|throughput in testdata/baselines/amd-epyc_6.18.json"})},
		}},
	}
}

func TestWriteValidatesAndRoundTrips(t *testing.T) {
	dir := t.TempDir()
	want := fullRun()
	require.NoError(t, Write(dir, want))

	data, err := os.ReadFile(filepath.Join(dir, FileName))
	require.NoError(t, err)
	require.NoError(t, Validate(data))

	got, err := Read(dir)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	m, ok := got.Recipes[0].Records[0].Measurement()
	require.True(t, ok)
	rec, _ := want.Recipes[0].Records[0].Measurement()
	assert.Equal(t, rec, m)
	_, ok = got.Recipes[0].Records[1].Measurement()
	assert.False(t, ok, "a plain record is no measurement")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
}

func TestWriteEmptyRun(t *testing.T) {
	dir := t.TempDir()
	r := &Run{Schema: SchemaVersion, Recipes: []Recipe{{Name: "TestX", Verdict: Skip}}}
	require.NoError(t, Write(dir, r), "nil lists are written as []")
	got, err := Read(filepath.Join(dir, FileName))
	require.NoError(t, err)
	assert.Empty(t, got.Recipes[0].Jobs)
	assert.Nil(t, r.Recipes[0].Jobs, "Write does not change its argument")
}

// TestWriteOwnerOnly: results.json holds jobs' output, which may be a
// root job's secrets: only its owner reads it, even where a file with a
// wider mode was before.
func TestWriteOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte("{}"), 0o644))
	r := &Run{Schema: SchemaVersion, Recipes: []Recipe{{Name: "TestX", Verdict: Skip}}}
	require.NoError(t, Write(dir, r))
	fi, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestWriteRefusesInvalid(t *testing.T) {
	r := fullRun()
	r.Recipes[0].Verdict = "ok"
	err := Write(t.TempDir(), r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/recipes/0/verdict")
}

func TestValidateNamesTheField(t *testing.T) {
	good, err := json.Marshal(normalized(fullRun()))
	require.NoError(t, err)
	require.NoError(t, Validate(good))

	for _, c := range []struct {
		name   string
		edit   func(doc map[string]any)
		reason []string // each must appear in the error
	}{
		{"missing verdict", func(d map[string]any) { delete(recipe(d), "verdict") }, []string{"/recipes/0", "verdict"}},
		{"id not a number", func(d map[string]any) { job(d)["id"] = "three" }, []string{"/recipes/0/jobs/0/id", "string"}},
		{"duration as a string", func(d map[string]any) { recipe(d)["duration"] = "8.5s" }, []string{"/recipes/0/duration"}},
		{"bad time", func(d map[string]any) { d["start"] = "yesterday" }, []string{"/start", "date-time"}},
		{"unknown field", func(d map[string]any) { job(d)["exitcode"] = 0 }, []string{"/recipes/0/jobs/0", "exitcode"}},
		{"wrong schema", func(d map[string]any) { d["schema"] = "lnst-go/results/v0" }, []string{"/schema"}},
		{"measurement without mean", func(d map[string]any) { delete(measurement(d), "mean") }, []string{"/recipes/0/records/0/value", "mean"}},
		{"cpu over 100%", func(d map[string]any) {
			measurement(d)["cpu"].(map[string]any)["h1"].(map[string]any)["mean"] = 340.0
		}, []string{"/recipes/0/records/0/value/cpu/h1/mean"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var doc map[string]any
			require.NoError(t, json.Unmarshal(good, &doc))
			c.edit(doc)
			bad, err := json.Marshal(doc)
			require.NoError(t, err)
			err = Validate(bad)
			require.Error(t, err)
			for _, r := range c.reason {
				assert.Contains(t, err.Error(), r)
			}
		})
	}
	assert.ErrorContains(t, Validate([]byte("{")), "not JSON")
}

func recipe(d map[string]any) map[string]any {
	return d["recipes"].([]any)[0].(map[string]any)
}

func job(d map[string]any) map[string]any {
	return recipe(d)["jobs"].([]any)[0].(map[string]any)
}

func measurement(d map[string]any) map[string]any {
	return recipe(d)["records"].([]any)[0].(map[string]any)["value"].(map[string]any)
}

// TestSchemaMatchesTypes checks that each Go type and its definition in
// schema.json have the same fields and no others, all required but those
// the type omits when empty.
func TestSchemaMatchesTypes(t *testing.T) {
	var schema struct {
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Required             []string                   `json:"required"`
			Properties           map[string]json.RawMessage `json:"properties"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(SchemaJSON, &schema))
	check := func(name string, typ reflect.Type, required []string, props map[string]json.RawMessage) {
		var fields, mandatory []string
		for f := range typ.Fields() {
			tag, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			require.NotEmpty(t, tag, "%s.%s has no json tag", typ.Name(), f.Name)
			fields = append(fields, tag)
			if opts != "omitempty" {
				mandatory = append(mandatory, tag)
			}
		}
		sort.Strings(fields)
		sort.Strings(mandatory)
		var propNames []string
		for p := range props {
			propNames = append(propNames, p)
		}
		sort.Strings(propNames)
		required = append([]string(nil), required...)
		sort.Strings(required)
		assert.Equal(t, fields, propNames, "%s: properties of schema %s", typ.Name(), name)
		assert.Equal(t, mandatory, required, "%s: required of schema %s", typ.Name(), name)
	}
	check("(root)", reflect.TypeFor[Run](), schema.Required, schema.Properties)
	for def, typ := range map[string]reflect.Type{
		"host":           reflect.TypeFor[HostInfo](),
		"recipe":         reflect.TypeFor[Recipe](),
		"job":            reflect.TypeFor[Job](),
		"record":         reflect.TypeFor[Record](),
		"measurement":    reflect.TypeFor[Measurement](),
		"cpu":            reflect.TypeFor[CPUStats](),
		"baseline_check": reflect.TypeFor[BaselineCheck](),
		"console":        reflect.TypeFor[Console](),
		"evaluation":     reflect.TypeFor[Evaluation](),
		"running_recipe": reflect.TypeFor[RunningRecipe](),
		"running_job":    reflect.TypeFor[RunningJob](),
		"kernel_splat":   reflect.TypeFor[KernelSplat](),
		"sysinfo_delta":  reflect.TypeFor[SysinfoDelta](),
		"system":         reflect.TypeFor[System](),
		"numa_node":      reflect.TypeFor[NUMANode](),
		"nic":            reflect.TypeFor[NIC](),
	} {
		d, ok := schema.Defs[def]
		require.True(t, ok, "schema has no $defs/%s", def)
		require.NotNil(t, d.AdditionalProperties, "$defs/%s allows unknown fields", def)
		assert.False(t, *d.AdditionalProperties, "$defs/%s allows unknown fields", def)
		check(def, typ, d.Required, d.Properties)
	}
}

func TestDurationIsSeconds(t *testing.T) {
	b, err := json.Marshal(Duration(2005 * time.Millisecond))
	require.NoError(t, err)
	assert.Equal(t, "2.005", string(b))
	var d Duration
	require.NoError(t, json.Unmarshal([]byte("8.5"), &d))
	assert.Equal(t, Duration(8500*time.Millisecond), d)
	assert.Error(t, json.Unmarshal([]byte(`"8s"`), &d))
}

func TestMeasurementString(t *testing.T) {
	m := Measurement{
		Protocol: "TCP", Unit: UnitBitsPerSecond, Iterations: []float64{1, 2, 3},
		Mean: 9.41e9, StdDev: 0.12e9, CILow: 9.30e9, CIHigh: 9.52e9, Confidence: 0.95,
		CPU: map[string]CPUStats{"h2": {Mean: 29.2}, "h1": {Mean: 34}},
	}
	assert.Equal(t, "TCP 9.41 Gbit/s ± 0.12 (95% CI 9.30–9.52), 3 runs; cpu h1 34% h2 29.2%", m.String())
	m.Baseline = &BaselineCheck{Baseline: 10e9, Delta: -5.9, Pass: true}
	m.CPU = nil
	assert.Equal(t, "TCP 9.41 Gbit/s ± 0.12 (95% CI 9.30–9.52), 3 runs; baseline 10.00 Gbit/s (-5.9%, ok)", m.String())
	assert.Equal(t, "812.00 Mbit/s", FormatValue(812e6, UnitBitsPerSecond))
	assert.Equal(t, "3.00 pps", FormatValue(3, "pps"))
}

func TestNewRecord(t *testing.T) {
	r := NewRecord("ch", make(chan int))
	assert.Equal(t, "null", string(r.Value), "a value JSON cannot hold is null")
	assert.NotEmpty(t, r.Text)
	r = NewRecord("perf", &Measurement{Flow: "x"})
	assert.Equal(t, KindMeasurement, r.Kind)
}

// TestEvaluationRecord: an Evaluation is recorded with its kind, reads
// back, prints its numbers and verdict, and the schema refuses one
// without a valid verdict.
func TestEvaluationRecord(t *testing.T) {
	e := Evaluation{Evaluator: "baseline", Subject: "tcp", Metric: "throughput", Unit: UnitBitsPerSecond,
		HigherIsBetter: true, Value: 9.41e9, Reference: 9.8e9, Tolerance: 0.1, Delta: -3.98, Verdict: EvalPass}
	rec := NewRecord("eval", &e)
	assert.Equal(t, KindEvaluation, rec.Kind)
	back, ok := rec.Evaluation()
	require.True(t, ok)
	assert.Equal(t, e, back)
	assert.Equal(t, "baseline tcp throughput: 9.41 Gbit/s vs 9.80 Gbit/s (-4.0%, tolerance 10%): PASS", e.String())
	_, ok = NewRecord("perf", Measurement{}).Evaluation()
	assert.False(t, ok)

	r := fullRun()
	bad := NewRecord("eval", e)
	bad.Value = json.RawMessage(strings.Replace(string(bad.Value), `"verdict":"pass"`, `"verdict":"fine"`, 1))
	r.Recipes[0].Records = append(r.Recipes[0].Records, bad)
	data, err := json.Marshal(r)
	require.NoError(t, err)
	assert.ErrorContains(t, Validate(data), "verdict")
}
