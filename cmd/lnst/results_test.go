package main

import (
	"bytes"
	"flag"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the fixtures and golden files in testdata")

// fixture builds the run written as testdata/<name>/results.json: "a" and
// "b" are two runs of the same recipes, b slower on TCP and failing UDP.
func fixture(name string) *results.Run {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tcp := []float64{16.41e9, 17.39e9, 17.17e9}
	udpVerdict, udpMean := results.Pass, 0.98e9
	if name == "b" {
		start = start.Add(24 * time.Hour)
		tcp = []float64{15.2e9, 15.9e9, 15.5e9}
		udpVerdict, udpMean = results.Fail, 0.41e9
	}
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	secs := func(s float64) results.Duration { return results.Duration(s * float64(time.Second)) }
	tcpM := measurementOf("tcp", "TCP", 1, tcp, []float64{17.22e9})
	tcpM.CPU = map[string]results.CPUStats{
		"h1": {Mean: 74.3, Iterations: []float64{73.9, 75.0, 74.0}},
		"h2": {Mean: 74.3, Iterations: []float64{73.9, 75.0, 74.0}},
	}
	tcpM.Baseline = &results.BaselineCheck{Key: "TestPerfTCP|lab|tcp", Baseline: 16.99e9, Tolerance: 0.1,
		Delta: 100 * (tcpM.Mean - 16.99e9) / 16.99e9, Pass: tcpM.Mean >= 16.99e9*0.9}
	udpM := measurementOf("udp", "UDP", 2, []float64{udpMean * 0.99, udpMean, udpMean * 1.01}, nil)
	if name == "b" {
		udpM.Baseline = &results.BaselineCheck{Key: "TestPerfUDP|lab|udp", Baseline: 0.98e9, Tolerance: 0.1,
			Delta: 100 * (udpM.Mean - 0.98e9) / 0.98e9, Pass: false}
	}
	job := func(host string, id int, cmd, desc string, s, d float64, summary string) results.Job {
		return results.Job{Host: host, ID: id, Command: cmd, Desc: desc, Start: at(s), Duration: secs(d),
			Verdict: results.Pass, Summary: summary}
	}
	r := &results.Run{
		Schema: results.SchemaVersion,
		Start:  start, End: at(31.4),
		Args: []string{"-test.v", "-lnst.results=out"},
		Pool: "lab:netns",
		Hosts: []results.HostInfo{
			{Name: "h1.1", Kernel: "6.12.48", Arch: "x86_64", AgentVersion: "v0.1.0"},
			{Name: "h2.1", Kernel: "6.12.48", Arch: "x86_64", AgentVersion: "v0.1.0"},
		},
		Recipes: []results.Recipe{
			{Name: "TestPing", Match: "h1=lab:h1.1 h2=lab:h2.1", Verdict: results.Pass, Start: at(0.1), Duration: secs(1.21),
				Jobs: []results.Job{job("h1", 1, "ping -c 5 -i 0.2 198.18.1.2", "ping 198.18.1.2", 0.5, 0.81,
					"sent 5 received 5 lost 0 rtt min/avg/max 0.031/0.046/0.071 ms")}},
			{Name: "TestPerfTCP", Match: "h1=lab:h1.1 h2=lab:h2.1", Verdict: results.Pass, Start: at(1.4), Duration: secs(8.15),
				Jobs: []results.Job{
					job("h2", 2, "iperf3 -s -1 -p 5201 -B 198.18.3.2", "iperf3 server on port 5201", 1.6, 2.017, ""),
					job("h1", 2, "iperf3 -c 198.18.3.2 -p 5201 -t 2 -P 1 --json", "iperf3 TCP to 198.18.3.2", 1.7, 2.01,
						"TCP 17.22 Gbit/s, 1382 retransmits, 1 stream, 2s"),
				},
				Records: []results.Record{results.NewRecord("perf tcp", tcpM), results.NewRecord("eval baseline tcp throughput", results.Evaluation{
					Evaluator: "baseline", Subject: "tcp", Metric: "throughput", Unit: results.UnitBitsPerSecond, HigherIsBetter: true,
					Value: tcpM.Mean, Reference: 16.99e9, Tolerance: 0.1, Delta: 100 * (tcpM.Mean - 16.99e9) / 16.99e9,
					Verdict: results.EvalPass, Note: `key "TestPerfTCP|tcp|throughput" in testdata/baselines/amd-epyc_6.18.json`})}},
			{Name: "TestPerfUDP", Match: "h1=lab:h1.1 h2=lab:h2.1", Verdict: udpVerdict, Start: at(9.7), Duration: secs(8.3),
				Records: []results.Record{results.NewRecord("perf udp", udpM), results.NewRecord("note", "udp at 1G per stream")}},
			{Name: "TestBond", Verdict: results.Skip, Start: at(18.1), Duration: secs(0.002)},
		},
	}
	if name == "b" {
		r.Recipes = append(r.Recipes, results.Recipe{Name: "TestPerfTCP6", Match: "h1=lab:h1.1 h2=lab:h2.1", Verdict: results.Pass,
			Start: at(18.2), Duration: secs(8), Records: []results.Record{
				results.NewRecord("perf tcp6", measurementOf("tcp6", "TCP", 1, []float64{14.9e9, 15.1e9, 15.3e9}, nil))}})
	}
	return r
}

func measurementOf(flow, proto string, streams int, its, warmup []float64) *results.Measurement {
	var sum float64
	for _, v := range its {
		sum += v
	}
	mean := sum / float64(len(its))
	var sq float64
	for _, v := range its {
		sq += (v - mean) * (v - mean)
	}
	sd := 0.0
	if len(its) > 1 {
		sd = math.Sqrt(sq / float64(len(its)-1))
	}
	half := 4.302653 * sd / math.Sqrt(float64(len(its))) // t(0.975, 2)
	return &results.Measurement{Flow: flow, Protocol: proto, Streams: streams, Duration: results.Duration(2 * time.Second),
		Unit: results.UnitBitsPerSecond, Iterations: its, Warmup: warmup, Mean: mean, StdDev: sd,
		CILow: mean - half, CIHigh: mean + half, Confidence: 0.95}
}

func TestFixtures(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join("testdata", name)
		if *update {
			require.NoError(t, results.Write(dir, fixture(name)))
		}
		got, err := results.Read(dir)
		require.NoError(t, err, "go test ./cmd/lnst -update rewrites the fixtures")
		assert.Equal(t, fixture(name).Recipes[1].Name, got.Recipes[1].Name)
	}
}

