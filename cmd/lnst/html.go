package main

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lnst-go/lnst/results"
)

// writeHTML writes a self-contained HTML report of runs: per run its
// hosts, a table of recipes, and per measurement a chart drawn as inline
// SVG (a bar per iteration, the mean, its confidence interval and the
// baseline). No script, no external file.
func writeHTML(w io.Writer, runs []namedRun) error {
	var page htmlPage
	for _, r := range runs {
		hr := htmlRun{Path: r.path, Run: r.Run,
			Start:    r.Start.UTC().Format("2006-01-02 15:04:05 MST"),
			Duration: r.End.Sub(r.Start).Round(time.Second).String(),
		}
		for _, rc := range r.Recipes {
			h := htmlRecipe{Recipe: rc, Duration: formatDuration(rc.Duration)}
			bands := map[string]results.Evaluation{}
			for _, e := range evaluations(rc) {
				h.Evaluations = append(h.Evaluations, htmlEvaluation{Evaluation: e,
					Value: results.FormatValue(e.Value, e.Unit), Reference: results.FormatValue(e.Reference, e.Unit)})
				if e.Evaluator == "baseline" && e.Metric == "throughput" && e.Reference != 0 {
					bands[e.Subject] = e
				}
			}
			for _, m := range measurements(rc) {
				c := chart(m)
				if e, ok := bands[m.Flow]; ok {
					c = withBand(c, m, e)
				}
				h.Measurements = append(h.Measurements, htmlMeasurement{
					Measurement: m, Short: shortMeasurement(m), Text: m.String(), Chart: c,
				})
			}
			for _, fs := range flowSets(rc) {
				h.FlowSets = append(h.FlowSets, htmlFlowSet{Name: fs.Name, Text: fs.String(), Charts: flowCharts(fs, evaluations(rc))})
				h.SetLines = append(h.SetLines, flowSetLine(fs))
			}
			hr.Counts[verdictIndex(rc.Verdict)]++
			hr.Recipes = append(hr.Recipes, h)
		}
		page.Runs = append(page.Runs, hr)
	}
	return reportTemplate.Execute(w, page)
}

func verdictIndex(v string) int {
	switch v {
	case results.Pass:
		return 0
	case results.Fail:
		return 1
	}
	return 2
}

type htmlPage struct{ Runs []htmlRun }

type htmlRun struct {
	Path string
	*results.Run
	Start, Duration string
	Counts          [3]int // pass, fail, skip
	Recipes         []htmlRecipe
}

type htmlRecipe struct {
	results.Recipe
	Duration     string
	Measurements []htmlMeasurement
	Evaluations  []htmlEvaluation
	// FlowSets are the recipe's flow_set records (htmlflows.go), SetLines
	// their lines in the recipes table.
	FlowSets []htmlFlowSet
	SetLines []string
}

type htmlEvaluation struct {
	results.Evaluation
	Value, Reference string
}

type htmlMeasurement struct {
	results.Measurement
	Short, Text string
	Chart       svgChart
}

// svgChart is the geometry of a measurement's chart, in SVG user units.
type svgChart struct {
	Width, Height    float64
	Left, Top        float64 // the plot area's corner
	PlotW, PlotH     float64
	Bars             []svgBar
	Ticks            []svgTick
	Unit             string
	Mean             svgLine
	CI               svgRect
	Baseline         *svgLine
	Band             *svgBand
	Title, MeanLabel string
	HasWarmup        bool
}

type svgBar struct {
	X, Y, W, H float64
	Label      string // under the bar: "1", "w1"
	Value      string // the figure, as a tooltip and over the bar
	Warmup     bool
}

type svgTick struct {
	Y     float64
	Label string
}

type svgLine struct {
	Y     float64
	Label string
}

type svgRect struct{ Y, H float64 }

// svgBand is the baseline's tolerance band: the figures the baseline
// evaluator accepts.
type svgBand struct {
	Y, H    float64
	Label   string
	Verdict string
}

// chart lays out the chart of m: warm-up bars (pale) then measured bars,
// the y axis from 0 to a round number above every figure shown.
func chart(m results.Measurement) svgChart { return chartTo(m, 0) }

