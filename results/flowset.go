package results

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// KindFlowSet is the Record.Kind of a record whose Value is a FlowSet.
const KindFlowSet = "flow_set"

// Units of flow metrics (FlowSet.Flows[].Metrics).
const (
	UnitPacketsPerSecond      = "pkt/s"
	UnitTransactionsPerSecond = "trans/s"
	UnitSeconds               = "s"
	UnitPercent               = "%"
)

// Names of flow metrics, the keys of FlowStats.Metrics and
// FlowSet.Aggregate. Stream flows have the throughput metrics, RR and CRR
// flows the transaction rate and the latency percentiles.
const (
	MetricGenBits    = "generator_bits_per_second"
	MetricRecvBits   = "receiver_bits_per_second"
	MetricGenPackets = "generator_packets_per_second"
	MetricRecvPkts   = "receiver_packets_per_second"
	MetricRate       = "transactions_per_second"
	MetricLatP50     = "latency_p50"
	MetricLatP90     = "latency_p90"
	MetricLatP99     = "latency_p99"
	MetricLatMax     = "latency_max"
)

// FlowSet is a set of flows measured in parallel and time-aligned, several
// times: what each flow and the host CPUs did in each measured iteration
// over the window common to all flows, with the intervals they were
// measured in, and the statistics of every metric over the iterations.
type FlowSet struct {
	// Name names the set ("tcp_udp_both_ways").
	Name string `json:"name"`
	// Interval is the length of the reporting intervals.
	Interval Duration `json:"interval"`
	// Warmup is the number of warm-up iterations run first, left out.
	Warmup int `json:"warmup"`
	// Confidence is the level of the confidence intervals (0.95).
	Confidence float64 `json:"confidence"`
	// Flows describe the flows and the statistics of their metrics.
	Flows []FlowStats `json:"flows"`
	// Aggregate are the statistics of the sums of the flows' metrics
	// over the common window (rates only: percentiles do not add).
	Aggregate map[string]MetricStats `json:"aggregate"`
	// CPU are the statistics of each host's busy share of its CPUs
	// (0..100) over the common window, by the host's recipe name.
	CPU map[string]MetricStats `json:"cpu"`
	// Iterations are the measured iterations, in order.
	Iterations []FlowSetIteration `json:"iterations"`
}

// FlowStats is one flow of a FlowSet.
type FlowStats struct {
	// Name names the flow within the set ("tcp_fwd").
	Name string `json:"name"`
	// Kind is tcp_stream, udp_stream, sctp_stream, tcp_rr, udp_rr or
	// tcp_crr.
	Kind string `json:"kind"`
	// Client and Server are the recipe names of the hosts; Address is
	// the address the client reaches the server at.
	Client  string `json:"client"`
	Server  string `json:"server"`
	Address string `json:"address"`
	// Reverse is set when the server generates and the client receives.
	Reverse bool `json:"reverse"`
	// MsgSize is the message (write, datagram, request) size in bytes; 0
	// the tool's default.
	MsgSize int `json:"msg_size"`
	// Streams is the number of connections of each process; Processes
	// the number of client processes.
	Streams   int `json:"streams"`
	Processes int `json:"processes"`
	// Duration is how long each iteration ran.
	Duration Duration `json:"duration"`
	// Metrics are the statistics of the flow's metrics over the
	// iterations, by metric name (MetricRecvBits...).
	Metrics map[string]MetricStats `json:"metrics"`
}

// MetricStats are the statistics of one metric over the iterations.
type MetricStats struct {
	// Unit is the metric's unit ("bit/s", "pkt/s", "trans/s", "s", "%").
	Unit string `json:"unit"`
	// Iterations are the metric's value in each measured iteration.
	Iterations []float64 `json:"iterations"`
	// Mean, StdDev (n-1), and the Student t confidence interval of the
	// mean at the set's Confidence.
	Mean   float64 `json:"mean"`
	StdDev float64 `json:"std_dev"`
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
}

// FlowSetIteration is one run of every flow of a set, all started
// together. Offsets (Start, End of windows and intervals) are seconds
// from StartAt.
type FlowSetIteration struct {
	// StartAt is when every flow was told to start (RFC 3339).
	StartAt string `json:"start_at"`
	// WindowStart and WindowEnd bound the common window: the
	// intersection of the spans the flows measured.
	WindowStart float64 `json:"window_start"`
	WindowEnd   float64 `json:"window_end"`
	// Flows are the flows' figures over the window, in the set's order.
	Flows []FlowRun `json:"flows"`
	// Aggregate are the sums of the flows' rates over the window.
	Aggregate map[string]float64 `json:"aggregate"`
	// CPU is the CPU use of each host over the window.
	CPU map[string]HostCPU `json:"cpu"`
}

