package lnsttest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/results"
)

// liveRun is what a run with -lnst.results writes as it goes: its events
// file, and results.json after every recipe.
type liveRun struct {
	dir string
	id  string
	log *results.EventLog
	// file rewrites the run's results file, each recipe encoded once.
	file *results.RunFile
	// keys numbers the run's jobs for their events.
	keys atomic.Int64
	// writeMu orders the rewrites of results.json.
	writeMu sync.Mutex
	// failed is set once an event could not be written: said once.
	failed atomic.Bool
}

// liveJob is a job of a test that has not ended.
type liveJob struct {
	key int
	rj  results.RunningJob
}

// openResults makes the -lnst.results directory and the run's events
// file in it, and writes the run's first results file: a directory this
// process cannot write in fails the run before any recipe runs.
func (s *session) openResults() error {
	if cfg.results == "" {
		return nil
	}
	dir := cfg.results
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("-lnst.results %s: %w", dir, err)
	}
	id := results.NewRunID(s.results.run.Start)
	l, err := results.CreateEventLog(dir, id)
	if err != nil {
		return fmt.Errorf("-lnst.results %s: cannot write the run's events there: %w", dir, err)
	}
	s.live = &liveRun{dir: dir, id: id, log: l, file: results.NewRunFile(dir)}
	s.mu.Lock()
	s.results.run.ID = id
	s.results.run.State = results.StateRunning
	head := s.results.run
	s.mu.Unlock()
	if err := l.AppendSync(results.Event{Type: results.EventRunStarted, Run: &head, PID: os.Getpid()}); err != nil {
		return fmt.Errorf("-lnst.results %s: %w", dir, err)
	}
	if err := s.writeResults(results.StateRunning); err != nil {
		return err
	}
	return nil
}

// event appends e to the run's events file, if it has one. A failure is
// said once on stderr: the recipes go on, and what was written stays.
func (s *session) event(e results.Event) {
	if s == nil || s.live == nil {
		return
	}
	if err := s.live.log.Append(e); err != nil && !s.live.failed.Swap(true) {
		fmt.Fprintf(os.Stderr, "lnsttest: -lnst.results: %v (no more events are written)\n", err)
	}
}

// recipeEvent appends e for st's recipe.
func (st *testState) event(e results.Event) {
	e.Recipe = st.t.Name()
	current().event(e)
}

// jobStarted notes that j started in st (id 0: a foreground job, whose
// number its agent tells at its start, jobNamed, or, if older, at its
// end).
func (st *testState) jobStarted(j *Job, id int64) {
	s := j.host.s
	lj := liveJob{rj: results.RunningJob{Host: j.host.name, ID: int(id), Command: j.cmd, Desc: j.opts.desc, Start: time.Now()}}
	if s != nil && s.live != nil {
		lj.key = int(s.live.keys.Add(1))
	}
	st.mu.Lock()
	if st.live == nil {
		st.live = map[*Job]liveJob{}
	}
	st.live[j] = lj
	st.mu.Unlock()
	if lj.key != 0 {
		rj := lj.rj
		st.event(results.Event{Type: results.EventJobStarted, Job: &results.EventJob{Key: lj.key, Job: results.Job{
			Host: rj.Host, ID: rj.ID, Command: rj.Command, Desc: rj.Desc, Start: rj.Start}}})
	}
}

// jobNamed notes id, the id j's agent told at j's start, for j, a
// foreground job started with jobStarted(j, 0): the running job is then
// named, and its last output read, as a background job's.
func (st *testState) jobNamed(j *Job, id int64) {
	st.mu.Lock()
	lj, ok := st.live[j]
	if ok {
		lj.rj.ID = int(id)
		st.live[j] = lj
	}
	st.mu.Unlock()
	if ok && lj.key != 0 {
		rj := lj.rj
		st.event(results.Event{Type: results.EventJobStarted, Job: &results.EventJob{Key: lj.key, Job: results.Job{
			Host: rj.Host, ID: rj.ID, Command: rj.Command, Desc: rj.Desc, Start: rj.Start}}})
	}
}

