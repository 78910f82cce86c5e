package perf

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/results"
)

// Default ports of MeasureFlows' servers when a Flow's Port is 0: flow i
// of a set uses base+16*i (+ the process number for iperf3).
const (
	flowsIperf3Port = 5201
	flowsRRPort     = 12866
	maxProcesses    = 16
)

// MeasureFlows runs flows in parallel, time-aligned, Warmup+Iterations
// times, and returns what each measured over the window common to all of
// them, with the CPU use of every host involved over that window.
//
// Each iteration starts every flow's servers, then tells every client to
// start at the same moment (a start time, not a signal: each client
// process waits for it on its host), samples /proc/stat of each host at
// that moment and every Options.Interval after it, and collects the
// flows' per-interval figures. The common window is the intersection of
// the spans the flows measured; each flow's figures (generator and
// receiver bits and packets per second for streams; transactions or
// connections per second and latency percentiles for RR and CRR), their
// sums and the CPU use are computed over it. The set is recorded as
// "perf <name>" (a results.FlowSet) and returned. It fails the test when
// a flow or opts is invalid or a tool fails.
func MeasureFlows(t testing.TB, name string, opts Options, flows ...Flow) *results.FlowSet {
	t.Helper()
	opts = opts.forFlows()
	if err := validateSet(name, opts, flows); err != nil {
		t.Fatalf("perf.MeasureFlows: %v", err)
	}
	var runners []flowRunner
	hosts := map[string]*lnsttest.Host{}
	dur := time.Duration(0)
	for i, f := range flows {
		if f.kind().rr() {
			runners = append(runners, &rrRunner{f: f, port: flowPort(f, i, flowsRRPort), interval: opts.Interval})
		} else {
			runners = append(runners, &streamRunner{f: f, port: flowPort(f, i, flowsIperf3Port), interval: opts.Interval})
		}
		hosts[f.Client.Name()], hosts[f.Server.Name()] = f.Client, f.Server
		dur = max(dur, f.duration())
	}
	cpus := map[string]cpuSampler{}
	for n, h := range hosts {
		cpus[n] = &hostSampler{h: h}
	}
	prof := newProfiler(t, name, hosts) // profile.go; nil unless -lnst.profile
	perJob := 40 * time.Millisecond
	for _, h := range hosts {
		if h.Emulated() {
			// A guest under TCG (the VM lab's, a libvirt pool's) takes a
			// second or more to start a process (a module runs a 20 MB
			// test binary).
			perJob = 1500 * time.Millisecond
		}
	}
	lead := startLead(len(runners)+len(cpus), perJob)
	var its []results.FlowSetIteration
	for i := range opts.Warmup + opts.Iterations {
		var hook windowHook
		if prof != nil && i >= opts.Warmup {
			prof.iteration = i - opts.Warmup + 1
			prof.label = fmt.Sprintf("iteration %d/%d", prof.iteration, opts.Iterations)
			hook = prof
		}
		it, err := retryTransient(t, fmt.Sprintf("perf %s: iteration %d", name, i+1), func(try int) (results.FlowSetIteration, error) {
			// Each retry doubles the start lead: a loaded host may
			// have started a flow after the others had ended.
			return runIteration(t, runners, cpus, opts.Interval, dur, lead<<try, hook)
		})
		if err != nil {
			t.Fatalf("perf.MeasureFlows %q: iteration %d: %v", name, i+1, err)
		}
		label := fmt.Sprintf("iteration %d/%d", i-opts.Warmup+1, opts.Iterations)
		if i < opts.Warmup {
			label = fmt.Sprintf("warm-up %d/%d", i+1, opts.Warmup)
		} else {
			its = append(its, it)
		}
		t.Logf("perf %s: %s: window %.3fs..%.3fs, aggregate %s", name, label, it.WindowStart, it.WindowEnd, formatValues(it.Aggregate))
	}
	set, err := summarizeSet(name, opts, flows, its)
	if err != nil {
		t.Fatalf("perf.MeasureFlows %q: %v", name, err)
	}
	lnsttest.Record(t, "perf "+name, set)
	t.Logf("perf %s: %v", name, set)
	return set
}

// forFlows is o as MeasureFlows uses it: the defaults of Options, and
// intervals of 500ms.
func (o Options) forFlows() Options {
	o = o.withDefaults()
	if o.Interval == 0 {
		o.Interval = 500 * time.Millisecond
	}
	return o
}

func flowPort(f Flow, i, base int) int {
	if f.Port != 0 {
		return f.Port
	}
	return base + maxProcesses*i
}

