package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lnst-go/lnst/results"
)

// htmlFlowSet is a flow_set record of a recipe: its summary and a chart
// per flow.
type htmlFlowSet struct {
	Name, Text string
	Charts     []flowChart
}

// flowChart is the geometry of a flow's chart, in SVG user units: its
// main metric interval by interval, a line per measured iteration, over
// seconds from the iteration's start; the common window of the
// iterations shaded; the mean over the iterations and, when a baseline
// evaluator judged that metric, its tolerance band.
type flowChart struct {
	Width, Height float64
	Left, Top     float64
	PlotW, PlotH  float64
	Title, Unit   string
	Metric        string
	Ticks         []svgTick
	XTicks        []xTick
	Lines         []flowLine
	Window        *xSpan
	Mean          svgLine
	Band          *svgBand
	Baseline      *svgLine
}

type xTick struct {
	X     float64
	Label string
}

type xSpan struct{ X, W float64 }

// flowLine is one iteration's intervals: a polyline and its points.
type flowLine struct {
	Label, Color string
	Points       string // "x,y x,y ..." for <polyline>
	Dots         []flowDot
}

type flowDot struct {
	X, Y  float64
	Value string // "0.5–1s: 9.41 Gbit/s", the dot's tooltip
}

// lineColors are the iterations' colours, in turn.
var lineColors = []string{"#3b73b9", "#e07b00", "#6f42c1", "#1a7f37", "#b0474f", "#0a7e8c"}

// flowSets are a recipe's flow_set records.
func flowSets(rc results.Recipe) []results.FlowSet {
	var out []results.FlowSet
	for _, rec := range rc.Records {
		if s, ok := rec.FlowSet(); ok {
			out = append(out, s)
		}
	}
	return out
}

// chartMetric is the metric a flow's chart draws: the receiver's
// throughput of a stream, the transaction rate of RR and CRR; else the
// first the flow has.
func chartMetric(f results.FlowStats) string {
	for _, m := range []string{results.MetricRecvBits, results.MetricRate} {
		if _, ok := f.Metrics[m]; ok {
			return m
		}
	}
	names := make([]string, 0, len(f.Metrics))
	for n := range f.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		return names[0]
	}
	return results.MetricRecvBits
}

// baselineOf is the baseline evaluation of metric of flow among es.
func baselineOf(es []results.Evaluation, flow, metric string) (results.Evaluation, bool) {
	for _, e := range es {
		if e.Evaluator == "baseline" && e.Subject == flow && (e.Metric == flow+" "+metric || e.Metric == metric) && e.Reference != 0 {
			return e, true
		}
	}
	return results.Evaluation{}, false
}

// flowCharts lays out the charts of set's flows.
func flowCharts(set results.FlowSet, es []results.Evaluation) []flowChart {
	var out []flowChart
	for i, f := range set.Flows {
		metric := chartMetric(f)
		st := f.Metrics[metric]
		var band *results.Evaluation
		if e, ok := baselineOf(es, f.Name, metric); ok {
			band = &e
		}
		out = append(out, flowChartOf(set, i, metric, st, band))
	}
	return out
}

