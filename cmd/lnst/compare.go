package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lnst-go/lnst/results"
)

// Verdicts of a compared metric.
const (
	verdictRegression  = "REGRESSION"
	verdictImprovement = "improvement"
	verdictNoChange    = "no change"
)

// compareOpts are the thresholds of "lnst results compare".
type compareOpts struct {
	// tolerance is the relative change, in the worse or better
	// direction, below which a metric has not changed.
	tolerance float64
	// alpha is the significance level of Welch's t-test: a change beyond
	// the tolerance counts only when p < alpha.
	alpha float64
}

// compareCmd is "lnst results compare [-tolerance F] [-alpha P] A B";
// flags may come anywhere. It exits 1 when a metric regressed (a CI
// gate), 2 when used wrongly.
func compareCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lnst results compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o compareOpts
	fs.Float64Var(&o.tolerance, "tolerance", 0.1, "relative change (0.1 = 10%) within which a metric has not changed")
	fs.Float64Var(&o.alpha, "alpha", 0.05, "significance level of Welch's t-test on the iterations")
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 2 {
		fmt.Fprintf(stderr, "lnst results compare: want two runs, A and B; got %d\n%s", len(files), usage)
		return 2
	}
	if !(o.tolerance >= 0) || !(o.alpha > 0 && o.alpha < 1) {
		fmt.Fprintf(stderr, "lnst results compare: -tolerance %v must be >= 0 and -alpha %v between 0 and 1\n", o.tolerance, o.alpha)
		return 2
	}
	runs, ok := readRuns(files, stderr)
	if !ok {
		return 1
	}
	if printCompare(stdout, runs[0], runs[1], o) > 0 {
		return 1
	}
	return 0
}

// metricKey identifies a metric across runs.
type metricKey struct{ recipe, record, metric string }

// indexMetrics maps each metric of each measurement of r by recipe,
// record and metric name, and appends the keys not yet in order to it.
func indexMetrics(r *results.Run, order []metricKey) (map[metricKey]results.Metric, []metricKey) {
	seen := map[metricKey]bool{}
	for _, k := range order {
		seen[k] = true
	}
	idx := map[metricKey]results.Metric{}
	for _, rc := range r.Recipes {
		for _, rec := range rc.Records {
			for _, mt := range recordMetrics(rec) {
				k := metricKey{rc.Name, rec.Name, mt.Name}
				idx[k] = mt
				if !seen[k] {
					seen[k] = true
					order = append(order, k)
				}
			}
		}
	}
	return idx, order
}

// recordMetrics are the metrics of a measurement or flow-set record,
// none for any other record.
func recordMetrics(rec results.Record) []results.Metric {
	if m, ok := rec.Measurement(); ok {
		return m.Metrics()
	}
	if fs, ok := rec.FlowSet(); ok {
		var out []results.Metric
		for _, m := range fs.Metrics() {
			out = append(out, m.Metric)
		}
		return out
	}
	return nil
}

// comparison is how one metric moved from run A to run B.
type comparison struct {
	verdict string
	delta   float64 // percent, (B - A) / A
	p       float64 // NaN when the t-test could not run
}

// compareMetric judges b against a: a change within the tolerance is no
// change; beyond it, a regression or an improvement by the metric's
// direction when Welch's t-test on the iterations finds it significant
// (p < alpha), or on the tolerance alone when a run has a single
// iteration.
func compareMetric(a, b results.Metric, o compareOpts) comparison {
	c := comparison{verdict: verdictNoChange, p: math.NaN()}
	ma, mb := a.Mean(), b.Mean()
	if ma != 0 {
		c.delta = 100 * (mb - ma) / math.Abs(ma)
	}
	if w, err := results.WelchTTest(a.Samples, b.Samples); err == nil {
		c.p = w.P
	}
	gain := c.delta / 100
	if ma == 0 {
		gain = math.Copysign(math.Inf(1), mb-ma)
		if mb == ma {
			gain = 0
		}
	}
	if !a.HigherIsBetter {
		gain = -gain
	}
	if math.Abs(gain) <= o.tolerance || (!math.IsNaN(c.p) && c.p >= o.alpha) {
		return c
	}
	if gain < 0 {
		c.verdict = verdictRegression
	} else {
		c.verdict = verdictImprovement
	}
	return c
}

// printCompare prints every metric of a and b lined up, with the change,
// Welch's p and a verdict, then the recipes whose verdict changed and the
// count of each verdict; it returns the number of regressions.
func printCompare(w io.Writer, a, b namedRun, o compareOpts) int {
	fmt.Fprintf(w, "A: %s (%s)\nB: %s (%s)\n", a.path, a.Start.UTC().Format(time.DateTime), b.path, b.Start.UTC().Format(time.DateTime))
	ma, order := indexMetrics(a.Run, nil)
	mb, order := indexMetrics(b.Run, order)
	tw := newTable(w)
	fmt.Fprintln(tw, "RECIPE\tMEASUREMENT\tMETRIC\tA\tB\tDELTA %\tP\tVERDICT")
	counts := map[string]int{}
	for _, k := range order {
		x, inA := ma[k]
		y, inB := mb[k]
		delta, p, verdict := "", "", ""
		switch {
		case !inA || !inB:
			verdict = "only in " + map[bool]string{true: "A", false: "B"}[inA]
		case x.Unit != y.Unit:
			verdict = "units differ"
		default:
			c := compareMetric(x, y, o)
			delta = strconv.FormatFloat(c.delta, 'f', 1, 64) + "%"
			if c.delta >= 0 {
				delta = "+" + delta
			}
			p = "-"
			if !math.IsNaN(c.p) {
				p = strconv.FormatFloat(c.p, 'f', 3, 64)
			}
			verdict = c.verdict
		}
		counts[verdict]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.recipe, k.record, k.metric,
			metricCell(x, inA), metricCell(y, inB), delta, p, verdict)
	}
	tw.Flush()
	verdicts := map[string]string{}
	for _, rc := range a.Recipes {
		verdicts[rc.Name] = rc.Verdict
	}
	for _, rc := range b.Recipes {
		if v, ok := verdicts[rc.Name]; ok && v != rc.Verdict {
			fmt.Fprintf(w, "%s: %s -> %s\n", rc.Name, strings.ToUpper(v), strings.ToUpper(rc.Verdict))
		}
	}
	fmt.Fprintf(w, "metrics: %d regression, %d improvement, %d no change (tolerance %s, Welch's t-test at alpha %s)\n",
		counts[verdictRegression], counts[verdictImprovement], counts[verdictNoChange],
		strconv.FormatFloat(100*o.tolerance, 'f', -1, 64)+"%", strconv.FormatFloat(o.alpha, 'f', -1, 64))
	return counts[verdictRegression]
}

// metricCell formats a metric's mean and deviation: "16.99 ± 0.51
// Gbit/s (3)".
func metricCell(m results.Metric, ok bool) string {
	if !ok {
		return "-"
	}
	mean := m.Mean()
	scale, unit := results.ScaleUnit(mean, m.Unit)
	sd := 0.0
	if n := len(m.Samples); n > 1 {
		for _, v := range m.Samples {
			sd += (v - mean) * (v - mean)
		}
		sd = math.Sqrt(sd / float64(n-1))
	}
	return fmt.Sprintf("%.2f ± %.2f %s (%d)", mean/scale, sd/scale, unit, len(m.Samples))
}
