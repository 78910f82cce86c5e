package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"github.com/lnst-go/lnst/results"
)

// testState is what lnsttest keeps per test: its journal group on the
// agents, its logger and the jobs for its RESULTS SUMMARY.
type testState struct {
	t     testing.TB
	group string
	start time.Time
	match string // what Require gave, for results.json
	// poolHosts are the pool hosts Require gave, for Destructive.
	poolHosts []*pool.Host

	mu      sync.Mutex
	clients map[pb.AgentClient]bool
	jobs    []*Job
	records []record
	// consoles are the consoles of failed VM hosts kept in -lnst.results.
	consoles []results.Console
	// captures are the -lnst.capture files kept (capturerun.go).
	captures []results.Capture
	// profiles are the -lnst.profile recordings (profile.go).
	profiles []results.Profile
	// live are the test's jobs that have not ended (live.go).
	live map[*Job]liveJob
	log  hclog.Logger
	// logMu holds logged while one line is formatted and written.
	logMu  sync.Mutex
	logged strings.Builder
}

// record is a named value a recipe or module recorded with Record.
type record struct {
	name  string
	value any
}

// logger returns the test's logger, which writes with t.Log.
func (st *testState) logger() testLogger {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.log == nil {
		st.log = hclog.New(&hclog.LoggerOptions{
			Name:        "lnst",
			Level:       hclog.LevelFromString(cfg.logLevel),
			Output:      &st.logged,
			DisableTime: true,
		})
	}
	return testLogger{st}
}

// testLogger logs with hclog's format and levels, and writes each line
// with t.Log from its own helper-marked methods: so that the file:line
// go test shows for it is the recipe's (the frames of hclog, which formats
// the line, are not on the stack of t.Log, where t.Helper cannot mark
// them).
type testLogger struct{ st *testState }

// Trace, Debug, Info, Warn and Error log msg and its key-value pairs at
// their level.
func (l testLogger) Trace(msg string, args ...any) { l.st.t.Helper(); l.log(hclog.Trace, msg, args) }

// Debug logs at level debug; see Trace.
func (l testLogger) Debug(msg string, args ...any) { l.st.t.Helper(); l.log(hclog.Debug, msg, args) }

// Info logs at level info; see Trace.
func (l testLogger) Info(msg string, args ...any) { l.st.t.Helper(); l.log(hclog.Info, msg, args) }

// Warn logs at level warn; see Trace.
func (l testLogger) Warn(msg string, args ...any) { l.st.t.Helper(); l.log(hclog.Warn, msg, args) }

// Error logs at level error; see Trace.
func (l testLogger) Error(msg string, args ...any) { l.st.t.Helper(); l.log(hclog.Error, msg, args) }

func (l testLogger) log(level hclog.Level, msg string, args []any) {
	l.st.t.Helper()
	st := l.st
	st.logMu.Lock()
	st.log.Log(level, msg, args...)
	line := strings.TrimRight(st.logged.String(), "\n")
	st.logged.Reset()
	st.logMu.Unlock()
	if line != "" {
		st.t.Log(line)
	}
}

// use records that the test changes state through client.
func (st *testState) use(c pb.AgentClient) {
	st.mu.Lock()
	st.clients[c] = true
	st.mu.Unlock()
}

// undoAt registers, with t.Cleanup, the undo of the change journaled at seq
// (and of anything the test journaled after it that is still there).
func (st *testState) undoAt(t testing.TB, c pb.AgentClient, what string, seq uint64) {
	st.use(c)
	t.Cleanup(func() {
		t.Helper()
		st.restoreOn(t, c, seq, what)
	})
}

func (st *testState) restoreOn(t testing.TB, c pb.AgentClient, since uint64, what string) {
	for _, err := range st.restoreErrs(rpcCtx(t), c, since) {
		t.Errorf("restore %s: %v", what, err)
	}
}

// restoreErrs asks c to undo the test's changes from since on and returns
// every failure.
func (st *testState) restoreErrs(ctx context.Context, c pb.AgentClient, since uint64) []error {
	r, err := c.Restore(ctx, &pb.RestoreRequest{Group: st.group, Since: since})
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, e := range r.Errors {
		errs = append(errs, errors.New(e))
	}
	return errs
}

// usedClients are the agents the test changed state through.
func (st *testState) usedClients() []pb.AgentClient {
	st.mu.Lock()
	defer st.mu.Unlock()
	var cs []pb.AgentClient
	for c := range st.clients {
		cs = append(cs, c)
	}
	return cs
}

// restore undoes everything the test changed on every agent it used.
func (st *testState) restore() {
	st.t.Helper()
	for _, c := range st.usedClients() {
		st.restoreOn(st.t, c, 0, "test "+st.t.Name())
	}
}

// restoreQuiet undoes everything the test changed, without touching the
// test itself (which may be running on another goroutine): for an
// interrupted run. It asks every agent at once, and gives up on those
// that have not answered when ctx ends. It returns the failures.
func (st *testState) restoreQuiet(ctx context.Context) []error {
	clients := st.usedClients()
	errs := make([][]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for _, err := range st.restoreErrs(ctx, c, 0) {
				errs[i] = append(errs[i], fmt.Errorf("restore %s: %w", st.group, err))
			}
		})
	}
	wg.Wait()
	return slices.Concat(errs...)
}

func (st *testState) addJob(j *Job) {
	st.mu.Lock()
	st.jobs = append(st.jobs, j)
	st.mu.Unlock()
}

func (st *testState) addRecord(name string, value any) {
	st.mu.Lock()
	st.records = append(st.records, record{name, value})
	st.mu.Unlock()
	if s := current(); s != nil && s.live != nil {
		rec := results.NewRecord(name, value)
		st.event(results.Event{Type: results.EventRecord, Record: &rec})
	}
}

// printSummary logs the RESULTS SUMMARY of the test's jobs and records.
func (st *testState) printSummary() {
	st.t.Helper()
	st.mu.Lock()
	jobs, records := st.jobs, st.records
	st.mu.Unlock()
	counters := st.summaryCounters() // sysinfo.go
	if !cfg.summary || len(jobs)+len(records) == 0 && counters == "" {
		return
	}
	st.t.Log(summary(st.t.Name(), jobs, records) + counters)
}

func summary(name string, jobs []*Job, records []record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nRESULTS SUMMARY: %s\n", name)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	if len(jobs) > 0 {
		fmt.Fprintln(tw, "  HOST\tJOB\tVERDICT\tWHAT\tRESULT")
		for _, j := range jobs {
			verdict, result := j.verdict()
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", j.host.name, j.id, verdict, j.what(), result)
		}
	}
	if len(records) > 0 {
		fmt.Fprintln(tw, "  RECORD\tVALUE")
		for _, r := range records {
			fmt.Fprintf(tw, "  %s\t%v\n", r.name, r.value)
		}
	}
	tw.Flush()
	return b.String()
}

// Record adds a named value to the test's results: it is printed in the
// RESULTS SUMMARY (with %v; a value with a String method formats itself)
// and written to results.json (as JSON). Modules record their
// measurements with it.
func Record(t testing.TB, name string, value any) {
	t.Helper()
	s := current()
	if s == nil {
		t.Fatal("lnsttest.Record: the test binary was not started by lnsttest.Main")
	}
	s.state(t).addRecord(name, value)
}