// jobEnded notes that j, started with jobStarted, ended.
func (st *testState) jobEnded(j *Job) {
	st.mu.Lock()
	lj, ok := st.live[j]
	delete(st.live, j)
	st.mu.Unlock()
	if ok && lj.key != 0 {
		rj := jobRecord(st, j)
		st.event(results.Event{Type: results.EventJobEnded, Job: &results.EventJob{Key: lj.key, Job: rj}})
	}
}

// writeResults writes the run's results file (and results.json) into the
// -lnst.results directory, with the recipes that ended, in state.
func (s *session) writeResults(state string) error {
	return s.writeRun(state, nil)
}

// writeRun writes the run's results with running as its running recipes.
func (s *session) writeRun(state string, running []results.RunningRecipe) error {
	if cfg.results == "" {
		return nil
	}
	s.mu.Lock()
	run := s.results.run
	run.Recipes = slices.Clone(run.Recipes)
	s.mu.Unlock()
	run.End = time.Now()
	run.State = state
	run.Running = running
	if s.live == nil {
		// The directory could not be opened: results.json as before.
		if err := results.Write(cfg.results, &run); err != nil {
			return fmt.Errorf("-lnst.results %s: %w", cfg.results, err)
		}
		return nil
	}
	s.live.writeMu.Lock()
	defer s.live.writeMu.Unlock()
	if err := s.live.file.Write(&run); err != nil {
		return fmt.Errorf("-lnst.results %s: %w", s.live.dir, err)
	}
	return nil
}

// endRun appends the run's last event and, unless recipes may still be
// running (an interrupted run), closes its events file.
func (s *session) endRun(state string) error {
	if s.live == nil {
		return nil
	}
	err := s.live.log.AppendSync(results.Event{Type: results.EventRunEnded, State: state})
	if state == results.StateInterrupted {
		return err
	}
	return errors.Join(err, s.live.log.Close())
}

// running describes the recipes running now and their running jobs;
// with fetch, each background job's last output lines, asked of its agent
// within ctx.
func (s *session) running(ctx context.Context, fetch bool) []results.RunningRecipe {
	s.mu.Lock()
	var states []*testState
	for _, st := range s.states {
		states = append(states, st)
	}
	s.mu.Unlock()
	slices.SortFunc(states, func(a, b *testState) int { return a.start.Compare(b.start) })
	var out []results.RunningRecipe
	type asked struct {
		job *Job
		rj  *results.RunningJob
	}
	var fetches []asked
	for _, st := range states {
		st.mu.Lock()
		rr := results.RunningRecipe{Name: st.t.Name(), Match: st.match, Start: st.start, Jobs: []results.RunningJob{}}
		var jobs []*Job
		for j := range st.live {
			jobs = append(jobs, j)
		}
		slices.SortFunc(jobs, func(a, b *Job) int { return st.live[a].rj.Start.Compare(st.live[b].rj.Start) })
		for _, j := range jobs {
			rr.Jobs = append(rr.Jobs, st.live[j].rj)
		}
		st.mu.Unlock()
		out = append(out, rr)
		for i, j := range jobs {
			if rr.Jobs[i].ID != 0 {
				fetches = append(fetches, asked{j, &out[len(out)-1].Jobs[i]})
			}
		}
	}
	if fetch {
		var wg sync.WaitGroup
		for _, f := range fetches {
			wg.Go(func() { f.rj.Output = lastOutput(ctx, f.job.host, int64(f.rj.ID)) })
		}
		wg.Wait()
	}
	return out
}

// outputTail is how much of a running job's output lastOutput keeps.
const outputTail = 4096

