package perf

import (
	"fmt"
	"time"

	"github.com/lnst-go/lnst/results"
)

// sample is what a flow tool counted over one of its reporting
// intervals, in absolute time.
type sample struct {
	Start, End time.Time
	// Bytes and packets (messages, datagrams) the generator sent and
	// the receiver received.
	GenBytes, RecvBytes, GenPackets, RecvPackets float64
	// Trans is the number of transactions (RR) or connections (CRR)
	// completed; Lat their latencies.
	Trans float64
	Lat   *Histogram
}

// flowSamples are one flow's samples of one iteration.
type flowSamples struct {
	Name    string
	RR      bool // report Trans and Lat, not bytes
	Samples []sample
}

// span is the time a flow measured: from its first sample's start to its
// last one's end.
func (f flowSamples) span() (time.Time, time.Time, error) {
	if len(f.Samples) == 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("flow %q reported no interval", f.Name)
	}
	return f.Samples[0].Start, f.Samples[len(f.Samples)-1].End, nil
}

// commonWindow is the intersection of the flows' spans: from the latest
// start to the earliest end. It fails when they do not overlap.
func commonWindow(flows []flowSamples) (time.Time, time.Time, error) {
	var from, to time.Time
	for i, f := range flows {
		s, e, err := f.span()
		if err != nil {
			return from, to, err
		}
		if i == 0 || s.After(from) {
			from = s
		}
		if i == 0 || e.Before(to) {
			to = e
		}
	}
	if len(flows) == 0 {
		return from, to, fmt.Errorf("no flow")
	}
	if !to.After(from) {
		// A flow that started after another had ended started late:
		// the host took longer than the start lead to start it.
		return from, to, transientError{fmt.Errorf("the flows' spans do not overlap (latest start %v after earliest end %v)",
			from.Format(time.StampMicro), to.Format(time.StampMicro))}
	}
	return from, to, nil
}

// overlap is the share of s that lies in [from, to], 0 to 1.
func overlap(s sample, from, to time.Time) float64 {
	length := s.End.Sub(s.Start)
	if length <= 0 {
		return 0
	}
	a, b := s.Start, s.End
	if from.After(a) {
		a = from
	}
	if to.Before(b) {
		b = to
	}
	if !b.After(a) {
		return 0
	}
	return float64(b.Sub(a)) / float64(length)
}

// rates are a flow's figures over [from, to]: each interval's counts
// weighed by the share of it inside the window (a tool's counts are
// taken as even within an interval), divided by the window's length. The
// latency percentiles are of the intervals at least half inside.
func (f flowSamples) rates(from, to time.Time) map[string]float64 {
	secs := to.Sub(from).Seconds()
	var gb, rb, gp, rp, tr float64
	var lat Histogram
	for _, s := range f.Samples {
		w := overlap(s, from, to)
		gb += w * s.GenBytes
		rb += w * s.RecvBytes
		gp += w * s.GenPackets
		rp += w * s.RecvPackets
		tr += w * s.Trans
		if w >= 0.5 {
			lat.Merge(s.Lat)
		}
	}
	if f.RR {
		m := map[string]float64{results.MetricRate: tr / secs}
		if lat.N > 0 {
			m[results.MetricLatP50] = lat.Percentile(0.5).Seconds()
			m[results.MetricLatP90] = lat.Percentile(0.9).Seconds()
			m[results.MetricLatP99] = lat.Percentile(0.99).Seconds()
			m[results.MetricLatMax] = lat.Max.Seconds()
		}
		return m
	}
	return map[string]float64{
		results.MetricGenBits:    8 * gb / secs,
		results.MetricRecvBits:   8 * rb / secs,
		results.MetricGenPackets: gp / secs,
		results.MetricRecvPkts:   rp / secs,
	}
}

// intervals are a flow's samples as rates, offsets from at.
func (f flowSamples) intervals(at time.Time) []results.Interval {
	out := []results.Interval{}
	for _, s := range f.Samples {
		out = append(out, results.Interval{
			Start: s.Start.Sub(at).Seconds(), End: s.End.Sub(at).Seconds(),
			Metrics: flowSamples{Name: f.Name, RR: f.RR, Samples: []sample{s}}.rates(s.Start, s.End),
		})
	}
	return out
}

// summableMetrics are the metrics an aggregate adds up.
var summableMetrics = []string{results.MetricGenBits, results.MetricRecvBits, results.MetricGenPackets,
	results.MetricRecvPkts, results.MetricRate}

// alignIteration computes one iteration of a flow set, started at at:
// the common window of the flows, each flow's figures over it, their
// sums, and each host's CPU use over it.
func alignIteration(at time.Time, flows []flowSamples, cpu map[string][]cpuSample) (results.FlowSetIteration, error) {
	it := results.FlowSetIteration{StartAt: at.UTC().Format(time.RFC3339Nano), Flows: []results.FlowRun{},
		Aggregate: map[string]float64{}, CPU: map[string]results.HostCPU{}}
	from, to, err := commonWindow(flows)
	if err != nil {
		return it, err
	}
	it.WindowStart, it.WindowEnd = from.Sub(at).Seconds(), to.Sub(at).Seconds()
	for _, f := range flows {
		s, e, _ := f.span()
		m := f.rates(from, to)
		it.Flows = append(it.Flows, results.FlowRun{Name: f.Name, Start: s.Sub(at).Seconds(), End: e.Sub(at).Seconds(),
			Metrics: m, Intervals: f.intervals(at)})
		for _, k := range summableMetrics {
			if v, ok := m[k]; ok {
				it.Aggregate[k] += v
			}
		}
	}
	for h, samples := range cpu {
		c, err := hostCPU(samples, at, it.WindowStart, it.WindowEnd)
		if err != nil {
			return it, fmt.Errorf("host %s: %w", h, err)
		}
		it.CPU[h] = c
	}
	return it, nil
}
