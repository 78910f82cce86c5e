package perf

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/results"
)

// Metric is one figure of a measurement that evaluators judge: its
// samples (one per measured iteration), unit and direction
// (results.Metric, which lnst results compare lines up too). Evaluators
// know nothing else of a measurement, so a new kind of measurement
// (latency percentiles, a transaction rate) is evaluated by giving its
// Metrics.
type Metric = results.Metric

// family is the metric's name up to its first blank: "cpu" for "cpu h1",
// the key of per-family tolerances.
func family(m Metric) string {
	f, _, _ := strings.Cut(m.Name, " ")
	return f
}

// Subject is what evaluators judge: a measured flow's name and its
// metrics.
type Subject struct {
	// Name is the flow's name ("tcp").
	Name    string
	Metrics []Metric
}

// SubjectOf gives the metrics of a Measurement (Measurement.Metrics):
// "throughput" (higher is better) and "cpu HOST" for each host (lower is
// better).
func SubjectOf(m *results.Measurement) Subject {
	return Subject{Name: m.Flow, Metrics: m.Metrics()}
}

// SubjectsOf gives the subjects of a flow set (results.FlowSet.Metrics):
// one per flow with its rates and latencies, then "aggregate" with the
// sums over the flows and each host's CPU use ("cpu HOST"), so NonZero
// and MetricBaselines.Check judge every flow of a MeasureFlows run.
func SubjectsOf(set *results.FlowSet) []Subject {
	var out []Subject
	idx := map[string]int{}
	for _, m := range set.Metrics() {
		i, ok := idx[m.Subject]
		if !ok {
			i = len(out)
			idx[m.Subject] = i
			out = append(out, Subject{Name: m.Subject})
		}
		out[i].Metrics = append(out[i].Metrics, m.Metric)
	}
	return out
}

// With returns s with more metrics (a derived one, from CPUPerThroughput
// or TimeTaken).
func (s Subject) With(ms ...Metric) Subject {
	s.Metrics = append(append([]Metric(nil), s.Metrics...), ms...)
	return s
}

// record records e as "eval EVALUATOR SUBJECT METRIC" (results.json and
// the RESULTS SUMMARY) and fails the test, without stopping it, when its
// verdict is a failure; an improvement and an unchecked one are logged.
func record(t testing.TB, e results.Evaluation) {
	t.Helper()
	lnsttest.Record(t, fmt.Sprintf("eval %s %s %s", e.Evaluator, e.Subject, e.Metric), e)
	switch e.Verdict {
	case results.EvalFail:
		t.Errorf("perf %v", e)
	default:
		t.Logf("perf %v", e)
	}
}

// NonZero fails the test (without stopping it) when a higher-is-better
// metric of s (throughput, a rate) has no sample or a sample that is not
// above zero: a flow that did not flow. It records a verdict per such
// metric and returns them.
func NonZero(t testing.TB, s Subject) []results.Evaluation {
	t.Helper()
	var out []results.Evaluation
	for _, m := range s.Metrics {
		if !m.HigherIsBetter {
			continue
		}
		e := results.Evaluation{Evaluator: "nonzero", Subject: s.Name, Metric: m.Name, Unit: m.Unit,
			HigherIsBetter: true, Value: m.Mean(), Verdict: results.EvalPass}
		var zero []string
		for i, v := range m.Samples {
			if !(v > 0) {
				zero = append(zero, fmt.Sprint(i+1))
			}
		}
		switch {
		case len(m.Samples) == 0:
			e.Verdict, e.Note = results.EvalFail, "no iteration measured"
		case len(zero) > 0:
			e.Verdict = results.EvalFail
			e.Note = fmt.Sprintf("nothing in %s %s of %d", plural(len(zero), "iteration", "iterations"),
				strings.Join(zero, ", "), len(m.Samples))
		default:
			e.Note = fmt.Sprintf("all %d iterations above zero", len(m.Samples))
		}
		record(t, e)
		out = append(out, e)
	}
	return out
}

