package results

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// lastResults is how many of the latest ended recipes a running run's
// status shows.
const lastResults = 10

// WriteStatus writes what lnst status shows of a run at time now: while
// it runs, its running recipes with their hosts and running jobs (how
// long each has run) and its last results; once it ended, its summary.
func WriteStatus(w io.Writer, lr *LoadedRun, now time.Time) {
	var b strings.Builder
	writeStatus(&b, lr, now)
	for line := range strings.Lines(b.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

func writeStatus(w io.Writer, lr *LoadedRun, now time.Time) {
	r := lr.Run
	counts := map[string]int{}
	for _, rc := range r.Recipes {
		counts[rc.Verdict]++
	}
	fmt.Fprintf(w, "run %s (pid %d, %s): %s", lr.ID, lr.PID, r.Pool, lr.State)
	switch lr.State {
	case StateRunning:
		fmt.Fprintf(w, " for %v", now.Sub(r.Start).Round(time.Second))
	case StateDied:
		fmt.Fprintf(w, " before its end (last event %s)", lr.Last.Local().Format(time.DateTime))
	default:
		fmt.Fprintf(w, " after %v", r.End.Sub(r.Start).Round(time.Second))
	}
	fmt.Fprintf(w, "; recipes: %d pass, %d fail, %d skip\n", counts[Pass], counts[Fail], counts[Skip])
	if lr.Rebuilt && lr.State != StateRunning {
		fmt.Fprintf(w, "(rebuilt from %s)\n", lr.Events)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(r.Running) > 0 {
		head := "RUNNING"
		if lr.State != StateRunning {
			head = "RUNNING WHEN IT ENDED"
		}
		fmt.Fprintln(w, head)
		at := now
		if lr.State != StateRunning {
			at = lr.Last
		}
		for _, rr := range r.Running {
			fmt.Fprintf(tw, "  %s\t%v\t%s\n", rr.Name, at.Sub(rr.Start).Round(100*time.Millisecond), rr.Match)
			for _, j := range rr.Jobs {
				fmt.Fprintf(tw, "    %s job %s\t%v\t%s\n", j.Host, JobNumber(j.ID), at.Sub(j.Start).Round(100*time.Millisecond), jobWhat(j))
				for _, l := range lastLines(j.Output, 5) {
					fmt.Fprintf(tw, "      | %s\n", l)
				}
			}
		}
		tw.Flush()
	}
	recipes := r.Recipes
	if lr.State == StateRunning {
		if len(recipes) == 0 {
			return
		}
		fmt.Fprintln(w, "LAST RESULTS")
		recipes = recipes[max(0, len(recipes)-lastResults):]
	} else {
		fmt.Fprintln(w, "RESULTS SUMMARY")
	}
	for _, rc := range recipes {
		fmt.Fprintf(tw, "  %s\t%s\t%v\tjobs %d\t%s\n", rc.Name, strings.ToUpper(rc.Verdict), time.Duration(rc.Duration).Round(time.Millisecond), len(rc.Jobs), failedJobs(rc))
	}
	tw.Flush()
}

// JobNumber formats a running job's id: "?" for 0, a foreground job's
// whose number its agent has not told yet.
func JobNumber(id int) string {
	if id == 0 {
		return "?"
	}
	return fmt.Sprint(id)
}

func jobWhat(j RunningJob) string {
	if j.Desc != "" && j.Desc != j.Command {
		return fmt.Sprintf("%q (%s)", j.Desc, j.Command)
	}
	return j.Command
}

// failedJobs names a recipe's failed jobs.
func failedJobs(rc Recipe) string {
	var f []string
	for _, j := range rc.Jobs {
		if j.Verdict == Fail {
			f = append(f, fmt.Sprintf("%s job %d failed: %s", j.Host, j.ID, j.Summary))
		}
	}
	return strings.Join(f, "; ")
}

// lastLines are the last n lines of s.
func lastLines(s string, n int) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	return lines[max(0, len(lines)-n):]
}