// FlowRun is what one flow measured in one iteration.
type FlowRun struct {
	// Name is the flow's name.
	Name string `json:"name"`
	// Start and End bound the span the flow measured.
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	// Metrics are the flow's figures over the common window.
	Metrics map[string]float64 `json:"metrics"`
	// Intervals are the flow's figures as its tool reported them.
	Intervals []Interval `json:"intervals"`
}

// Interval is a reporting interval of a flow or host.
type Interval struct {
	Start   float64            `json:"start"`
	End     float64            `json:"end"`
	Metrics map[string]float64 `json:"metrics"`
}

// HostCPU is the CPU use of a host over a window, from /proc/stat, in
// percent of the CPU time that passed (0..100).
type HostCPU struct {
	// Total is over all the host's CPUs.
	Total CPUShare `json:"total"`
	// PerCPU are the host's CPUs, in /proc/stat's order.
	PerCPU []CPUShare `json:"per_cpu"`
	// Intervals are the total busy share in each sampling interval.
	Intervals []Interval `json:"intervals"`
}

// CPUShare is how one CPU (or all) spent a window, in percent.
type CPUShare struct {
	// CPU is "cpu" for the total, else "cpu0", "cpu1"...
	CPU string `json:"cpu"`
	// Busy is everything but idle and iowait; User includes nice.
	Busy    float64 `json:"busy"`
	User    float64 `json:"user"`
	System  float64 `json:"system"`
	Irq     float64 `json:"irq"`
	Softirq float64 `json:"softirq"`
}

// String formats s as the RESULTS SUMMARY shows it: one line per flow,
// the aggregate and the CPU of each host, means over the iterations.
func (s FlowSet) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d flows in parallel, %d %s", len(s.Flows), len(s.Iterations), plural(len(s.Iterations), "run", "runs"))
	for _, f := range s.Flows {
		fmt.Fprintf(&b, "\n  %s (%s %s->%s", f.Name, f.Kind, f.Client, f.Server)
		if f.Reverse {
			b.WriteString(" reverse")
		}
		b.WriteString("):")
		b.WriteString(formatMetrics(f.Metrics))
	}
	if len(s.Aggregate) > 0 {
		b.WriteString("\n  aggregate:" + formatMetrics(s.Aggregate))
	}
	if len(s.CPU) > 0 {
		b.WriteString("\n  cpu:")
		for _, h := range sortedKeys(s.CPU) {
			fmt.Fprintf(&b, " %s %s", h, percent(s.CPU[h].Mean))
		}
	}
	return b.String()
}

// metricOrder is the order metrics are printed in.
var metricOrder = []string{MetricGenBits, MetricRecvBits, MetricGenPackets, MetricRecvPkts, MetricRate,
	MetricLatP50, MetricLatP90, MetricLatP99, MetricLatMax}

var metricLabel = map[string]string{
	MetricGenBits: "gen", MetricRecvBits: "recv", MetricGenPackets: "gen", MetricRecvPkts: "recv",
	MetricRate: "rate", MetricLatP50: "p50", MetricLatP90: "p90", MetricLatP99: "p99", MetricLatMax: "max",
}

func formatMetrics(m map[string]MetricStats) string {
	var b strings.Builder
	names := make([]string, 0, len(m))
	for _, n := range metricOrder {
		if _, ok := m[n]; ok {
			names = append(names, n)
		}
	}
	var rest []string
	for n := range m {
		if _, ok := metricLabel[n]; !ok {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	for _, n := range append(names, rest...) {
		st := m[n]
		label := metricLabel[n]
		if label == "" {
			label = n
		}
		v := FormatValue(st.Mean, st.Unit)
		if st.Unit == UnitSeconds {
			v = fmt.Sprintf("%.1fµs", st.Mean*1e6)
		} else if st.Unit != UnitBitsPerSecond {
			v = fmt.Sprintf("%.0f %s", st.Mean, st.Unit)
		}
		fmt.Fprintf(&b, " %s %s", label, v)
		if st.StdDev > 0 && st.Mean != 0 {
			fmt.Fprintf(&b, " ±%.0f%%", 100*st.StdDev/st.Mean)
		}
	}
	return b.String()
}

// FlowSet decodes the record's Value as a FlowSet; ok is false when the
// record is not one.
func (r Record) FlowSet() (s FlowSet, ok bool) {
	if r.Kind != KindFlowSet {
		return FlowSet{}, false
	}
	if err := json.Unmarshal(r.Value, &s); err != nil {
		return FlowSet{}, false
	}
	return s, true
}