func validateSet(name string, opts Options, flows []Flow) error {
	if name == "" {
		return fmt.Errorf("the flow set has no name")
	}
	if err := opts.validate(); err != nil {
		return fmt.Errorf("set %q: %w", name, err)
	}
	if opts.Interval < 100*time.Millisecond {
		return fmt.Errorf("set %q: Options.Interval %v: want at least 100ms", name, opts.Interval)
	}
	if len(flows) == 0 {
		return fmt.Errorf("set %q has no flow", name)
	}
	seen := map[string]bool{}
	for _, f := range flows {
		if err := f.validate(); err != nil {
			return fmt.Errorf("set %q: %w", name, err)
		}
		if seen[f.Name] {
			return fmt.Errorf("set %q: two flows named %q", name, f.Name)
		}
		seen[f.Name] = true
		switch k := f.kind(); k {
		case TCPStream, UDPStream, SCTPStream, TCPRR, UDPRR, TCPCRR:
		default:
			return fmt.Errorf("set %q: flow %q: Kind %q is not one of tcp_stream, udp_stream, sctp_stream, tcp_rr, udp_rr, tcp_crr", name, f.Name, k)
		}
		switch {
		case f.Duration < 0 || f.Duration%time.Second != 0:
			return fmt.Errorf("set %q: flow %q: Duration %v is not a whole number of seconds", name, f.Name, f.Duration)
		case f.Processes < 0 || f.Processes > maxProcesses:
			return fmt.Errorf("set %q: flow %q: Processes %d is not in 0..%d", name, f.Name, f.Processes, maxProcesses)
		case f.Streams < 0 || f.MsgSize < 0:
			return fmt.Errorf("set %q: flow %q: Streams %d and MsgSize %d must not be negative", name, f.Name, f.Streams, f.MsgSize)
		case f.kind().rr() && f.MsgSize > maxRRMsgSize(f.kind()):
			return fmt.Errorf("set %q: flow %q: MsgSize %d: a %s message is at most %d bytes", name, f.Name, f.MsgSize, f.kind(), maxRRMsgSize(f.kind()))
		}
		for _, c := range []string{f.ClientCPU, f.ServerCPU} {
			if _, err := parseCPU(c); err != nil {
				return fmt.Errorf("set %q: flow %q: %w", name, f.Name, err)
			}
		}
	}
	return nil
}

// flowRunner runs one flow of a set for an iteration: prepare starts its
// servers; start starts its clients, to begin at at; finish waits for
// them, stops the servers and returns what the flow measured.
// iperf3UDPSetupLost is how iperf3 reports that the datagram setting up
// a UDP stream, or its answer, was lost: iperf3 does not resend it
// (esnet/iperf#862), so a loaded host (full socket buffers, the other
// flows of the set at full rate) fails the whole flow at its start.
const iperf3UDPSetupLost = "unable to read from stream socket"

// transientRetries is how many more times MeasureFlows measures an
// iteration that failed with a transientError.
const transientRetries = 2

// transientError is a failure that says nothing about the network under
// test (a lost iperf3 UDP setup datagram, a flow started after another
// had ended on a loaded host): the iteration is measured again, with a
// longer start lead, and the retry is logged.
type transientError struct{ error }

func (e transientError) Unwrap() error { return e.error }

// retryTransient runs run (try 0) and again while it fails with a
// transientError, at most transientRetries more times (try 1, 2...),
// logging each retry under what.
func retryTransient(t testing.TB, what string, run func(try int) (results.FlowSetIteration, error)) (results.FlowSetIteration, error) {
	t.Helper()
	it, err := run(0)
	for try := 1; err != nil && errors.As(err, new(transientError)) && try <= transientRetries; try++ {
		t.Logf("%s: %v: measuring it again (retry %d of %d)", what, err, try, transientRetries)
		it, err = run(try)
	}
	return it, err
}

type flowRunner interface {
	prepare(t testing.TB)
	start(t testing.TB, at time.Time)
	finish(t testing.TB) (flowSamples, error)
}

// cpuSampler samples a host's /proc/stat count+1 times, at at and every
// every after it.
type cpuSampler interface {
	start(t testing.TB, at time.Time, every time.Duration, count int)
	finish(t testing.TB) ([]cpuSample, error)
}

// startLead is how far ahead of now an iteration's start is set, for
// each job to be started before it: a Go process starts in ~15 ms here
// (perJob 40 ms), more on a loaded machine, seconds in a TCG guest. A
// client that starts late only narrows the common window; one that starts
// after another flow ended leaves none.
func startLead(jobs int, perJob time.Duration) time.Duration {
	return 200*time.Millisecond + time.Duration(jobs)*perJob
}

