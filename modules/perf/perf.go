package perf

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/lnst-go/lnst/results"
)

// Flow is an iperf3 flow from Client to Server.
type Flow struct {
	// Name names the flow in records and baselines ("tcp").
	Name string
	// Client sends (receives with Reverse); Server runs the iperf3
	// server, listening on ServerAddr.
	Client, Server *lnsttest.Host
	ServerAddr     string
	// Port is the server's port; 0 means modules.DefaultIperf3Port.
	Port int
	// UDP selects UDP instead of TCP.
	UDP bool
	// Streams is the number of parallel streams; 0 means 1.
	Streams int
	// Duration is how long each iteration sends, in whole seconds; 0
	// means modules.DefaultIperf3Duration.
	Duration time.Duration
	// Bitrate is the target rate per stream as iperf3 -b takes it
	// ("1G"); "" is iperf3's default (unlimited for TCP, 1 Mbit/s for
	// UDP).
	Bitrate string
	// Reverse makes the server send and the client receive.
	Reverse bool
	// ClientCPU and ServerCPU pin the client and the server to a CPU
	// (iperf3 -A, "3"); "" leaves them free.
	ClientCPU, ServerCPU string

	// Kind is what MeasureFlows measures: a stream (iperf3) or a
	// request/response kind (the RR tool of the test binary). "" is
	// tcp_stream, or udp_stream when UDP is set. Measure runs stream
	// kinds only.
	Kind FlowKind
	// MsgSize is the size in bytes of each write (iperf3 -l) or of each
	// request and response; 0 is the tool's default (iperf3's, 1 byte
	// for RR kinds).
	MsgSize int
	// MPTCP runs a tcp_rr or tcp_crr flow over IPPROTO_MPTCP sockets
	// (the built-in RR tool); a connection that falls back to TCP fails
	// the flow.
	MPTCP bool
	// Processes is the number of client processes MeasureFlows runs
	// for the flow, each with Streams streams (iperf3: a server each, on
	// consecutive ports); 0 means 1.
	Processes int
}

func (f Flow) duration() time.Duration {
	if f.Duration == 0 {
		return modules.DefaultIperf3Duration
	}
	return f.Duration
}

func (f Flow) protocol() string {
	if f.UDP {
		return "UDP"
	}
	return "TCP"
}

// Options are how Measure repeats a flow. The zero value is 3 measured
// iterations after 1 warm-up, with a 95% confidence interval.
type Options struct {
	// Iterations is the number of measured runs; 0 means 3.
	Iterations int
	// Warmup is the number of runs before them, left out of the
	// statistics; 0 means 1, a negative number none.
	Warmup int
	// Confidence is the level of the confidence interval; 0 means 0.95.
	Confidence float64
	// Progress is how often Measure logs its progress in -v mode while
	// a flow runs; 0 means every 5s.
	Progress time.Duration
	// Interval is the length of the reporting intervals of MeasureFlows
	// (its flow tools and CPU samples); 0 means 500ms.
	Interval time.Duration
}

func (o Options) withDefaults() Options {
	if o.Iterations == 0 {
		o.Iterations = 3
	}
	switch {
	case o.Warmup == 0:
		o.Warmup = 1
	case o.Warmup < 0:
		o.Warmup = 0
	}
	if o.Confidence == 0 {
		o.Confidence = 0.95
	}
	if o.Progress == 0 {
		o.Progress = 5 * time.Second
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.Iterations < 1:
		return fmt.Errorf("Options.Iterations %d: want at least 1", o.Iterations)
	case !(o.Confidence > 0 && o.Confidence < 1):
		return fmt.Errorf("Options.Confidence %v: want a level between 0 and 1 (0.95)", o.Confidence)
	}
	return nil
}

func (f Flow) validate() error {
	switch {
	case f.Name == "":
		return fmt.Errorf("Flow has no Name")
	case f.Client == nil || f.Server == nil:
		return fmt.Errorf("Flow %q needs a Client and a Server host", f.Name)
	case f.ServerAddr == "":
		return fmt.Errorf("Flow %q has no ServerAddr", f.Name)
	case f.MPTCP && f.kind() != TCPRR && f.kind() != TCPCRR:
		return fmt.Errorf("Flow %q: MPTCP runs tcp_rr and tcp_crr (the built-in RR tool), not %s", f.Name, f.kind())
	}
	return nil
}

