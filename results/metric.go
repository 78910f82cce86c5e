package results

import "sort"

// Metric is one figure of a measurement, per iteration, with its unit and
// direction: what evaluators judge and lnst results compare lines up. A
// new kind of measurement is evaluated and compared by giving its Metrics.
type Metric struct {
	// Name names the figure within its measurement: "throughput",
	// "cpu h1", "cpu_per_gbit h1", "time", "latency p99".
	Name string
	// Unit is the unit of Samples ("bit/s", "%", "CPU-s/Gbit", "s").
	Unit string
	// HigherIsBetter is the direction: true for throughput and rates,
	// false for CPU use, latency and time.
	HigherIsBetter bool
	// Samples are the figures of the measured iterations.
	Samples []float64
}

// Mean is the mean of the samples, 0 when there are none.
func (m Metric) Mean() float64 {
	if len(m.Samples) == 0 {
		return 0
	}
	var s float64
	for _, v := range m.Samples {
		s += v
	}
	return s / float64(len(m.Samples))
}

// Metrics are the metrics of m: "throughput" in m.Unit (higher is
// better), then "cpu HOST" in percent for each host by name (lower is
// better).
func (m Measurement) Metrics() []Metric {
	ms := []Metric{{Name: "throughput", Unit: m.Unit, HigherIsBetter: true, Samples: m.Iterations}}
	hosts := make([]string, 0, len(m.CPU))
	for h := range m.CPU {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		ms = append(ms, Metric{Name: "cpu " + h, Unit: "%", Samples: m.CPU[h].Iterations})
	}
	return ms
}

// FlowSetMetric is one metric of a FlowSet, named for evaluators and
// comparison: the flow's name or "aggregate" as the subject, the metric
// as "flow METRIC", "aggregate METRIC" or "cpu HOST".
type FlowSetMetric struct {
	// Subject is the flow's name, or "aggregate" for the sums over the
	// flows and the hosts' CPU use.
	Subject string
	Metric
}

// Metrics are the metrics of every flow of s, then its aggregate and the
// CPU use of each host: rates (bit/s, pkt/s, trans/s) are higher-is-better,
// latencies and CPU use lower-is-better. Names are stable across runs, so
// lnst results compare lines them up: "FLOW receiver_bits_per_second",
// "aggregate transactions_per_second", "cpu h1".
func (s FlowSet) Metrics() []FlowSetMetric {
	var out []FlowSetMetric
	add := func(subject, prefix string, ms map[string]MetricStats) {
		names := make([]string, 0, len(ms))
		for n := range ms {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			st := ms[n]
			higher := st.Unit != UnitSeconds && st.Unit != UnitPercent
			out = append(out, FlowSetMetric{Subject: subject, Metric: Metric{
				Name: prefix + n, Unit: st.Unit, HigherIsBetter: higher, Samples: st.Iterations}})
		}
	}
	for _, f := range s.Flows {
		add(f.Name, f.Name+" ", f.Metrics)
	}
	add("aggregate", "aggregate ", s.Aggregate)
	add("aggregate", "cpu ", s.CPU)
	return out
}