// runIteration runs every flow once, all started at the same time, with
// the CPU samplers on the same clock, and aligns what they measured.
// hook, when not nil, is told the start time before any client starts
// and the end once every flow has finished.
func runIteration(t testing.TB, flows []flowRunner, cpus map[string]cpuSampler, every, dur, lead time.Duration, hook windowHook) (results.FlowSetIteration, error) {
	t.Helper()
	for _, f := range flows {
		f.prepare(t)
	}
	at := time.Now().Add(lead).Round(0)
	count := int(math.Ceil(float64(dur)/float64(every))) + 1 // one sample past the end
	for _, h := range slices.Sorted(mapKeys(cpus)) {
		cpus[h].start(t, at, every, count)
	}
	if hook != nil {
		hook.begin(t, at)
	}
	for _, f := range flows {
		f.start(t, at)
	}
	var fs []flowSamples
	var firstErr error
	for _, f := range flows {
		s, err := f.finish(t)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		fs = append(fs, s)
	}
	if hook != nil {
		hook.end(t)
	}
	cpu := map[string][]cpuSample{}
	for h, c := range cpus {
		s, err := c.finish(t)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("host %s: CPU samples: %w", h, err)
		}
		cpu[h] = s
	}
	if firstErr != nil {
		return results.FlowSetIteration{}, firstErr
	}
	return alignIteration(at, fs, cpu)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// metricUnit is the unit of a metric.
func metricUnit(name string) string {
	switch name {
	case results.MetricGenBits, results.MetricRecvBits:
		return results.UnitBitsPerSecond
	case results.MetricGenPackets, results.MetricRecvPkts:
		return results.UnitPacketsPerSecond
	case results.MetricRate:
		return results.UnitTransactionsPerSecond
	case results.MetricLatP50, results.MetricLatP90, results.MetricLatP99, results.MetricLatMax:
		return results.UnitSeconds
	}
	return results.UnitPercent
}

// metricStats are the statistics of the values of each metric.
func metricStats(values map[string][]float64, confidence float64) (map[string]results.MetricStats, error) {
	out := map[string]results.MetricStats{}
	for k, vs := range values {
		st, err := Compute(vs, confidence)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", k, err)
		}
		out[k] = results.MetricStats{Unit: metricUnit(k), Iterations: vs, Mean: st.Mean, StdDev: st.StdDev, CILow: st.CILow, CIHigh: st.CIHigh}
	}
	return out, nil
}

// summarizeSet makes the FlowSet of the measured iterations.
func summarizeSet(name string, opts Options, flows []Flow, its []results.FlowSetIteration) (*results.FlowSet, error) {
	set := &results.FlowSet{Name: name, Interval: results.Duration(opts.Interval), Warmup: opts.Warmup,
		Confidence: opts.Confidence, Flows: []results.FlowStats{}, Iterations: its}
	for i, f := range flows {
		vals := map[string][]float64{}
		for _, it := range its {
			for k, v := range it.Flows[i].Metrics {
				vals[k] = append(vals[k], v)
			}
		}
		m, err := metricStats(vals, opts.Confidence)
		if err != nil {
			return nil, fmt.Errorf("flow %q: %w", f.Name, err)
		}
		set.Flows = append(set.Flows, results.FlowStats{
			Name: f.Name, Kind: string(f.kind()), Client: f.Client.Name(), Server: f.Server.Name(), Address: f.ServerAddr,
			Reverse: f.Reverse, MsgSize: f.MsgSize, Streams: max(f.Streams, 1), Processes: max(f.Processes, 1),
			Duration: results.Duration(f.duration()), Metrics: m,
		})
	}
	agg, cpu := map[string][]float64{}, map[string][]float64{}
	for _, it := range its {
		for k, v := range it.Aggregate {
			agg[k] = append(agg[k], v)
		}
		for h, c := range it.CPU {
			cpu[h] = append(cpu[h], c.Total.Busy)
		}
	}
	var err error
	if set.Aggregate, err = metricStats(agg, opts.Confidence); err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	if set.CPU, err = metricStats(cpu, opts.Confidence); err != nil {
		return nil, fmt.Errorf("CPU: %w", err)
	}
	return set, nil
}

