package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lnst-go/lnst/results"
)

// resultsCmd is "lnst results ...".
func resultsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "compare":
		return compareCmd(args[1:], stdout, stderr)
	case "html":
		return htmlCmd(args[1:], stdout, stderr)
	case "rebuild":
		return rebuildCmd(args[1:], stdout, stderr)
	}
	runs, ok := summaryRuns(args, stdout, stderr)
	for i, r := range runs {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printSummary(stdout, r)
	}
	if !ok {
		return 1
	}
	return 0
}

// namedRun is a run and the file it came from.
type namedRun struct {
	path string
	*results.Run
}

func readRuns(paths []string, stderr io.Writer) ([]namedRun, bool) {
	var runs []namedRun
	ok := true
	for _, p := range paths {
		r, err := results.Read(p)
		if err != nil {
			fmt.Fprintf(stderr, "lnst: %v\n", err)
			ok = false
			continue
		}
		runs = append(runs, namedRun{p, r})
	}
	return runs, ok
}

// printSummary prints a run's header, a table of its recipes with their
// measurements, and the count of each verdict.
func printSummary(w io.Writer, r namedRun) {
	fmt.Fprintf(w, "%s: %s, %s, pool %s\n", r.path, r.Start.UTC().Format("2006-01-02 15:04:05 MST"),
		r.End.Sub(r.Start).Round(time.Second), r.Pool)
	if r.ID != "" {
		fmt.Fprintf(w, "  run %s: %s\n", r.ID, r.State)
	}
	for _, h := range r.Hosts {
		fmt.Fprintf(w, "  host %s: kernel %s, %s, agent %s\n", h.Name, h.Kernel, h.Arch, h.AgentVersion)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "RECIPE\tVERDICT\tDURATION\tJOBS\tMEASUREMENTS")
	counts := map[string]int{}
	for _, rc := range r.Recipes {
		counts[rc.Verdict]++
		// A line per measurement, then per flow set (flow_set records
		// of perf.MeasureFlows).
		var lines []string
		for _, m := range measurements(rc) {
			lines = append(lines, shortMeasurement(m))
		}
		for _, fs := range flowSets(rc) {
			lines = append(lines, flowSetLine(fs))
		}
		first := ""
		if len(lines) > 0 {
			first = lines[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", rc.Name, strings.ToUpper(rc.Verdict),
			formatDuration(rc.Duration), len(rc.Jobs), first)
		for _, l := range lines[min(1, len(lines)):] {
			fmt.Fprintf(tw, "\t\t\t\t%s\n", l)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "recipes: %d pass, %d fail, %d skip\n", counts[results.Pass], counts[results.Fail], counts[results.Skip])
	for _, rr := range r.Running {
		fmt.Fprintf(w, "not ended: %s (started %s, hosts %s)\n", rr.Name, rr.Start.UTC().Format("15:04:05"), rr.Match)
		for _, j := range rr.Jobs {
			fmt.Fprintf(w, "  %s job %s: %s\n", j.Host, results.JobNumber(j.ID), j.Command)
		}
	}
}

// measurements are the Measurements a recipe recorded.
func measurements(rc results.Recipe) []results.Measurement {
	var ms []results.Measurement
	for _, rec := range rc.Records {
		if m, ok := rec.Measurement(); ok {
			ms = append(ms, m)
		}
	}
	return ms
}

// shortMeasurement formats m for a table: "tcp 9.41 ± 0.12 Gbit/s (3 runs)".
func shortMeasurement(m results.Measurement) string {
	scale, unit := results.ScaleUnit(m.Mean, m.Unit)
	s := fmt.Sprintf("%s %.2f ± %.2f %s (%d runs)", m.Flow, m.Mean/scale, m.StdDev/scale, unit, len(m.Iterations))
	if c := m.Baseline; c != nil && !c.Recorded {
		s += fmt.Sprintf(" baseline %+.1f%%", c.Delta)
		if !c.Pass {
			s += " BELOW"
		}
	}
	return s
}

func formatDuration(d results.Duration) string {
	return time.Duration(d).Round(time.Millisecond).String()
}

// htmlCmd is "lnst results html FILE... -o OUT"; -o may come anywhere.
func htmlCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lnst results html", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "report.html", "the HTML file to write (- for standard output)")
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
	if len(files) == 0 {
		fmt.Fprintf(stderr, "lnst results html: no run given\n%s", usage)
		return 2
	}
	runs, ok := readRuns(files, stderr)
	if !ok {
		return 1
	}
	if *out == "-" {
		if err := writeHTML(stdout, runs); err != nil {
			fmt.Fprintf(stderr, "lnst: %v\n", err)
			return 1
		}
		return 0
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintf(stderr, "lnst: %v\n", err)
		return 1
	}
	err = writeHTML(f, runs)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "lnst: write %s: %v\n", *out, err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return 0
}

// table is a tabwriter whose lines lose their trailing blanks (empty last
// cells) when it is flushed.
type table struct {
	*tabwriter.Writer
	buf strings.Builder
	out io.Writer
}

func newTable(w io.Writer) *table {
	t := &table{out: w}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 4, 2, ' ', 0)
	return t
}

// Flush writes the table.
func (t *table) Flush() {
	t.Writer.Flush()
	for line := range strings.Lines(t.buf.String()) {
		fmt.Fprintln(t.out, strings.TrimRight(line, " \n"))
	}
	t.buf.Reset()
}