// flowChartOf lays out the chart of flow i of set.
func flowChartOf(set results.FlowSet, i int, metric string, st results.MetricStats, band *results.Evaluation) flowChart {
	const width, height = 560.0, 260.0
	f := set.Flows[i]
	c := flowChart{Width: width, Height: height, Left: 56, Top: 34, Metric: metric}
	c.PlotW, c.PlotH = width-c.Left-12, height-c.Top-40
	// The axes: time from 0 to the last interval's end, values from 0 to
	// a round number above every interval, the mean and the band.
	top, end := st.Mean, 0.0
	winLo, winHi := -1.0, -1.0
	for _, it := range set.Iterations {
		if i >= len(it.Flows) {
			continue
		}
		for _, iv := range it.Flows[i].Intervals {
			top, end = max(top, iv.Metrics[metric]), max(end, iv.End)
		}
		if winLo < 0 || it.WindowStart > winLo {
			winLo = it.WindowStart
		}
		if winHi < 0 || it.WindowEnd < winHi {
			winHi = it.WindowEnd
		}
	}
	var lo, hi float64
	if band != nil {
		lo, hi = band.Reference*(1-band.Tolerance), band.Reference*(1+band.Tolerance)
		top = max(top, band.Reference, min(hi, 2*top))
	}
	if end <= 0 {
		end = max(time.Duration(f.Duration).Seconds(), 1)
	}
	axisMax, step := niceAxis(top)
	scale, unit := results.ScaleUnit(axisMax, st.Unit)
	if unit == "" {
		unit = st.Unit
	}
	c.Unit = unit
	xEnd, xStep := niceAxis(end)
	y := func(v float64) float64 { return c.Top + c.PlotH*(1-min(max(v, 0), axisMax)/axisMax) }
	x := func(s float64) float64 { return c.Left + c.PlotW*min(max(s, 0), xEnd)/xEnd }
	num := func(v float64) string { return trimFloat(v / scale) }
	for v := 0.0; v <= axisMax*(1+1e-9); v += step {
		c.Ticks = append(c.Ticks, svgTick{Y: y(v), Label: num(v)})
	}
	for s := 0.0; s <= xEnd*(1+1e-9); s += xStep {
		c.XTicks = append(c.XTicks, xTick{X: x(s), Label: trimFloat(s) + "s"})
	}
	if winHi > winLo && winLo >= 0 {
		c.Window = &xSpan{X: x(winLo), W: x(winHi) - x(winLo)}
	}
	for n, it := range set.Iterations {
		if i >= len(it.Flows) {
			continue
		}
		l := flowLine{Label: "iteration " + strconv.Itoa(n+1), Color: lineColors[n%len(lineColors)]}
		var pts []string
		for _, iv := range it.Flows[i].Intervals {
			v, ok := iv.Metrics[metric]
			if !ok {
				continue
			}
			mid := (iv.Start + iv.End) / 2
			d := flowDot{X: x(mid), Y: y(v), Value: fmt.Sprintf("iteration %d, %s–%ss: %s %s", n+1, trimFloat(iv.Start), trimFloat(iv.End), num(v), unit)}
			l.Dots = append(l.Dots, d)
			pts = append(pts, strconv.FormatFloat(d.X, 'f', 1, 64)+","+strconv.FormatFloat(d.Y, 'f', 1, 64))
		}
		l.Points = strings.Join(pts, " ")
		c.Lines = append(c.Lines, l)
	}
	c.Mean = svgLine{Y: y(st.Mean), Label: "mean " + num(st.Mean) + " " + unit}
	if band != nil {
		c.Band = &svgBand{Y: y(hi), H: y(lo) - y(hi), Verdict: band.Verdict,
			Label: fmt.Sprintf("baseline ±%s: %s–%s %s (%s)", trimFloat(100*band.Tolerance)+"%", num(lo), num(hi), unit, band.Verdict)}
		c.Baseline = &svgLine{Y: y(band.Reference), Label: "baseline " + num(band.Reference) + " " + unit}
	}
	dir := f.Client + "→" + f.Server
	if f.Reverse {
		dir = f.Server + "→" + f.Client
	}
	c.Title = fmt.Sprintf("%s — %s %s, %s, %d %s", f.Name, f.Kind, dir, metricTitle(metric),
		len(set.Iterations), map[bool]string{true: "run", false: "runs"}[len(set.Iterations) == 1])
	return c
}

// metricTitle is a metric's name in a chart's title.
func metricTitle(m string) string {
	switch m {
	case results.MetricRecvBits:
		return "received"
	case results.MetricGenBits:
		return "sent"
	case results.MetricRate:
		return "transactions"
	}
	return strings.ReplaceAll(m, "_", " ")
}

// flowSetLine is a flow set in one line for the results table: "perf
// enrt 198.18.1.2: 10 flows, 1 run, aggregate recv 9.41 Gbit/s, cpu h1
// 40% h2 38%".
func flowSetLine(s results.FlowSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d %s, %d %s", s.Name, len(s.Flows), plural(len(s.Flows), "flow", "flows"),
		len(s.Iterations), plural(len(s.Iterations), "run", "runs"))
	if st, ok := s.Aggregate[results.MetricRecvBits]; ok {
		fmt.Fprintf(&b, ", recv %s", results.FormatValue(st.Mean, st.Unit))
	}
	if st, ok := s.Aggregate[results.MetricRate]; ok {
		fmt.Fprintf(&b, ", rate %.0f %s", st.Mean, st.Unit)
	}
	if len(s.CPU) > 0 {
		hosts := make([]string, 0, len(s.CPU))
		for h := range s.CPU {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		b.WriteString(", cpu")
		for _, h := range hosts {
			fmt.Fprintf(&b, " %s %.0f%%", h, s.CPU[h].Mean)
		}
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
