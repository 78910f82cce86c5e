package results

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// RunFiles are the files of one run in a results directory.
type RunFiles struct {
	// ID is the run's id.
	ID string
	// Events and Results are the paths of its events and results files,
	// "" where there is none.
	Events, Results string
}

// ListRuns lists the runs whose events or results files dir holds, in
// the order they started (their ids sort so). A directory holding only
// a results.json of a run written before runs had ids lists nothing.
func ListRuns(dir string) ([]RunFiles, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	byID := map[string]*RunFiles{}
	get := func(id string) *RunFiles {
		if byID[id] == nil {
			byID[id] = &RunFiles{ID: id}
		}
		return byID[id]
	}
	for _, e := range ents {
		name := e.Name()
		if id, ok := cutAround(name, "events-", ".jsonl"); ok {
			get(id).Events = filepath.Join(dir, name)
		} else if id, ok := cutAround(name, "results-", ".json"); ok {
			get(id).Results = filepath.Join(dir, name)
		}
	}
	var runs []RunFiles
	for _, r := range byID {
		runs = append(runs, *r)
	}
	slices.SortFunc(runs, func(a, b RunFiles) int { return cmp.Compare(a.ID, b.ID) })
	return runs, nil
}

func cutAround(s, prefix, suffix string) (string, bool) {
	s, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", false
	}
	s, ok = strings.CutSuffix(s, suffix)
	return s, ok && s != ""
}