// chartTo is chart with an axis reaching at least atLeast.
func chartTo(m results.Measurement, atLeast float64) svgChart {
	const width, height = 560.0, 260.0
	c := svgChart{Width: width, Height: height, Left: 56, Top: 34}
	c.PlotW, c.PlotH = width-c.Left-12, height-c.Top-40
	top := max(m.Mean, m.CIHigh, atLeast)
	for _, v := range append(append([]float64(nil), m.Warmup...), m.Iterations...) {
		top = max(top, v)
	}
	if m.Baseline != nil {
		top = max(top, m.Baseline.Baseline)
	}
	axisMax, step := niceAxis(top)
	scale, unit := results.ScaleUnit(axisMax, m.Unit)
	c.Unit = unit
	y := func(v float64) float64 {
		v = min(max(v, 0), axisMax)
		return c.Top + c.PlotH*(1-v/axisMax)
	}
	num := func(v float64) string { return trimFloat(v / scale) }
	for v := 0.0; v <= axisMax*(1+1e-9); v += step {
		c.Ticks = append(c.Ticks, svgTick{Y: y(v), Label: num(v)})
	}
	n := len(m.Warmup) + len(m.Iterations)
	slot := c.PlotW / float64(max(n, 1))
	add := func(v float64, label string, warm bool) {
		i := float64(len(c.Bars))
		c.Bars = append(c.Bars, svgBar{
			X: c.Left + i*slot + slot*0.2, W: slot * 0.6,
			Y: y(v), H: c.Top + c.PlotH - y(v),
			Label: label, Value: num(v), Warmup: warm,
		})
	}
	for i, v := range m.Warmup {
		add(v, "w"+strconv.Itoa(i+1), true)
	}
	for i, v := range m.Iterations {
		add(v, strconv.Itoa(i+1), false)
	}
	c.Mean = svgLine{Y: y(m.Mean), Label: "mean " + num(m.Mean) + " " + unit}
	c.CI = svgRect{Y: y(m.CIHigh), H: y(m.CILow) - y(m.CIHigh)}
	if b := m.Baseline; b != nil {
		c.Baseline = &svgLine{Y: y(b.Baseline), Label: "baseline " + num(b.Baseline) + " " + unit}
	}
	c.Title = fmt.Sprintf("%s — %s %d×%v, %d %s", m.Flow, m.Protocol, m.Streams,
		time.Duration(m.Duration), len(m.Iterations), map[bool]string{true: "run", false: "runs"}[len(m.Iterations) == 1])
	c.HasWarmup = len(m.Warmup) > 0
	c.MeanLabel = fmt.Sprintf("%.0f%% CI %s–%s", 100*m.Confidence, num(m.CILow), num(m.CIHigh))
	return c
}

// evaluations are the Evaluations a recipe recorded.
func evaluations(rc results.Recipe) []results.Evaluation {
	var es []results.Evaluation
	for _, rec := range rc.Records {
		if e, ok := rec.Evaluation(); ok {
			es = append(es, e)
		}
	}
	return es
}

// withBand lays c out again with the baseline evaluator's band of m's
// throughput (e.Reference within e.Tolerance either way) and its
// baseline line.
func withBand(c svgChart, m results.Measurement, e results.Evaluation) svgChart {
	lo, hi := e.Reference*(1-e.Tolerance), e.Reference*(1+e.Tolerance)
	if m.Baseline == nil {
		m.Baseline = &results.BaselineCheck{Baseline: e.Reference}
	}
	// Room for the band's top, but not beyond twice the figures shown.
	top := max(m.Mean, m.CIHigh, e.Reference)
	for _, v := range append(append([]float64(nil), m.Warmup...), m.Iterations...) {
		top = max(top, v)
	}
	c = chartTo(m, max(top, min(hi, 2*top)))
	axisMax, _ := niceAxis(max(top, min(hi, 2*top)))
	y := func(v float64) float64 {
		v = min(max(v, 0), axisMax)
		return c.Top + c.PlotH*(1-v/axisMax)
	}
	scale, unit := results.ScaleUnit(axisMax, m.Unit)
	c.Band = &svgBand{Y: y(hi), H: y(lo) - y(hi), Verdict: e.Verdict,
		Label: fmt.Sprintf("baseline ±%s: %s–%s %s (%s)", trimFloat(100*e.Tolerance)+"%", trimFloat(lo/scale), trimFloat(hi/scale), unit, e.Verdict)}
	return c
}