// Measure runs the flow Warmup+Iterations times, each time with a new
// iperf3 server on f.Server and the client on f.Client, and returns the
// throughput the receiver saw in each measured run with its statistics
// and the CPU utilisation of both hosts (sampled from /proc/stat before
// and after each run). It records the measurement as "perf <f.Name>"
// with lnsttest.Record and returns it: CheckBaseline adds to that record.
// In -v mode it logs its progress every Options.Progress. It fails the
// test when f or opts is invalid or a run fails.
func Measure(t testing.TB, f Flow, opts Options) *results.Measurement {
	t.Helper()
	opts = opts.withDefaults()
	if err := f.validate(); err != nil {
		t.Fatalf("perf.Measure: %v", err)
	}
	if k := f.kind(); k != TCPStream && k != UDPStream {
		t.Fatalf("perf.Measure %q: Measure runs tcp_stream and udp_stream flows, not %s: use MeasureFlows", f.Name, k)
	}
	if err := opts.validate(); err != nil {
		t.Fatalf("perf.Measure %q: %v", f.Name, err)
	}
	hosts := []*lnsttest.Host{f.Client}
	if f.Server != f.Client {
		hosts = append(hosts, f.Server)
	}
	var warmup, iterations []float64
	cpu := map[string][]float64{}
	total := opts.Warmup + opts.Iterations
	for i := range total {
		label := fmt.Sprintf("iteration %d/%d", i-opts.Warmup+1, opts.Iterations)
		if i < opts.Warmup {
			label = fmt.Sprintf("warm-up %d/%d", i+1, opts.Warmup)
		}
		bps, load := runOnce(t, f, hosts, opts.Progress, label, iterations)
		if i < opts.Warmup {
			warmup = append(warmup, bps)
			continue
		}
		iterations = append(iterations, bps)
		for h, u := range load {
			cpu[h] = append(cpu[h], u)
		}
	}
	m, err := summarize(f, warmup, iterations, cpu, opts.Confidence)
	if err != nil {
		t.Fatalf("perf.Measure %q: %v", f.Name, err)
	}
	lnsttest.Record(t, "perf "+f.Name, m)
	measuredLab.Store(m, f.Client.Lab())
	t.Logf("perf %s: %v", f.Name, m)
	return m
}

// runOnce runs the flow once and returns the receiver's throughput and
// each host's CPU utilisation during the run.
func runOnce(t testing.TB, f Flow, hosts []*lnsttest.Host, every time.Duration, label string, sofar []float64) (float64, map[string]float64) {
	t.Helper()
	srv := modules.Iperf3Server{Bind: f.ServerAddr, Port: f.Port, Affinity: f.ServerCPU}.Start(t, f.Server)
	before := sampleCPU(t, hosts)
	stop := logProgress(t, every, f, label, sofar)
	res := modules.Iperf3Client{
		Server: f.ServerAddr, Port: f.Port, Duration: f.Duration, Parallel: f.Streams,
		UDP: f.UDP, Bitrate: f.Bitrate, Reverse: f.Reverse, Affinity: f.ClientCPU,
	}.Run(t, f.Client)
	stop()
	after := sampleCPU(t, hosts)
	srv.Stop(t)
	load := map[string]float64{}
	for _, h := range hosts {
		load[h.Name()] = utilisation(before[h.Name()], after[h.Name()])
	}
	return res.BitsPerSecond, load
}

// sampleCPU reads the CPU times of each host.
func sampleCPU(t testing.TB, hosts []*lnsttest.Host) map[string]cpuTimes {
	t.Helper()
	s := map[string]cpuTimes{}
	for _, h := range hosts {
		j := h.RunArgv(t, []string{"cat", "/proc/stat"}, lnsttest.Quiet(),
			lnsttest.Desc("sample CPU times"), lnsttest.Timeout(10*time.Second))
		c, err := parseProcStat(j.Result().Stdout)
		if err != nil {
			t.Fatalf("host %s: %v", h.Name(), err)
		}
		s[h.Name()] = c
	}
	return s
}

// logProgress logs, in -v mode, every so often while a run goes on, how
// far it is and the mean so far; the returned stop ends that, and must be
// called before the test ends.
func logProgress(t testing.TB, every time.Duration, f Flow, label string, sofar []float64) (stop func()) {
	if !testing.Verbose() || every <= 0 {
		return func() {}
	}
	start := time.Now()
	mean := "no run measured yet"
	if st, err := Compute(sofar, 0.95); err == nil {
		mean = fmt.Sprintf("mean so far %s over %d %s", results.FormatValue(st.Mean, results.UnitBitsPerSecond),
			st.N, plural(st.N, "run", "runs"))
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				t.Logf("perf %s: %s, %v of %v; %s", f.Name, label,
					time.Since(start).Round(100*time.Millisecond), f.duration(), mean)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// summarize makes the Measurement of a flow's runs.
func summarize(f Flow, warmup, iterations []float64, cpu map[string][]float64, confidence float64) (*results.Measurement, error) {
	st, err := Compute(iterations, confidence)
	if err != nil {
		return nil, err
	}
	m := &results.Measurement{
		Flow:       f.Name,
		Protocol:   f.protocol(),
		Streams:    max(f.Streams, 1),
		Duration:   results.Duration(f.duration()),
		Unit:       results.UnitBitsPerSecond,
		Iterations: iterations,
		Warmup:     warmup,
		Mean:       st.Mean,
		StdDev:     st.StdDev,
		CILow:      st.CILow,
		CIHigh:     st.CIHigh,
		Confidence: confidence,
		CPU:        map[string]results.CPUStats{},
	}
	for h, us := range cpu {
		var sum float64
		for _, u := range us {
			sum += u
		}
		m.CPU[h] = results.CPUStats{Mean: sum / float64(len(us)), Iterations: us}
	}
	return m, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