// lastOutput asks h's agent for what its job id printed so far and
// returns its last lines: the agent sends all it kept, and what came by
// the end of ctx is what there is.
func lastOutput(ctx context.Context, h *Host, id int64) string {
	stream, err := h.client.StreamJob(ctx, &pb.JobRef{Host: h.id, Id: id})
	if err != nil {
		return ""
	}
	var tail []byte
	for {
		o, err := stream.Recv()
		if err != nil {
			break
		}
		tail = append(tail, o.Data...)
		if len(tail) > 2*outputTail {
			tail = slices.Clone(tail[len(tail)-outputTail:])
		}
	}
	if len(tail) > outputTail {
		tail = tail[len(tail)-outputTail:]
	}
	lines := strings.Split(strings.TrimRight(string(tail), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

// deadlineLead is how long before the test binary's deadline
// (-test.timeout) lnsttest says what still runs and writes results: at
// most 10s, and 30% of a short timeout, so that it comes before calls to
// agents are cut short (rpcGrace, at most a quarter of the time left).
func deadlineLead(timeout time.Duration) time.Duration {
	return min(10*time.Second, timeout*3/10)
}

// watchDeadline arranges for nearDeadline to run shortly before the test
// binary's deadline; call it right before m.Run, which sets the deadline.
// It returns a function that stops the watch.
func (s *session) watchDeadline() func() {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return func() {}
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return func() {}
	}
	timeout, _ := g.Get().(time.Duration)
	if timeout <= 0 {
		return func() {}
	}
	lead := deadlineLead(timeout)
	tm := time.AfterFunc(timeout-lead, func() { s.nearDeadline(os.Stderr, timeout, lead) })
	return func() { tm.Stop() }
}

// nearDeadline says on w what still runs, lead before the test binary's
// deadline: each running recipe with its hosts and each running job
// (host, job id, command, how long it has run, its last output lines),
// and writes results; then lets the timeout come.
func (s *session) nearDeadline(w io.Writer, timeout, lead time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), min(time.Second, lead/4))
	running := s.running(ctx, true)
	cancel()
	now := time.Now()
	var b strings.Builder
	fmt.Fprintf(&b, "lnsttest: the test binary's deadline (-test.timeout=%v) is %v away", timeout, lead)
	if len(running) == 0 {
		b.WriteString("; no recipe is running\n")
	} else {
		b.WriteString("; still running:\n")
	}
	for _, rr := range running {
		fmt.Fprintf(&b, "  %s: running %v, hosts %s\n", rr.Name, now.Sub(rr.Start).Round(100*time.Millisecond), orNone(rr.Match))
		if len(rr.Jobs) == 0 {
			b.WriteString("    no job running\n")
		}
		for _, j := range rr.Jobs {
			what := j.Command
			if j.Desc != "" && j.Desc != j.Command {
				what = fmt.Sprintf("%q (%s)", j.Desc, j.Command)
			}
			fmt.Fprintf(&b, "    %s: job %s %s: running %v\n", j.Host, results.JobNumber(j.ID), what, now.Sub(j.Start).Round(100*time.Millisecond))
			switch {
			case j.ID == 0:
				b.WriteString("      (a foreground job whose agent tells its number and output only at its end)\n")
			case j.Output == "":
				b.WriteString("      no output so far\n")
			default:
				b.WriteString("      last output:\n")
				for _, l := range strings.Split(j.Output, "\n") {
					fmt.Fprintf(&b, "      | %s\n", l)
				}
			}
		}
	}
	if s.live != nil {
		if err := s.live.log.AppendSync(results.Event{Type: results.EventDeadline, Running: running}); err != nil {
			fmt.Fprintf(&b, "lnsttest: -lnst.results: %v\n", err)
		}
		if err := s.writeRun(results.StateDeadline, running); err != nil {
			fmt.Fprintf(&b, "lnsttest: %v\n", err)
		} else {
			fmt.Fprintf(&b, "lnsttest: results so far written to %s\n", filepath.Join(s.live.dir, results.ResultsName(s.live.id)))
		}
	}
	io.WriteString(w, b.String())
}

func orNone(s string) string {
	if s == "" {
		return "(none yet)"
	}
	return s
}
