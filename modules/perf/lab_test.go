package perf

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// labPair gives hosts h1 and h2 of the local lab with eth0 addressed
// 198.18.<net>.1 and .2.
func labPair(t *testing.T, net int) (h1, h2 *lnsttest.Host, addr2 string) {
	t.Helper()
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
	h1, h2 = m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, fmt.Sprintf("198.18.%d.1/24", net))
	h2.Iface("eth0").AddIP(t, fmt.Sprintf("198.18.%d.2/24", net))
	return h1, h2, fmt.Sprintf("198.18.%d.2", net)
}

// TestMeasureLab measures a short TCP flow between two lab hosts.
func TestMeasureLab(t *testing.T) {
	h1, h2, addr := labPair(t, 4)
	m := Measure(t, Flow{Name: "tcp", Client: h1, Server: h2, ServerAddr: addr, Duration: time.Second, Streams: 2},
		Options{Iterations: 2, Warmup: -1, Progress: 300 * time.Millisecond})
	assert.Len(t, m.Iterations, 2)
	assert.Empty(t, m.Warmup)
	assert.Equal(t, "TCP", m.Protocol)
	assert.Equal(t, 2, m.Streams)
	assert.Positive(t, m.Mean)
	assert.LessOrEqual(t, m.CILow, m.Mean)
	assert.GreaterOrEqual(t, m.CIHigh, m.Mean)
	require.Contains(t, m.CPU, "h1")
	require.Contains(t, m.CPU, "h2")
	for h, c := range m.CPU {
		assert.Len(t, c.Iterations, 2, h)
		assert.Positive(t, c.Mean, "%s: iperf3 loads the CPU", h)
	}
	ZeroThroughput(t, m)

	// The record is valid results.json material.
	rec := results.NewRecord("perf tcp", m)
	assert.Equal(t, results.KindMeasurement, rec.Kind)
	run := &results.Run{Schema: results.SchemaVersion, Recipes: []results.Recipe{{Name: t.Name(), Verdict: results.Pass, Records: []results.Record{rec}}}}
	require.NoError(t, results.Write(t.TempDir(), run))
}

// TestPerfModuleVsRaw compares Measure with iperf3 run by hand between the
// same two lab hosts, one 2s TCP flow at a time, interleaved per run
// (module, raw, then raw, module, ...) after one untimed warm-up run of
// each, so that a drift in the machine's load (the lab shares it) weighs
// on both alike. Each module run is one Measure (Iterations 1, Warmup -1:
// no warm-up run; its server started, readiness polled, CPU sampled, the flow,
// the result parsed); each raw run starts an iperf3 server and runs one
// iperf3 client (rawIperf3). It prints the median of the per-pair ratios
// of throughput (what the module measures over what raw iperf3 measures:
// the module must not change what is measured, ~1) and of wall time (what
// the module's per-run server, readiness poll and CPU sampling cost), with
// their spread and the 95% confidence interval of their mean:
//
//	RATIO module/raw <x> (min, max, n) [mean, 95% CI]
//	RATIO module/raw_wall <x> (min, max, n) [mean, 95% CI]
//
// The module must not change what is measured: the test fails when the
// whole interval lies below 1, the module measuring less than raw iperf3
// beyond the noise. It is a test rather than a benchmark because the lab
// needs a *testing.T (lnsttest.Require); it runs only with LNST_BENCH_PERF=1.
func TestPerfModuleVsRaw(t *testing.T) {
	if os.Getenv("LNST_BENCH_PERF") != "1" {
		t.Skip("a benchmark of about 40s, not a test: requires LNST_BENCH_PERF=1 (make bench sets it)")
	}
	const pairs = 8
	const dur = 2 * time.Second
	h1, h2, addr := labPair(t, 5)

	moduleOnce := func(name string) (float64, time.Duration) {
		start := time.Now()
		m := Measure(t, Flow{Name: name, Client: h1, Server: h2, ServerAddr: addr, Duration: dur},
			Options{Iterations: 1, Warmup: -1})
		took := time.Since(start)
		require.Len(t, m.Iterations, 1)
		return m.Iterations[0], took
	}
	rawOnce := func() (float64, time.Duration) {
		start := time.Now()
		bps := rawIperf3(t, h1, h2, addr, dur, 1)
		return bps[0], time.Since(start)
	}
	moduleOnce("tcp-warm")
	rawOnce()
	var module, raw, thr, wall []float64
	for i := range pairs {
		var mb, rb float64
		var mw, rw time.Duration
		if i%2 == 0 {
			mb, mw = moduleOnce(fmt.Sprintf("tcp-%d", i))
			rb, rw = rawOnce()
		} else {
			rb, rw = rawOnce()
			mb, mw = moduleOnce(fmt.Sprintf("tcp-%d", i))
		}
		module, raw = append(module, mb), append(raw, rb)
		thr = append(thr, mb/rb)
		wall = append(wall, mw.Seconds()/rw.Seconds())
	}

	ms, err := Compute(module, 0.95)
	require.NoError(t, err)
	rs, err := Compute(raw, 0.95)
	require.NoError(t, err)
	unit := results.UnitBitsPerSecond
	t.Logf("module: %s ± %s over %d runs", results.FormatValue(ms.Mean, unit), results.FormatValue(ms.StdDev, unit), ms.N)
	t.Logf("raw:    %s ± %s over %d runs", results.FormatValue(rs.Mean, unit), results.FormatValue(rs.StdDev, unit), rs.N)
	benchratio.PrintCI("module/raw", thr)
	benchratio.PrintCI("module/raw_wall", wall)
	ratio, err := Compute(thr, 0.95)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, ratio.CIHigh, 1.0,
		"the module measures less than raw iperf3 beyond the noise: ratio %.3f, 95%% interval [%.3f, %.3f]", ratio.Mean, ratio.CILow, ratio.CIHigh)
}

// rawIperf3 runs one iperf3 server on srv and n iperf3 clients on cli one
// after the other, and returns what each received, from the JSON output.
func rawIperf3(t *testing.T, cli, srv *lnsttest.Host, addr string, dur time.Duration, n int) []float64 {
	t.Helper()
	const port = "5299"
	server := srv.StartArgv(t, []string{"iperf3", "-s", "-p", port, "-B", addr}, lnsttest.Desc("raw iperf3 server"))
	lnsttest.WaitFor(t, "the raw iperf3 server to listen", 10*time.Second, func() bool {
		return strings.TrimSpace(srv.OutputArgv(t, []string{"ss", "-Hltn", "sport", "=", ":" + port}, lnsttest.Quiet())) != ""
	})
	var bps []float64
	for range n {
		j := cli.RunArgv(t, []string{"iperf3", "-c", addr, "-p", port, "-t", fmt.Sprint(int(dur.Seconds())), "--json"},
			lnsttest.Desc("raw iperf3 client"), lnsttest.Timeout(dur+30*time.Second))
		var out struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		require.NoError(t, json.Unmarshal([]byte(j.Result().Stdout), &out))
		bps = append(bps, out.End.SumReceived.BitsPerSecond)
	}
	server.Kill(t, syscall.SIGTERM)
	<-server.Done()
	return bps
}
