// Package benchratio prints the RATIO lines of make bench with their
// spread, so that a reader sees when a ratio is noise:
//
//	RATIO <name> <value> (min <a> max <b>, n=<k>)
//
// The value is the median of the per-round ratios; min and max are the
// lowest and highest of them, n how many rounds there were. make bench
// greps the lines by their "RATIO <name> <value>" prefix.
package benchratio

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"
)

// Line formats the RATIO line of the per-round ratios rs: their median,
// with their min, max and count. It returns "" when rs is empty.
func Line(name string, rs []float64) string {
	if len(rs) == 0 {
		return ""
	}
	return fmt.Sprintf("RATIO %s %s", name, Spread(rs))
}

// Spread formats the median of rs with its min, max and count, as a
// RATIO line has them after its name: "<median> (min <a> max <b>, n=<k>)".
func Spread(rs []float64) string {
	if len(rs) == 0 {
		return "(n=0)"
	}
	s := slices.Clone(rs)
	slices.Sort(s)
	return fmt.Sprintf("%.3f (min %.3f max %.3f, n=%d)", Median(s), s[0], s[len(s)-1], len(s))
}

// LineOf is Line with the value given: for a ratio that is not the
// median of rs (a fitted one), rs giving the spread.
func LineOf(name string, value float64, rs []float64) string {
	if len(rs) == 0 {
		return fmt.Sprintf("RATIO %s %.3f (n=1)", name, value)
	}
	s := slices.Clone(rs)
	slices.Sort(s)
	return fmt.Sprintf("RATIO %s %.3f (min %.3f max %.3f, n=%d)", name, value, s[0], s[len(s)-1], len(s))
}

// LineCI is Line with a 95% confidence interval of the mean of rs
// (Student's t), for ratios whose rounds are independent samples.
func LineCI(name string, rs []float64) string {
	l := Line(name, rs)
	if len(rs) < 2 {
		return l
	}
	lo, hi := MeanCI(rs)
	return fmt.Sprintf("%s [mean %.3f, 95%% CI %.3f..%.3f]", l, Mean(rs), lo, hi)
}

// Print writes Line to stdout. With -test.count above 1 the testing
// package prints a benchmark's name before it runs, without a newline,
// so the line then starts on a line of its own.
func Print(name string, rs []float64) { fprint(os.Stdout, Line(name, rs)) }

// PrintOf writes LineOf to stdout, as Print does.
func PrintOf(name string, value float64, rs []float64) { fprint(os.Stdout, LineOf(name, value, rs)) }

// PrintCI writes LineCI to stdout, as Print does.
func PrintCI(name string, rs []float64) { fprint(os.Stdout, LineCI(name, rs)) }

func fprint(w io.Writer, line string) {
	if line == "" {
		return
	}
	nl := ""
	if f := flag.Lookup("test.count"); f != nil && f.Value.String() != "1" {
		nl = "\n"
	}
	fmt.Fprintf(w, "%s%s\n", nl, line)
}

// Ratios returns num[i]/den[i] for each round i both have.
func Ratios(num, den []time.Duration) []float64 {
	n := min(len(num), len(den))
	rs := make([]float64, 0, n)
	for i := range n {
		if den[i] > 0 {
			rs = append(rs, float64(num[i])/float64(den[i]))
		}
	}
	return rs
}

// Median is the median of s, which must be sorted and not empty.
func Median(s []float64) float64 {
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Mean is the mean of s.
func Mean(s []float64) float64 {
	var sum float64
	for _, x := range s {
		sum += x
	}
	return sum / float64(len(s))
}

// MeanCI is the 95% confidence interval of the mean of s (Student's t,
// two-sided); s needs at least two values.
func MeanCI(s []float64) (lo, hi float64) {
	m := Mean(s)
	var ss float64
	for _, x := range s {
		ss += (x - m) * (x - m)
	}
	sd := math.Sqrt(ss / float64(len(s)-1))
	h := TQuantile975(len(s)-1) * sd / math.Sqrt(float64(len(s)))
	return m - h, m + h
}

// TQuantile975 is the 0.975 quantile of Student's t with df degrees of
// freedom.
func TQuantile975(df int) float64 {
	table := []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086}
	switch {
	case df < 1:
		return math.Inf(1)
	case df < len(table):
		return table[df]
	case df < 30:
		return 2.045
	case df < 60:
		return 2.0
	}
	return 1.96
}

// Durations summarises round times: their median, min and max.
func Durations(d []time.Duration) (med, lo, hi time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	med = s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return med, s[0], s[len(s)-1]
}