// golden compares got with testdata/<name>, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), got, "go test ./cmd/lnst -update rewrites %s", path)
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestResultsSummary(t *testing.T) {
	code, out, errOut := runCmd("results", "testdata/a", "testdata/b/results.json")
	require.Equal(t, 0, code, errOut)
	golden(t, "summary.golden", out)
	assert.Contains(t, out, "TestPerfTCP  PASS     8.15s     2     tcp 16.99 ± 0.51 Gbit/s (3 runs) baseline +0.0%\n")
	assert.Contains(t, out, "recipes: 3 pass, 1 fail, 1 skip")
}

// TestResultsCompare: every metric lined up with Welch's p and a
// verdict; B's UDP fell by 58% over tight iterations: a regression, and
// exit 1; TCP's -8.6% is within the default 10% tolerance, and a
// regression at -tolerance 0.05 (p 0.02).
func TestResultsCompare(t *testing.T) {
	code, out, errOut := runCmd("results", "compare", "testdata/a", "testdata/b")
	require.Equal(t, 1, code, "a regression fails the gate: %s", errOut)
	golden(t, "compare.golden", out)
	assert.Regexp(t, `TestPerfTCP +perf tcp +throughput +16.99 ± 0.51 Gbit/s \(3\) +15.53 ± 0.35 Gbit/s \(3\) +-8.6% +0.020 +no change`, out)
	assert.Regexp(t, `TestPerfUDP +perf udp +throughput .* -58.2% +0.000 +REGRESSION`, out)
	assert.Regexp(t, `TestPerfTCP +perf tcp +cpu h1 .* no change`, out)
	assert.Contains(t, out, "TestPerfUDP: PASS -> FAIL")
	assert.Regexp(t, `TestPerfTCP6 +perf tcp6 +throughput +- +15.10 ± 0.20 Gbit/s \(3\) +only in B`, out, "a measurement only in B")

	code, out, _ = runCmd("results", "compare", "-tolerance", "0.05", "testdata/a", "testdata/b")
	assert.Equal(t, 1, code)
	assert.Regexp(t, `TestPerfTCP +perf tcp +throughput .* REGRESSION`, out)
	code, out, _ = runCmd("results", "compare", "testdata/a", "testdata/a")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "metrics: 0 regression, 0 improvement, 4 no change")
	code, _, errOut = runCmd("results", "compare", "-alpha", "2", "testdata/a", "testdata/b")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "-alpha 2")
}

// TestCompareMetric: the verdict needs a change beyond the tolerance in
// the metric's direction and, with iterations to test, significance.
func TestCompareMetric(t *testing.T) {
	o := compareOpts{tolerance: 0.1, alpha: 0.05}
	tp := func(s ...float64) results.Metric {
		return results.Metric{Name: "throughput", Unit: "bit/s", HigherIsBetter: true, Samples: s}
	}
	cpu := func(s ...float64) results.Metric { return results.Metric{Name: "cpu h1", Unit: "%", Samples: s} }
	for _, c := range []struct {
		name    string
		a, b    results.Metric
		verdict string
	}{
		{"within tolerance", tp(10, 10.1, 9.9), tp(9.5, 9.6, 9.4), verdictNoChange},
		{"significant drop", tp(10, 10.1, 9.9), tp(5, 5.1, 4.9), verdictRegression},
		{"significant rise", tp(10, 10.1, 9.9), tp(15, 15.1, 14.9), verdictImprovement},
		{"drop lost in noise", tp(10, 2, 18), tp(5, 1, 9), verdictNoChange},
		{"cpu up is worse", cpu(20, 21, 19), cpu(40, 41, 39), verdictRegression},
		{"cpu down is better", cpu(40, 41, 39), cpu(20, 21, 19), verdictImprovement},
		{"one iteration: tolerance alone", tp(10), tp(5), verdictRegression},
		{"from zero", tp(0, 0), tp(1, 1), verdictImprovement},
	} {
		assert.Equal(t, c.verdict, compareMetric(c.a, c.b, o).verdict, c.name)
	}
}