// niceAxis returns a round top for an axis showing 0..v and the step of
// its ticks (4 to 8 of them): 9.4e9 gives 10e9 and 2e9.
func niceAxis(v float64) (top, step float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1, 0.25
	}
	mag := math.Pow(10, math.Floor(math.Log10(v)))
	for _, f := range []float64{0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10} {
		step = f * mag
		if math.Ceil(v/step*(1-1e-12)) <= 6 {
			break
		}
	}
	top = math.Ceil(v/step*(1-1e-12)) * step
	if top < v {
		top += step
	}
	return top, step
}

// trimFloat formats v with at most 2 decimals and no trailing zeros.
func trimFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		return "0"
	}
	return s
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"f":     func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"add":   func(a, b float64) float64 { return a + b },
	"sub":   func(a, b float64) float64 { return a - b },
	"half":  func(a float64) float64 { return a / 2 },
	"pct":   func(a float64) float64 { return 100 * a },
}).Parse(reportHTML))

const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lnst-go results</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1150px; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 28px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #555; }
.pass { color: #1a7f37; font-weight: 600; }
.fail { color: #cf222e; font-weight: 600; }
.skip { color: #9a6700; font-weight: 600; }
.ev-pass { color: #1a7f37; font-weight: 600; }
.ev-fail { color: #cf222e; font-weight: 600; }
.ev-improved { color: #0969da; font-weight: 600; }
.ev-unchecked { color: #6e7781; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { border: 1px solid #ddd; border-radius: 6px; padding: 8px; background: #fff; }
.chart p { margin: 4px 0 0; font-size: 12px; color: #444; max-width: 560px; }
code { font-size: 12px; }
details { margin: 4px 0 10px; }
h4 { font-size: 14px; margin: 14px 0 4px; }
pre.set { font-size: 12px; background: #f6f8fa; padding: 6px 8px; border-radius: 4px; }
</style>
</head>
<body>
<h1>lnst-go results</h1>
{{range .Runs}}
<h2>{{.Path}}</h2>
<p class="meta">Started {{.Start}}, ran {{.Duration}}, pool <code>{{.Pool}}</code>.
Recipes: <span class="pass">{{index .Counts 0}} pass</span>, <span class="fail">{{index .Counts 1}} fail</span>, <span class="skip">{{index .Counts 2}} skip</span>.
{{if .Args}}Arguments: <code>{{range .Args}}{{.}} {{end}}</code>{{end}}</p>
{{if .Hosts}}<table>
<tr><th>Host</th><th>Kernel</th><th>Arch</th><th>Agent</th></tr>
{{range .Hosts}}<tr><td>{{.Name}}</td><td>{{.Kernel}}</td><td>{{.Arch}}</td><td>{{.AgentVersion}}</td></tr>
{{end}}</table>{{end}}
<table>
<tr><th>Recipe</th><th>Verdict</th><th>Duration</th><th>Jobs</th><th>Measurements</th></tr>
{{range .Recipes}}<tr><td>{{.Name}}</td><td class="{{.Verdict}}">{{upper .Verdict}}</td><td class="num">{{.Duration}}</td><td class="num">{{len .Jobs}}</td>
<td>{{range .Measurements}}{{.Short}}<br>{{end}}{{range .SetLines}}{{.}}<br>{{end}}</td></tr>
{{end}}</table>
{{range .Recipes}}{{if or .Measurements .Jobs .Evaluations .FlowSets}}
<h3>{{.Name}} <span class="{{.Verdict}}">{{upper .Verdict}}</span>{{if .Match}} <span class="meta">on {{.Match}}</span>{{end}}</h3>
{{if .Measurements}}<div class="charts">
{{range .Measurements}}<div class="chart">{{template "chart" .Chart}}<p>{{.Text}}</p></div>
{{end}}</div>{{end}}
{{range .FlowSets}}<h4>flow set {{.Name}}</h4>
<div class="charts">
{{range .Charts}}<div class="chart flow">{{template "flowchart" .}}</div>
{{end}}</div>
<pre class="set">{{.Text}}</pre>
{{end}}
{{if .Evaluations}}<table>
<tr><th>Evaluator</th><th>Flow</th><th>Metric</th><th>Value</th><th>Reference</th><th>Delta</th><th>Tolerance</th><th>Verdict</th><th>Note</th></tr>
{{range .Evaluations}}<tr><td>{{.Evaluator}}</td><td>{{.Subject}}</td><td>{{.Metric}}</td><td class="num">{{.Value}}</td><td class="num">{{if ne .Verdict "unchecked"}}{{.Reference}}{{end}}</td><td class="num">{{if .Reference}}{{f .Delta}}%{{end}}</td><td class="num">{{if .Tolerance}}{{f (pct .Tolerance)}}%{{end}}</td><td class="ev-{{.Verdict}}">{{upper .Verdict}}</td><td>{{.Note}}</td></tr>
{{end}}</table>{{end}}
{{if .Jobs}}<details><summary>{{len .Jobs}} {{if eq (len .Jobs) 1}}job{{else}}jobs{{end}}</summary>
<table>
<tr><th>Host</th><th>Job</th><th>Verdict</th><th>What</th><th>Result</th><th>Duration</th></tr>
{{range .Jobs}}<tr><td>{{.Host}}</td><td class="num">{{.ID}}</td><td class="{{.Verdict}}">{{upper .Verdict}}</td>
<td>{{if .Desc}}{{.Desc}}<br>{{end}}<code>{{.Command}}</code></td><td>{{.Summary}}</td><td class="num">{{.Duration}}</td></tr>
{{end}}</table></details>{{end}}
{{end}}{{end}}
{{end}}
</body>
</html>
{{define "chart"}}<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Title}}">
<text x="{{.Left}}" y="16" font-size="13" font-weight="600" fill="#222">{{.Title}}</text>
{{range .Ticks}}<line x1="{{$.Left}}" x2="{{add $.Left $.PlotW}}" y1="{{f .Y}}" y2="{{f .Y}}" stroke="#e6e6e6"/>
<text x="{{sub $.Left 6}}" y="{{f (add .Y 4)}}" font-size="11" text-anchor="end" fill="#555">{{.Label}}</text>
{{end}}<text x="12" y="{{f (add .Top (half .PlotH))}}" font-size="11" fill="#555" transform="rotate(-90 12 {{f (add .Top (half .PlotH))}})" text-anchor="middle">{{.Unit}}</text>
{{with .Band}}<rect x="{{$.Left}}" y="{{f .Y}}" width="{{$.PlotW}}" height="{{f .H}}" fill="#1a7f37" fill-opacity="0.10"><title>{{.Label}}</title></rect>
{{end}}<rect x="{{.Left}}" y="{{f .CI.Y}}" width="{{.PlotW}}" height="{{f .CI.H}}" fill="#d1242f" fill-opacity="0.08"/>
{{range .Bars}}<rect x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}" fill="{{if .Warmup}}#c8d3e0{{else}}#3b73b9{{end}}"><title>{{.Label}}: {{.Value}} {{$.Unit}}</title></rect>
<text x="{{f (add .X (half .W))}}" y="{{f (sub .Y 4)}}" font-size="10" text-anchor="middle" fill="#333">{{.Value}}</text>
<text x="{{f (add .X (half .W))}}" y="{{f (add (add $.Top $.PlotH) 14)}}" font-size="11" text-anchor="middle" fill="#555">{{.Label}}</text>
{{end}}<line x1="{{.Left}}" x2="{{add .Left .PlotW}}" y1="{{f .Mean.Y}}" y2="{{f .Mean.Y}}" stroke="#d1242f" stroke-width="2" stroke-dasharray="6 4"/>
{{with .Baseline}}<line x1="{{$.Left}}" x2="{{add $.Left $.PlotW}}" y1="{{f .Y}}" y2="{{f .Y}}" stroke="#1a7f37" stroke-width="2" stroke-dasharray="2 3"/>
{{end}}<line x1="{{.Left}}" x2="{{.Left}}" y1="{{.Top}}" y2="{{add .Top .PlotH}}" stroke="#888"/>
<line x1="{{.Left}}" x2="{{add .Left .PlotW}}" y1="{{add .Top .PlotH}}" y2="{{add .Top .PlotH}}" stroke="#888"/>
<text x="{{.Left}}" y="{{sub .Height 4}}" font-size="10.5" fill="#555"><tspan fill="#d1242f">━ {{.Mean.Label}}</tspan>{{with .Baseline}}<tspan dx="10" fill="#1a7f37">┅ {{.Label}}</tspan>{{end}}{{with .Band}}<tspan dx="10" fill="#1a7f37">▒ ±band {{.Verdict}}</tspan>{{end}}<tspan dx="10" fill="#b0474f">▒ {{.MeanLabel}}</tspan>{{if .HasWarmup}}<tspan dx="10" fill="#8a9bb0">■ warm-up (left out)</tspan>{{end}}</text>
</svg>{{end}}
{{define "flowchart"}}<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Title}}" data-metric="{{.Metric}}">
<text x="{{.Left}}" y="16" font-size="13" font-weight="600" fill="#222">{{.Title}}</text>
{{range .Ticks}}<line x1="{{$.Left}}" x2="{{add $.Left $.PlotW}}" y1="{{f .Y}}" y2="{{f .Y}}" stroke="#e6e6e6"/>
<text x="{{sub $.Left 6}}" y="{{f (add .Y 4)}}" font-size="11" text-anchor="end" fill="#555">{{.Label}}</text>
{{end}}{{range .XTicks}}<text x="{{f .X}}" y="{{f (add (add $.Top $.PlotH) 14)}}" font-size="11" text-anchor="middle" fill="#555">{{.Label}}</text>
{{end}}<text x="12" y="{{f (add .Top (half .PlotH))}}" font-size="11" fill="#555" transform="rotate(-90 12 {{f (add .Top (half .PlotH))}})" text-anchor="middle">{{.Unit}}</text>
{{with .Window}}<rect class="window" x="{{f .X}}" y="{{$.Top}}" width="{{f .W}}" height="{{$.PlotH}}" fill="#8a9bb0" fill-opacity="0.12"><title>common window of the flows</title></rect>
{{end}}{{with .Band}}<rect class="band" x="{{$.Left}}" y="{{f .Y}}" width="{{$.PlotW}}" height="{{f .H}}" fill="#1a7f37" fill-opacity="0.10"><title>{{.Label}}</title></rect>
{{end}}{{range .Lines}}<polyline class="iteration" points="{{.Points}}" fill="none" stroke="{{.Color}}" stroke-width="1.5"><title>{{.Label}}</title></polyline>
{{$c := .Color}}{{range .Dots}}<circle cx="{{f .X}}" cy="{{f .Y}}" r="2.5" fill="{{$c}}"><title>{{.Value}}</title></circle>
{{end}}{{end}}<line x1="{{.Left}}" x2="{{add .Left .PlotW}}" y1="{{f .Mean.Y}}" y2="{{f .Mean.Y}}" stroke="#d1242f" stroke-width="2" stroke-dasharray="6 4"/>
{{with .Baseline}}<line x1="{{$.Left}}" x2="{{add $.Left $.PlotW}}" y1="{{f .Y}}" y2="{{f .Y}}" stroke="#1a7f37" stroke-width="2" stroke-dasharray="2 3"/>
{{end}}<line x1="{{.Left}}" x2="{{.Left}}" y1="{{.Top}}" y2="{{add .Top .PlotH}}" stroke="#888"/>
<line x1="{{.Left}}" x2="{{add .Left .PlotW}}" y1="{{add .Top .PlotH}}" y2="{{add .Top .PlotH}}" stroke="#888"/>
<text x="{{.Left}}" y="{{sub .Height 4}}" font-size="10.5" fill="#555"><tspan fill="#d1242f">━ {{.Mean.Label}}</tspan>{{with .Baseline}}<tspan dx="10" fill="#1a7f37">┅ {{.Label}}</tspan>{{end}}{{with .Band}}<tspan dx="10" fill="#1a7f37">▒ ±band {{.Verdict}}</tspan>{{end}}{{if .Window}}<tspan dx="10" fill="#8a9bb0">▒ common window</tspan>{{end}}</text>
</svg>{{end}}`
