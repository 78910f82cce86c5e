package lnsttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/results"
)

// runResults collects what -lnst.results writes: the run, its hosts and
// every recipe that used lnsttest.
type runResults struct {
	run   results.Run
	hosts map[string]bool
}

func newRunResults() *runResults {
	where := "lab:" + cfg.lab
	if cfg.pool != "" {
		where = cfg.pool
	}
	return &runResults{
		run: results.Run{
			Schema: results.SchemaVersion,
			Start:  time.Now(),
			Args:   os.Args[1:],
			Pool:   where,
		},
		hosts: map[string]bool{},
	}
}

// addHostInfo records a host of the run, once, as its agent described it.
func (s *session) addHostInfo(name string, hello *pb.HelloReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.results.hosts[name] {
		return
	}
	s.results.hosts[name] = true
	hi := results.HostInfo{Name: name, Kernel: hello.Kernel, Arch: hello.Arch, AgentVersion: hello.Version}
	s.results.run.Hosts = append(s.results.run.Hosts, hi)
	// Under s.mu: a recipe that uses the host starts after its event.
	s.event(results.Event{Type: results.EventHost, Host: &hi})
}

// addRecipe records how a test that used lnsttest went.
func (s *session) addRecipe(st *testState) {
	r := results.Recipe{
		Name:     st.t.Name(),
		Match:    st.match,
		Verdict:  results.Pass,
		Start:    st.start,
		Duration: results.Duration(time.Since(st.start)),
		Jobs:     []results.Job{},
		Records:  []results.Record{},
	}
	switch {
	case st.t.Skipped():
		r.Verdict = results.Skip
	case st.t.Failed():
		r.Verdict = results.Fail
	}
	st.mu.Lock()
	jobs, records := st.jobs, st.records
	st.mu.Unlock()
	for _, j := range jobs {
		r.Jobs = append(r.Jobs, s.resultJob(st, j))
	}
	for _, rec := range records {
		r.Records = append(r.Records, results.NewRecord(rec.name, rec.value))
	}
	st.mu.Lock()
	r.Consoles = st.consoles
	r.Captures = st.captures
	r.Profiles = st.profiles
	st.mu.Unlock()
	st.addWatchResults(&r) // sysinfo.go
	s.mu.Lock()
	s.results.run.Recipes = append(s.results.run.Recipes, r)
	s.mu.Unlock()
	if s.live == nil {
		return
	}
	// On disk before the next recipe starts: the event, then the
	// results file with it.
	err := s.live.log.AppendSync(results.Event{Type: results.EventRecipeEnded, Recipe: r.Name, Result: &r})
	if err == nil {
		err = s.live.file.AddRecipe(r)
	}
	if err == nil {
		err = s.writeResults(results.StateRunning)
	}
	if err != nil {
		st.t.Errorf("lnsttest: %v", err)
	}
}

func (s *session) resultJob(st *testState, j *Job) results.Job {
	rj := jobRecord(st, j)
	res := j.Result()
	rj.StdoutFile = s.writeOutput(st, j, "stdout", res.Stdout)
	rj.StderrFile = s.writeOutput(st, j, "stderr", res.Stderr)
	return rj
}

// jobRecord is j as results.json holds it, but for its output files.
func jobRecord(st *testState, j *Job) results.Job {
	verdict, summary := j.verdict()
	res := j.Result()
	j.mu.Lock()
	killed := res.Killed || j.cleanup
	j.mu.Unlock()
	rj := results.Job{
		Host: j.host.name, ID: int(j.id), Command: j.cmd, Desc: j.opts.desc,
		Start: res.Start, Duration: results.Duration(res.Duration),
		ExitCode: res.ExitCode, Signal: int(res.Signal), Killed: killed, TimedOut: res.TimedOut,
		Verdict: results.Pass, Summary: summary,
	}
	// A module's own verdict (SetVerdict) is in the summary; the job's is
	// whether it ended as allowed.
	if verdict == "FAIL" || verdict == "RUNNING" {
		rj.Verdict = results.Fail
	}
	if rj.Start.IsZero() {
		rj.Start = st.start
	}
	return rj
}

// writeOutput writes a job's output next to results.json and returns its
// path relative to the results directory, "" for no output.
func (s *session) writeOutput(st *testState, j *Job, stream, out string) string {
	if out == "" {
		return ""
	}
	return st.writeResultFile(fmt.Sprintf("%s-%d.%s", strings.ReplaceAll(j.host.name, "/", "_"), j.id, stream), out)
}

// fileSafe is s as one file name: no "/", no " ".
var fileSafe = strings.NewReplacer("/", "_", " ", "_").Replace

// resultRel is the path, relative to the -lnst.results directory, of the
// file name of the test named test: the test's directory, the file
// prefixed with the run's id, "<id>.<name>", so that every file a run
// makes carries its id and runs into the same directory do not overwrite
// each other's files.
func resultRel(test, name string) string {
	if s := current(); s != nil && s.live != nil {
		name = s.live.id + "." + name
	}
	return filepath.Join(fileSafe(test), fileSafe(name))
}

// writeResultFile writes data as file name in the test's directory next
// to results.json and returns its path relative to the results directory;
// "" without -lnst.results or when writing failed (the test is failed).
// The name is prefixed with the run's id, "<id>.<name>": runs into the
// same directory do not overwrite each other's files. The file is
// readable by its owner only: a job's output may hold what only root
// could read on its host.
func (st *testState) writeResultFile(name, data string) string {
	if cfg.results == "" {
		return ""
	}
	rel := resultRel(st.t.Name(), name)
	path := filepath.Join(cfg.results, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		st.t.Errorf("lnsttest: -lnst.results: %v", err)
		return ""
	}
	err := os.WriteFile(path, []byte(data), 0o600)
	if err == nil {
		// WriteFile keeps the mode of a file that was there.
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		st.t.Errorf("lnsttest: -lnst.results: %v", err)
		return ""
	}
	return rel
}

// keepConsole writes the end of a VM host's console next to results.json
// and attaches it to the recipe.
func (st *testState) keepConsole(host, console string) {
	if console == "" {
		return
	}
	rel := st.writeResultFile(strings.ReplaceAll(host, "/", "_")+".console", console+"\n")
	if rel == "" {
		return
	}
	st.mu.Lock()
	st.consoles = append(st.consoles, results.Console{Host: host, File: rel})
	st.mu.Unlock()
}