func TestResultsErrors(t *testing.T) {
	code, _, errOut := runCmd("results", "compare", "testdata/a")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "want two runs")

	bad := filepath.Join(t.TempDir(), "results.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"schema":"lnst-go/results/v1"}`), 0o644))
	code, _, errOut = runCmd("results", bad)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "missing properties")

	code, _, errOut = runCmd("frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "unknown command")
	code, _, _ = runCmd()
	assert.Equal(t, 2, code)
	code, _, errOut = runCmd("results", "html", "-o", "x.html")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no run given")
}

func TestResultsHTML(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report.html")
	code, stdout, errOut := runCmd("results", "html", "testdata/a", "-o", out, "testdata/b")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, stdout, "wrote "+out)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	page := string(data)
	assert.Equal(t, 2, strings.Count(page, "<h2>testdata/"), "a section per run")
	// One chart per measurement: a, tcp and udp; b, tcp, udp and tcp6.
	assert.Equal(t, 5, strings.Count(page, "<svg "))
	assert.Contains(t, page, "tcp — TCP 1×2s, 3 runs")
	assert.Contains(t, page, "mean 16.99", "the mean line's label")
	assert.Contains(t, page, "baseline 16.99")
	assert.Equal(t, 2, strings.Count(page, "baseline ±10%: 15.29–18.69 Gbit/s (pass)"), "the baseline evaluator's band, in both runs' tcp chart")
	assert.Regexp(t, `<td>baseline</td><td>tcp</td><td>throughput</td><td class="num">15.53 Gbit/s</td><td class="num">16.99 Gbit/s</td><td class="num">-8.6%</td><td class="num">10.0%</td><td class="ev-pass">PASS</td>`, page)
	assert.Contains(t, page, `<td class="fail">FAIL</td>`)
	assert.NotContains(t, page, "<script")
}

func TestNiceAxis(t *testing.T) {
	for _, c := range []struct{ v, top, step float64 }{
		{9.4e9, 10e9, 2e9},
		{17.39e9, 20e9, 5e9},
		{0.98e9, 1e9, 0.2e9},
		{1, 1, 0.2},
		{0, 1, 0.25},
		{3.1, 4, 1},
		{560, 600, 100},
	} {
		top, step := niceAxis(c.v)
		assert.InDelta(t, c.top, top, c.top*1e-9, "top of %v", c.v)
		assert.InDelta(t, c.step, step, c.step*1e-9, "step of %v", c.v)
	}
}

// TestHTMLScreenshot renders the report in headless Chromium and checks
// the screenshot is a picture with something on it. It runs only when
// LNST_SCREENSHOT names where to keep the PNG (under /tmp, never in the
// tree) and chromium is installed (apt-get install chromium).
func TestHTMLScreenshot(t *testing.T) {
	shot := os.Getenv("LNST_SCREENSHOT")
	if shot == "" {
		t.Skip("renders the report in headless chromium: requires LNST_SCREENSHOT=/tmp/report.png (make screenshot)")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("requires chromium (apt-get install chromium, or make screenshot)")
	}
	report, err := filepath.Abs(filepath.Join(t.TempDir(), "report.html"))
	require.NoError(t, err)
	code, _, errOut := runCmd("results", "html", "testdata/a", "testdata/b", "-o", report)
	require.Equal(t, 0, code, errOut)
	cmd := exec.Command(browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--screenshot="+shot, "--window-size=1200,900", "file://"+report)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, 1200, img.Bounds().Dx())
	colors := map[uint32]bool{}
	for x := 0; x < img.Bounds().Dx(); x += 7 {
		for y := 0; y < img.Bounds().Dy(); y += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	assert.Greater(t, len(colors), 20, "the page is not blank")
	// The bars of the throughput charts are drawn in #3b73b9.
	bars := 0
	for x := 0; x < img.Bounds().Dx(); x++ {
		for y := 0; y < img.Bounds().Dy(); y++ {
			if r, g, b, _ := img.At(x, y).RGBA(); r>>8 == 0x3b && g>>8 == 0x73 && b>>8 == 0xb9 {
				bars++
			}
		}
	}
	assert.Greater(t, bars, 500, "the charts' bars are drawn")
	t.Logf("screenshot: %s", shot)
}
