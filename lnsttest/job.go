package lnsttest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// RunOpt is an option of Host.Run and Host.Start.
type RunOpt func(*runOpts)

type runOpts struct {
	timeout    time.Duration
	expectFail bool
	codes      []int
	dir        string
	env        []string
	desc       string
	quiet      bool
	undo       string
	undoArgv   []string
}

// Timeout kills the job (its whole process group) when it runs longer than
// d; the job is then reported with TimedOut and fails the test.
func Timeout(d time.Duration) RunOpt { return func(o *runOpts) { o.timeout = d } }

// ExpectFail makes a non-zero exit code the expected outcome: the test
// fails if the job exits 0.
func ExpectFail() RunOpt { return func(o *runOpts) { o.expectFail = true } }

// ExitCodes sets the exit codes that count as success (default: 0).
func ExitCodes(codes ...int) RunOpt { return func(o *runOpts) { o.codes = codes } }

// Dir runs the job in directory dir of the host.
func Dir(dir string) RunOpt { return func(o *runOpts) { o.dir = dir } }

// Env adds KEY=VALUE variables to the job's environment.
func Env(kv ...string) RunOpt { return func(o *runOpts) { o.env = append(o.env, kv...) } }

// Desc describes the job in logs and the RESULTS SUMMARY instead of its
// command.
func Desc(desc string) RunOpt { return func(o *runOpts) { o.desc = desc } }

// Quiet keeps the job out of the RESULTS SUMMARY unless it fails: for
// helper jobs such as readiness polls.
func Quiet() RunOpt { return func(o *runOpts) { o.quiet = true } }

// Undo gives the job's undo as a command, run under /bin/sh -c on the
// same host (the same namespace) as Run runs cmd: for a change the agent
// does not know, made by a raw command ("ovs-vsctl add-br br9" undone by
// "ovs-vsctl del-br br9"). The agent journals it in the test's group
// before the job starts (the job may half-make its change), so it runs at
// the test's cleanup in reverse order with the test's other undos, also
// when the job failed; when the lease of a controller that died expires;
// and, on a pool machine, when an agent that crashed starts again
// (journal replay). A job that could not start at all drops it. The undo
// command runs for at most a minute; an undo that fails (non-zero exit,
// timeout) fails the test at cleanup with its host, command, exit code
// and the tail of its output.
func Undo(cmd string) RunOpt { return func(o *runOpts) { o.undo, o.undoArgv = cmd, nil } }

// UndoArgv is Undo with the command given as argv, run with no shell:
// for an undo built from values a shell must not read (names, addresses,
// flow matches). Given with Undo, the last one given counts.
func UndoArgv(argv ...string) RunOpt {
	return func(o *runOpts) { o.undo, o.undoArgv = "", append([]string(nil), argv...) }
}

// Result is how a job ended.
type Result struct {
	// Command is the job's command line.
	Command        string
	ExitCode       int // -1 when a signal ended the job
	Stdout, Stderr string
	Start          time.Time
	Duration       time.Duration
	// Killed is set when the job was ended by Kill or at cleanup.
	Killed bool
	// TimedOut is set when the job ran past its Timeout and was killed.
	TimedOut bool
	// Signal is the signal that ended the job, 0 if it exited.
	Signal syscall.Signal
	// Truncated is set when Stdout or Stderr is not all the job wrote:
	// the agent keeps the last bytes of each stream up to its per-job
	// output cap (agent.DefaultOutputCap, 256 MiB, unless the agent is
	// set otherwise), and only the last 1 MiB of a stream written while
	// its agent-wide output budget (agent.DefaultOutputBudget) is spent.
	// Stdout and Stderr then hold the tail of the output.
	Truncated bool
}

// Job is a command running, or run, on a host.
type Job struct {
	host *Host
	id   int64
	argv []string
	cmd  string
	opts runOpts
	seq  uint64
	done chan struct{}

	mu      sync.Mutex
	res     Result
	sizes   [2]int64 // bytes the job wrote to stdout, stderr
	err     error    // the agent could not be asked
	sum     string
	judged  string // the verdict SetVerdict gave
	cleanup bool   // killed because it still ran at cleanup
	// unstarted is set when the agent could not start the job at all.
	unstarted bool
}

// ID is the job's number, unique on its host.
func (j *Job) ID() int { return int(j.id) }

// Done is closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.done }

// Result is how the job ended; valid once Done is closed.
func (j *Job) Result() Result {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.res
}

// SetSummary sets the one-line result shown for the job in the RESULTS
// SUMMARY; modules use it for their formatted results.
func (j *Job) SetSummary(s string) {
	j.mu.Lock()
	j.sum = s
	j.mu.Unlock()
}