func formatValues(m map[string]float64) string {
	s := ""
	for _, k := range summableMetrics {
		if v, ok := m[k]; ok {
			if s != "" {
				s += ", "
			}
			s += k + " " + results.FormatValue(v, metricUnit(k))
		}
	}
	return s
}

// waitListen waits for a socket of proto ("tcp", "udp") bound to port on
// h, failing the test when job (the server) ends first or 10s pass.
func waitListen(t testing.TB, h *lnsttest.Host, proto string, port int, job *lnsttest.Job) {
	t.Helper()
	flag := "-Hltn"
	if proto == "udp" {
		flag = "-Hlun"
	}
	argv := []string{"ss", flag, "sport", "=", ":" + strconv.Itoa(port)}
	lnsttest.WaitFor(t, fmt.Sprintf("host %s: a %s server to listen on port %d", h.Name(), proto, port), 10*time.Second, func() bool {
		if out := h.OutputArgv(t, argv, lnsttest.Quiet(), lnsttest.Timeout(5*time.Second), lnsttest.Desc("wait for server to listen")); out != "" {
			return true
		}
		select {
		case <-job.Done():
			r := job.Result()
			t.Fatalf("host %s: job %d (%s) exited with code %d before listening on %s port %d\nstdout:\n%s\nstderr:\n%s",
				h.Name(), job.ID(), r.Command, r.ExitCode, proto, port, r.Stdout, r.Stderr)
		default:
		}
		return false
	})
}

// streamRunner runs a stream flow: an iperf3 server and client per
// process.
type streamRunner struct {
	f        Flow
	port     int
	interval time.Duration
	servers  []*lnsttest.Job
	clients  []*lnsttest.Job
	at       time.Time
}

func (r *streamRunner) prepare(t testing.TB) {
	t.Helper()
	r.servers, r.clients = nil, nil
	for p := range max(r.f.Processes, 1) {
		port := r.port + p
		j := r.f.Server.StartArgv(t, iperf3ServerArgv(r.f, port, r.interval),
			lnsttest.Desc(fmt.Sprintf("iperf3 server of flow %s on port %d", r.f.Name, port)),
			lnsttest.Timeout(r.f.duration()+60*time.Second))
		proto := "tcp" // iperf3's control connection, UDP flows too
		waitListen(t, r.f.Server, proto, port, j)
		r.servers = append(r.servers, j)
	}
}

func (r *streamRunner) start(t testing.TB, at time.Time) {
	t.Helper()
	r.at = at
	for p := range max(r.f.Processes, 1) {
		argv := iperf3ClientArgv(r.f, r.port+p, r.interval)
		r.clients = append(r.clients, r.f.Client.StartModule(t, modExecAt, execAtArgs{At: at, Argv: argv},
			lnsttest.Desc(fmt.Sprintf("flow %s: %s", r.f.Name, joinArgv(argv))), lnsttest.Timeout(r.f.duration()+60*time.Second)))
	}
}

func (r *streamRunner) finish(t testing.TB) (flowSamples, error) {
	t.Helper()
	fs := flowSamples{Name: r.f.Name}
	var perProc [][]sample
	for _, j := range r.clients {
		res := j.Wait(t)
		// iperf3 times its intervals from its own start: a client that
		// started late measured a later span.
		s, err := parseIperf3Flow([]byte(res.Stdout), execStart(res.Stderr, r.at))
		if err != nil {
			// The other processes' clients and this one's server may
			// still run (a one-off server whose client never came):
			// end them so that the ports are free for another try.
			for _, j := range slices.Concat(r.clients, r.servers) {
				j.Kill(t, syscall.SIGTERM)
				<-j.Done()
			}
			err = fmt.Errorf("flow %s: host %s: job %d: %w", r.f.Name, r.f.Client.Name(), j.ID(), err)
			if r.f.kind() == UDPStream && strings.Contains(err.Error(), iperf3UDPSetupLost) {
				err = transientError{err}
			}
			return fs, err
		}
		perProc = append(perProc, s)
	}
	for _, j := range r.servers {
		j.Wait(t)
	}
	fs.Samples = mergeProcesses(perProc)
	return fs, nil
}

