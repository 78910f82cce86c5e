package perf

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/require"
)

// benchRounds is how many interleaved rounds the flow benchmarks run.
const benchRounds = 6

// TestPerfFlowsVsRaw compares MeasureFlows with two parallel TCP flows
// against two iperf3 pairs started together by hand between the same lab
// hosts, interleaved round by round after one warm-up of each. It prints
// the median of the per-round ratios of aggregate received throughput
// (the module's, over the common window, against the sum of the two raw
// clients' end.sum_received), with the spread and a 95% CI:
//
//	RATIO perf2flows/raw2 <x> (min, max, n) [mean, 95% CI]
//
// Target: >= 0.95 (the module's start time, servers and CPU sampling do
// not change what is measured). It runs only with LNST_BENCH_PERF=1.
func TestPerfFlowsVsRaw(t *testing.T) {
	if os.Getenv("LNST_BENCH_PERF") != "1" {
		t.Skip("a benchmark of about 40s, not a test: requires LNST_BENCH_PERF=1 (make bench sets it)")
	}
	const dur = 2 * time.Second
	h1, h2, addr := labPair(t, 7)
	module := func() float64 {
		f := Flow{Client: h1, Server: h2, ServerAddr: addr, Duration: dur}
		a, b := f, f
		a.Name, b.Name = "a", "b"
		set := MeasureFlows(t, "two", Options{Iterations: 1, Warmup: -1}, a, b)
		return set.Aggregate[results.MetricRecvBits].Mean
	}
	raw := func() float64 { return rawParallel(t, h1, h2, addr, dur, 5290, 5291) }
	module()
	raw()
	var ratios []float64
	for i := range benchRounds {
		var m, r float64
		if i%2 == 0 {
			m, r = module(), raw()
		} else {
			r, m = raw(), module()
		}
		t.Logf("round %d: module %s, raw %s", i, results.FormatValue(m, results.UnitBitsPerSecond), results.FormatValue(r, results.UnitBitsPerSecond))
		ratios = append(ratios, m/r)
	}
	benchratio.PrintCI("perf2flows/raw2", ratios)
}

// rawParallel starts an iperf3 server on srv for each port, then one
// client on cli for each, at once, and returns the sum of what the
// servers received.
func rawParallel(t *testing.T, cli, srv *lnsttest.Host, addr string, dur time.Duration, ports ...int) float64 {
	t.Helper()
	var servers, clients []*lnsttest.Job
	for _, p := range ports {
		j := srv.StartArgv(t, []string{"iperf3", "-s", "-1", "-p", strconv.Itoa(p), "-B", addr}, lnsttest.Desc("raw iperf3 server"))
		waitListen(t, srv, "tcp", p, j)
		servers = append(servers, j)
	}
	for _, p := range ports {
		clients = append(clients, cli.StartArgv(t, []string{"iperf3", "-c", addr, "-p", strconv.Itoa(p), "-t", fmt.Sprint(int(dur.Seconds())), "--json"},
			lnsttest.Desc("raw iperf3 client"), lnsttest.Timeout(dur+30*time.Second)))
	}
	var sum float64
	for _, j := range clients {
		var out struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		require.NoError(t, json.Unmarshal([]byte(j.Wait(t).Stdout), &out))
		sum += out.End.SumReceived.BitsPerSecond
	}
	for _, j := range servers {
		j.Wait(t)
	}
	return sum
}

// TestRRVsSockperf compares the built-in RR tool's median round trip
// (tcp_rr, one connection, 64-byte messages) with sockperf ping-pong's
// (TCP, 64 bytes, --full-rtt: round trips, not sockperf's default of
// half of them) between the same lab hosts, interleaved round by round
// after one warm-up of each. It prints the median of the per-round ratios
// of the p50s with the spread and a 95% CI:
//
//	RATIO rr_p50/sockperf_p50 <x> (min, max, n) [mean, 95% CI]
//
// What each side times, for 2 seconds, one message in flight, neither
// pinned nor busy-polling: the RR client (perf.rr-client, a process of
// the test binary) every transaction, from the monotonic clock read just
// before it writes the request to just after it has read the whole
// response, its median taken from the histogram (bucket middles, within
// 0.8%); sockperf every message, from its send to the receipt of its
// reply (sockperf's own clock), its median the "percentile 50.000" line.
// The servers echo each message: perf.rr-server with blocking reads on a
// thread per connection, started each round; the sockperf server with
// its defaults, started once for all rounds.
//
// Target: <= 1.2. It runs only with LNST_BENCH_PERF=1 and sockperf.
func TestRRVsSockperf(t *testing.T) {
	if os.Getenv("LNST_BENCH_PERF") != "1" {
		t.Skip("a benchmark of about 40s, not a test: requires LNST_BENCH_PERF=1 (make bench sets it)")
	}
	const dur = 2 * time.Second
	h1, h2, addr := labPair(t, 8)
	sp := modules.SockperfServer{Bind: addr, Port: 11112, TCP: true}.Start(t, h2)
	defer sp.Stop(t)
	rr := func() float64 {
		set := MeasureFlows(t, "rr", Options{Iterations: 1, Warmup: -1},
			Flow{Name: "rr", Kind: TCPRR, Client: h1, Server: h2, ServerAddr: addr, Duration: dur, MsgSize: 64})
		return set.Flows[0].Metrics[results.MetricLatP50].Mean
	}
	sock := func() float64 {
		r := modules.SockperfPingPong{Server: addr, Port: 11112, TCP: true, MsgSize: 64, Duration: dur}.Run(t, h1)
		return r.P50.Seconds()
	}
	rr()
	sock()
	var ratios []float64
	for i := range benchRounds {
		var a, b float64
		if i%2 == 0 {
			a, b = rr(), sock()
		} else {
			b, a = sock(), rr()
		}
		t.Logf("round %d: rr p50 %.1fµs, sockperf p50 %.1fµs", i, a*1e6, b*1e6)
		ratios = append(ratios, a/b)
	}
	benchratio.PrintCI("rr_p50/sockperf_p50", ratios)
}