// SetVerdict sets the job's verdict and result in the RESULTS SUMMARY to
// the module's own judgement of what it measured ("LOSS" for a ping that
// lost packets), instead of PASS for a job that exited as allowed. A job
// that failed (exit code, timeout, signal) still shows FAIL.
func (j *Job) SetVerdict(verdict, summary string) {
	j.mu.Lock()
	j.judged, j.sum = verdict, summary
	j.mu.Unlock()
}

// what is how the job is named in messages: its description or command.
func (j *Job) what() string {
	if j.opts.desc != "" {
		return j.opts.desc
	}
	return j.cmd
}

func (j *Job) set(r *pb.JobResult, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.err = err
	if r == nil {
		return
	}
	j.res = Result{
		Command:   j.cmd,
		ExitCode:  int(r.ExitCode),
		Stdout:    string(r.Stdout),
		Stderr:    string(r.Stderr),
		Start:     r.Start.AsTime(),
		Duration:  r.Duration.AsDuration(),
		Killed:    r.Killed,
		TimedOut:  r.TimedOut,
		Signal:    syscall.Signal(r.Signal),
		Truncated: r.StdoutTruncated || r.StderrTruncated,
	}
	j.sizes = [2]int64{r.StdoutSize, r.StderrSize}
	j.unstarted = r.Error != ""
}

// truncation says what of the job's output was left out, "" if nothing.
func (j *Job) truncation() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.res.Truncated {
		return ""
	}
	var parts []string
	for i, s := range []string{j.res.Stdout, j.res.Stderr} {
		if w := j.sizes[i]; w > int64(len(s)) {
			parts = append(parts, fmt.Sprintf("%s: last %d of %d bytes", [2]string{"stdout", "stderr"}[i], len(s), w))
		}
	}
	if len(parts) == 0 {
		return "output truncated"
	}
	return "output truncated (" + strings.Join(parts, ", ") + ")"
}

// problem says what is wrong with how the job ended, "" if nothing.
func (j *Job) problem() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	r := j.res
	switch {
	case j.err != nil:
		return j.err.Error()
	case r.TimedOut:
		return fmt.Sprintf("timed out after %v and was killed", j.opts.timeout)
	case r.Killed:
		return ""
	case r.Signal != 0:
		return fmt.Sprintf("ended by signal %v", r.Signal)
	case j.opts.expectFail:
		if r.ExitCode == 0 {
			return "exit code 0, want a failure (ExpectFail)"
		}
		return ""
	}
	codes := j.opts.codes
	if len(codes) == 0 {
		codes = []int{0}
	}
	if !slices.Contains(codes, r.ExitCode) {
		return fmt.Sprintf("exit code %d, want %s", r.ExitCode, strings.Trim(fmt.Sprint(codes), "[]"))
	}
	return ""
}

// failure is the message a failed job fails its test with.
func (j *Job) failure(problem string) string {
	r := j.Result()
	msg := fmt.Sprintf("%s: job %d (%s): %s", j.host.name, j.id, j.cmd, problem)
	if j.opts.desc != "" {
		msg = fmt.Sprintf("%s: job %d %q (%s): %s", j.host.name, j.id, j.opts.desc, j.cmd, problem)
	}
	if s := j.truncation(); s != "" {
		msg += "\n" + s
	}
	if s := tail(r.Stdout); s != "" {
		msg += "\nstdout:\n" + s
	}
	if s := tail(r.Stderr); s != "" {
		msg += "\nstderr:\n" + s
	}
	return msg
}

// tail keeps the end of a long output.
func tail(s string) string {
	const max = 4096
	s = strings.TrimRight(s, "\n")
	if len(s) > max {
		return "[...]" + s[len(s)-max:]
	}
	return s
}

// verdict is the job's PASS/FAIL/RUNNING and its formatted result.
func (j *Job) verdict() (string, string) {
	select {
	case <-j.done:
	default:
		return "RUNNING", ""
	}
	p := j.problem()
	trunc := j.truncation()
	j.mu.Lock()
	defer j.mu.Unlock()
	result := j.sum
	if result == "" {
		switch {
		case j.cleanup:
			result = fmt.Sprintf("killed at cleanup after %v", j.res.Duration.Round(time.Millisecond))
		case j.res.Killed:
			result = fmt.Sprintf("killed after %v", j.res.Duration.Round(time.Millisecond))
		default:
			result = fmt.Sprintf("exit %d in %v", j.res.ExitCode, j.res.Duration.Round(time.Millisecond))
		}
	}
	if trunc != "" {
		result += "; " + trunc
		if p != "" {
			p += "; " + trunc
		}
	}
	if p != "" {
		return "FAIL", p
	}
	if j.judged != "" {
		return j.judged, result
	}
	return "PASS", result
}