// UnitCPUSecondsPerGbit is the unit of the CPU-per-throughput metric: the
// CPU time a host spent (all its CPUs, busy time of /proc/stat) per
// gigabit carried. Chosen over cycles per bit because it needs no clock
// rate: "cpu MHz" of /proc/cpuinfo is the current, scaled frequency of
// one moment, and turbo and idle states make it no constant; at a known
// fixed clock f GHz, cycles per bit = CPU-s/Gbit × f.
const UnitCPUSecondsPerGbit = "CPU-s/Gbit"

// CPUPerThroughput derives, for each host measured in m, the CPU time it
// spent per gigabit carried ("cpu_per_gbit HOST", lower is better): per
// iteration, utilisation/100 × the host's CPU count / (throughput in
// Gbit/s). With max > 0 it fails the test when a host's mean is above
// max; otherwise the verdict is unchecked and the baseline evaluator
// judges the metrics it returns (Subject.With). hosts are the measured
// hosts by their recipe names (m.CPU's keys).
func CPUPerThroughput(t testing.TB, m *results.Measurement, max float64, hosts ...*lnsttest.Host) []Metric {
	t.Helper()
	var out []Metric
	for _, h := range hosts {
		cpu, ok := m.CPU[h.Name()]
		if !ok {
			t.Errorf("perf.CPUPerThroughput %s: no CPU figures of host %s in the measurement", m.Flow, h.Name())
			continue
		}
		metric := Metric{Name: "cpu_per_gbit " + h.Name(), Unit: UnitCPUSecondsPerGbit,
			Samples: cpuPerGbit(cpu.Iterations, m.Iterations, h.NumCPU(t))}
		e := results.Evaluation{Evaluator: "cpu_per_throughput", Subject: m.Flow, Metric: metric.Name,
			Unit: metric.Unit, Value: metric.Mean(), Reference: max, Verdict: results.EvalUnchecked,
			Note: "no limit given: the baseline evaluator compares it"}
		if max > 0 {
			e.Delta = 100 * (e.Value - max) / max
			e.Verdict, e.Note = results.EvalPass, "at most the limit"
			if e.Value > max {
				e.Verdict, e.Note = results.EvalFail, "above the limit"
			}
		}
		record(t, e)
		out = append(out, metric)
	}
	return out
}

// cpuPerGbit is, per iteration, the CPU-seconds spent per gigabit:
// (util/100 × ncpu) CPU-seconds per second over (bps/1e9) Gbit per
// second. An iteration that carried nothing is left out.
func cpuPerGbit(util, bps []float64, ncpu int) []float64 {
	var out []float64
	for i := range min(len(util), len(bps)) {
		if bps[i] <= 0 {
			continue
		}
		out = append(out, util[i]/100*float64(ncpu)/(bps[i]/1e9))
	}
	return out
}

// TimeTaken runs f, and fails the test (without stopping it) when it took
// longer than limit: a measurement that hung or crawled. It records the
// verdict and returns the time as a metric ("time", seconds, lower is
// better) for the baseline evaluator.
func TimeTaken(t testing.TB, subject string, limit time.Duration, f func()) Metric {
	t.Helper()
	start := time.Now()
	f()
	took := time.Since(start)
	e := results.Evaluation{Evaluator: "time_taken", Subject: subject, Metric: "time", Unit: "s",
		Value: took.Seconds(), Reference: limit.Seconds(), Verdict: results.EvalPass, Note: "within the limit"}
	if limit > 0 {
		e.Delta = 100 * (took.Seconds() - limit.Seconds()) / limit.Seconds()
	}
	if took > limit {
		e.Verdict, e.Note = results.EvalFail, fmt.Sprintf("took %v, over the limit of %v", took.Round(time.Millisecond), limit)
	}
	record(t, e)
	return Metric{Name: "time", Unit: "s", Samples: []float64{took.Seconds()}}
}