// Live reports whether the process that writes the events file at path
// still runs: it holds the file's lock until it dies.
func Live(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// LoadedRun is a run as its files in a results directory tell it.
type LoadedRun struct {
	RunFiles
	// Run holds the recipes that ended; Running the recipes and jobs
	// running at the last event (while the run lives, or when it died).
	Run *Run
	// State is StateRunning while the run's process lives, else the state
	// its last event gave (StateEnded, StateInterrupted), or StateDied.
	State string
	// PID is the run's process id.
	PID int
	// Rebuilt is set when Run was rebuilt from the events file: the
	// results file was missing, unreadable or held fewer recipes.
	Rebuilt bool
	// Torn is set when the events file's last line was cut short.
	Torn bool
	// Last is the time of the last event.
	Last time.Time
}

// LoadRun reads a run's files. A corrupt events file is an error; the run
// is then returned as its results file holds it, when it can be read.
func LoadRun(f RunFiles) (*LoadedRun, error) {
	lr := &LoadedRun{RunFiles: f}
	var fromFile *Run
	var fileErr error
	if f.Results != "" {
		fromFile, fileErr = Read(f.Results)
	}
	if f.Events == "" {
		if fileErr != nil {
			return nil, fileErr
		}
		lr.Run, lr.State = fromFile, fromFile.State
		return lr, nil
	}
	events, torn, err := ReadEvents(f.Events)
	if err != nil {
		if fromFile == nil {
			return nil, err
		}
		lr.Run, lr.State = fromFile, fromFile.State
		return lr, err
	}
	lr.Torn = torn
	built, state, pid, last := Fold(events)
	if built == nil {
		err := fmt.Errorf("%s: no %s event", f.Events, EventRunStarted)
		if fromFile == nil {
			return nil, err
		}
		lr.Run, lr.State = fromFile, fromFile.State
		return lr, err
	}
	lr.PID, lr.Last = pid, last
	lr.State = state
	if Live(f.Events) {
		lr.State = StateRunning
	} else if state == "" {
		lr.State = StateDied
		built.State = StateDied
	}
	if fromFile == nil || len(fromFile.Recipes) < len(built.Recipes) {
		lr.Run, lr.Rebuilt = built, true
		return lr, nil
	}
	lr.Run = fromFile
	if lr.State == StateRunning || lr.State == StateDied {
		lr.Run.Running = built.Running
	}
	return lr, nil
}

// Fold rebuilds a run from its events: the recipes that ended, and in
// Running those that had not with their jobs that had not. state is the
// run_ended event's state, "" if there is none; pid is the run's process
// id and last the time of the last event.
func Fold(events []Event) (run *Run, state string, pid int, last time.Time) {
	type open struct {
		rr   RunningRecipe
		keys []int
	}
	var order []string
	opened := map[string]*open{}
	jobs := map[int]RunningJob{}
	for _, e := range events {
		last = e.Time
		if e.Type == EventRunStarted && e.Run != nil {
			r := *e.Run
			r.Recipes, r.Running = nil, nil
			run, pid = &r, e.PID
			continue
		}
		if run == nil {
			continue
		}
		switch e.Type {
		case EventHost:
			if e.Host != nil && !slices.ContainsFunc(run.Hosts, func(h HostInfo) bool { return h.Name == e.Host.Name }) {
				run.Hosts = append(run.Hosts, *e.Host)
			}
		case EventRecipeStarted:
			if opened[e.Recipe] == nil {
				order = append(order, e.Recipe)
			}
			opened[e.Recipe] = &open{rr: RunningRecipe{Name: e.Recipe, Start: e.Time}}
		case EventMatch:
			if o := opened[e.Recipe]; o != nil {
				o.rr.Match = e.Match
			}
		case EventJobStarted:
			if o := opened[e.Recipe]; o != nil && e.Job != nil {
				j := e.Job.Job
				if !slices.Contains(o.keys, e.Job.Key) {
					o.keys = append(o.keys, e.Job.Key)
				}
				// Again for a foreground job, with the id its agent told.
				jobs[e.Job.Key] = RunningJob{Host: j.Host, ID: j.ID, Command: j.Command, Desc: j.Desc, Start: j.Start}
			}
		case EventJobEnded:
			if e.Job != nil {
				delete(jobs, e.Job.Key)
			}
		case EventDeadline:
			// The output of running jobs, fetched at the deadline.
			for _, rr := range e.Running {
				for _, j := range rr.Jobs {
					for k, rj := range jobs {
						if rj.Host == j.Host && rj.Start.Equal(j.Start) && rj.Command == j.Command {
							rj.Output = j.Output
							jobs[k] = rj
						}
					}
				}
			}
		case EventRecipeEnded:
			if e.Result != nil {
				run.Recipes = append(run.Recipes, *e.Result)
			}
			delete(opened, e.Recipe)
		case EventRunEnded:
			run.End, run.State, state = e.Time, e.State, e.State
		}
	}
	if run == nil {
		return nil, "", 0, last
	}
	if state == "" {
		run.End = last
	}
	for _, name := range order {
		o := opened[name]
		if o == nil || slices.ContainsFunc(run.Running, func(r RunningRecipe) bool { return r.Name == name }) {
			continue
		}
		rr := o.rr
		rr.Jobs = []RunningJob{}
		for _, k := range o.keys {
			if j, ok := jobs[k]; ok {
				rr.Jobs = append(rr.Jobs, j)
			}
		}
		run.Running = append(run.Running, rr)
	}
	return run, state, pid, last
}

// Rebuild writes a run's results file again from its events file when
// the file is missing, unreadable or holds fewer recipes than the events
// (the run died before it wrote them); results.json then names it too if
// it is the directory's latest run. It reports whether it wrote. A
// running run, and a corrupt events file, are errors: nothing is written.
func Rebuild(dir string, f RunFiles) (bool, *LoadedRun, error) {
	lr, err := LoadRun(f)
	if err != nil {
		return false, lr, err
	}
	if lr.State == StateRunning {
		return false, lr, fmt.Errorf("run %s is still running (pid %d): its results are written after every recipe", f.ID, lr.PID)
	}
	if !lr.Rebuilt {
		return false, lr, nil
	}
	run := *lr.Run
	if err := writeFile(dir, ResultsName(f.ID), &run); err != nil {
		return false, lr, err
	}
	runs, err := ListRuns(dir)
	if err == nil && len(runs) > 0 && runs[len(runs)-1].ID == f.ID {
		err = WriteRun(dir, &run)
	}
	return true, lr, err
}
