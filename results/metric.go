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
