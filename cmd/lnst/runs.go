package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lnst-go/lnst/results"
)

// summaryRuns reads what "lnst results PATH..." summarizes: a file, or a
// directory's runs (each run's results file, rebuilt from its events
// file when the run died before writing them all), or the results.json of
// a directory written before runs had ids. It lists the runs of each
// directory on w first.
func summaryRuns(paths []string, w, stderr io.Writer) ([]namedRun, bool) {
	var runs []namedRun
	ok := true
	for _, p := range paths {
		files, err := dirRuns(p)
		if err != nil {
			fmt.Fprintf(stderr, "lnst: %v\n", err)
			ok = false
			continue
		}
		if files == nil {
			rs, good := readRuns([]string{p}, stderr)
			runs, ok = append(runs, rs...), ok && good
			continue
		}
		var loaded []*results.LoadedRun
		for _, f := range files {
			lr, err := results.LoadRun(f)
			if err != nil {
				fmt.Fprintf(stderr, "lnst: run %s: %v\n", f.ID, err)
				ok = false
			}
			if lr != nil {
				loaded = append(loaded, lr)
			}
		}
		listRuns(w, p, loaded)
		for _, lr := range loaded {
			path := lr.Results
			if lr.Rebuilt || path == "" {
				path = lr.Events
			}
			runs = append(runs, namedRun{path, lr.Run})
		}
	}
	return runs, ok
}

// dirRuns lists the runs of directory p; nil when p is a file or a
// directory of no run with an id.
func dirRuns(p string) ([]results.RunFiles, error) {
	fi, err := os.Stat(p)
	if err != nil || !fi.IsDir() {
		return nil, nil // a file: read as such, or its error said then
	}
	files, err := results.ListRuns(p)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, nil
	}
	return files, nil
}

// listRuns prints one line per run of a directory.
func listRuns(w io.Writer, dir string, runs []*results.LoadedRun) {
	fmt.Fprintf(w, "%s: %d runs\n", dir, len(runs))
	tw := newTable(w)
	fmt.Fprintln(tw, "RUN\tSTART\tSTATE\tPASS\tFAIL\tSKIP\tRUNNING\tNOTE")
	for _, lr := range runs {
		counts := map[string]int{}
		for _, rc := range lr.Run.Recipes {
			counts[rc.Verdict]++
		}
		var note []string
		if lr.Rebuilt {
			note = append(note, "rebuilt from "+filepath.Base(lr.Events))
		}
		if lr.Torn {
			note = append(note, "last event cut short")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", lr.ID, lr.Run.Start.UTC().Format("2006-01-02 15:04:05 MST"), lr.State,
			counts[results.Pass], counts[results.Fail], counts[results.Skip], len(lr.Run.Running), strings.Join(note, "; "))
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// rebuildCmd is "lnst results rebuild DIR...": each run of DIR that died
// before writing all its recipes gets its results file rebuilt from its
// events file.
func rebuildCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "lnst results rebuild: no directory given\n%s", usage)
		return 2
	}
	code := 0
	for _, dir := range args {
		files, err := results.ListRuns(dir)
		if err != nil {
			fmt.Fprintf(stderr, "lnst: %v\n", err)
			code = 1
			continue
		}
		if len(files) == 0 {
			fmt.Fprintf(stderr, "lnst: %s: no run with an events file\n", dir)
			code = 1
		}
		for _, f := range files {
			wrote, lr, err := results.Rebuild(dir, f)
			switch {
			case err != nil:
				fmt.Fprintf(stderr, "lnst: run %s: %v\n", f.ID, err)
				code = 1
			case wrote:
				fmt.Fprintf(stdout, "%s: rebuilt %s from %s: %d recipes (%s)\n", f.ID, results.ResultsName(f.ID),
					filepath.Base(f.Events), len(lr.Run.Recipes), lr.State)
			default:
				fmt.Fprintf(stdout, "%s: %s is up to date (%s)\n", f.ID, results.ResultsName(f.ID), lr.State)
			}
		}
	}
	return code
}

// statusCmd is "lnst status [-f] DIR|EVENTS-FILE [RUN]".
func statusCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lnst status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	follow := fs.Bool("f", false, "follow: show the status again as events come, until the run ends")
	every := fs.Duration("every", time.Second, "with -f, how often to look for new events")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fmt.Fprintf(stderr, "lnst status: want a results directory and at most a run id\n%s", usage)
		return 2
	}
	dir, id := fs.Arg(0), fs.Arg(1)
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		// An events file.
		d, name := filepath.Split(dir)
		got, ok := strings.CutPrefix(name, "events-")
		got, ok2 := strings.CutSuffix(got, ".jsonl")
		if !ok || !ok2 || id != "" {
			fmt.Fprintf(stderr, "lnst status: %s is not a results directory or an events file\n", dir)
			return 2
		}
		dir, id = filepath.Clean(d), got
	}
	var last string
	for {
		lr, err := loadStatus(dir, id)
		if err != nil {
			fmt.Fprintf(stderr, "lnst: %v\n", err)
			if lr == nil {
				return 1
			}
		}
		var b strings.Builder
		results.WriteStatus(&b, lr, time.Now())
		if !*follow {
			io.WriteString(stdout, b.String())
			if err != nil {
				return 1
			}
			return 0
		}
		// Followed: shown again when something else than the running
		// times changed, and every 10 looks anyway.
		key := fmt.Sprint(lr.Last, lr.State, len(lr.Run.Recipes))
		if key != last {
			if last != "" {
				fmt.Fprintln(stdout, "----", time.Now().Format(time.TimeOnly))
			}
			io.WriteString(stdout, b.String())
			last = key
		}
		if lr.State != results.StateRunning {
			return 0
		}
		time.Sleep(*every)
	}
}

// loadStatus loads run id of dir, or its latest run.
func loadStatus(dir, id string) (*results.LoadedRun, error) {
	files, err := results.ListRuns(dir)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no run (no events-*.jsonl or results-*.json file)", dir)
	}
	f := files[len(files)-1]
	if id != "" {
		found := false
		for _, g := range files {
			if g.ID == id {
				f, found = g, true
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: no run %s", dir, id)
		}
	}
	return results.LoadRun(f)
}