// mergeProcesses adds up the samples of a flow's processes interval by
// interval (they share their start, so their intervals line up), over
// the intervals they all have.
func mergeProcesses(per [][]sample) []sample {
	if len(per) == 0 {
		return nil
	}
	n := len(per[0])
	for _, p := range per {
		n = min(n, len(p))
	}
	out := make([]sample, n)
	for i := range n {
		s := per[0][i]
		s.Lat = &Histogram{}
		s.Lat.Merge(per[0][i].Lat)
		for _, p := range per[1:] {
			o := p[i]
			if o.Start.After(s.Start) {
				s.Start = o.Start
			}
			if o.End.Before(s.End) {
				s.End = o.End
			}
			s.GenBytes += o.GenBytes
			s.RecvBytes += o.RecvBytes
			s.GenPackets += o.GenPackets
			s.RecvPackets += o.RecvPackets
			s.Trans += o.Trans
			s.Lat.Merge(o.Lat)
		}
		out[i] = s
	}
	return out
}

func joinArgv(argv []string) string {
	s := ""
	for i, a := range argv {
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}

// rrRunner runs an RR or CRR flow: one RR server, a client per process.
type rrRunner struct {
	f        Flow
	port     int
	interval time.Duration
	server   *lnsttest.Job
	clients  []*lnsttest.Job
}

func (r *rrRunner) config() RRConfig {
	return RRConfig{Kind: r.f.kind(), Addr: r.f.ServerAddr, Port: r.port, MsgSize: r.f.MsgSize,
		Streams: r.f.Streams, Duration: r.f.duration(), Interval: r.interval, MPTCP: r.f.MPTCP}
}

func (r *rrRunner) prepare(t testing.TB) {
	t.Helper()
	r.clients = nil
	c := r.config()
	c.CPU = r.f.ServerCPU
	r.server = r.f.Server.StartModule(t, modRRServer, c,
		lnsttest.Desc(fmt.Sprintf("rr server of flow %s (%s) on port %d", r.f.Name, c.Kind, r.port)),
		lnsttest.Timeout(r.f.duration()+60*time.Second))
	proto := "tcp"
	if c.Kind == UDPRR {
		proto = "udp"
	}
	waitListen(t, r.f.Server, proto, r.port, r.server)
}

func (r *rrRunner) start(t testing.TB, at time.Time) {
	t.Helper()
	c := r.config()
	c.CPU, c.StartAt = r.f.ClientCPU, at
	for p := range max(r.f.Processes, 1) {
		r.clients = append(r.clients, r.f.Client.StartModule(t, modRRClient, c,
			lnsttest.Desc(fmt.Sprintf("rr client %d of flow %s (%s, %d streams)", p, r.f.Name, c.Kind, max(c.Streams, 1))),
			lnsttest.Timeout(r.f.duration()+60*time.Second)))
	}
}

func (r *rrRunner) finish(t testing.TB) (flowSamples, error) {
	t.Helper()
	fs := flowSamples{Name: r.f.Name, RR: true}
	var perProc [][]sample
	var firstErr error
	for _, j := range r.clients {
		j.Wait(t)
		var res RRResult
		if err := lnsttest.ModuleResult(j, &res); err != nil {
			firstErr = cmpErr(firstErr, fmt.Errorf("flow %s: %w", r.f.Name, err))
			continue
		}
		var s []sample
		for _, iv := range res.Intervals {
			h := iv.Lat
			s = append(s, sample{Start: iv.Start, End: iv.End, Trans: float64(iv.Trans), Lat: &h})
		}
		perProc = append(perProc, s)
	}
	r.server.Kill(t, syscall.SIGTERM)
	<-r.server.Done()
	var served RRServerResult
	if err := lnsttest.ModuleResult(r.server, &served); err != nil {
		firstErr = cmpErr(firstErr, fmt.Errorf("flow %s: %w", r.f.Name, err))
	}
	fs.Samples = mergeProcesses(perProc)
	return fs, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// hostSampler samples a host's /proc/stat with the perf.cpu module.
type hostSampler struct {
	h   *lnsttest.Host
	job *lnsttest.Job
}

func (s *hostSampler) start(t testing.TB, at time.Time, every time.Duration, count int) {
	t.Helper()
	s.job = s.h.StartModule(t, modCPU, cpuArgs{At: at, Every: every, Count: count},
		lnsttest.Desc("sample /proc/stat"), lnsttest.Timeout(time.Duration(count+1)*every+60*time.Second))
}

func (s *hostSampler) finish(t testing.TB) ([]cpuSample, error) {
	t.Helper()
	s.job.Wait(t)
	var recs []cpuRecord
	if err := lnsttest.ModuleResult(s.job, &recs); err != nil {
		return nil, err
	}
	var out []cpuSample
	for _, r := range recs {
		l, err := parseCPULines(r.Stat)
		if err != nil {
			return nil, err
		}
		out = append(out, cpuSample{At: r.At, Lines: l})
	}
	return out, nil
}
