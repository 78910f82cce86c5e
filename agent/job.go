package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/launch"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// strayGrace is how long the agent waits for a job's output pipes to close
// after it killed what was left of the job's process group.
const strayGrace = 2 * time.Second

// job is one command run by the agent in its own process group.
type job struct {
	id    int64
	host  *host
	argv  []string
	desc  string
	group string
	start time.Time
	pgid  int

	out output

	mu       sync.Mutex
	killed   bool
	timedOut bool
	done     chan struct{}
	result   *pb.JobResult
	// undoSeq is the journal entry of the job's undo command, 0 if none
	// (undocmd.go).
	undoSeq uint64
}

// started reports whether the job's process was started: a job that
// could not start (fail) has no process group.
func (j *job) started() bool { return j.pgid != 0 }

// startJob starts req's command on host h.
func (h *host) startJob(req *pb.StartJobRequest) (*job, error) {
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		return nil, errors.New("argv is empty")
	}
	for _, e := range req.Env {
		if !strings.Contains(e, "=") {
			return nil, fmt.Errorf("env entry %q is not KEY=VALUE", e)
		}
	}
	h.mu.Lock()
	var id int64
	if req.Internal {
		h.nextInternalID--
		id = h.nextInternalID
	} else {
		h.nextID++
		id = h.nextID
	}
	j := &job{id: id, host: h, argv: req.Argv, desc: req.Desc, group: req.Group, done: make(chan struct{})}
	j.out.limit, j.out.budget = h.outputCap, h.budget
	h.mu.Unlock()
	// The job is findable only once started, so that a kill cannot come
	// before its process group exists.
	defer func() {
		h.mu.Lock()
		h.jobs[j.id] = j
		h.mu.Unlock()
	}()

	if req.Dir != "" {
		if err := h.do(func() error { _, err := os.Stat(req.Dir); return err }); err != nil {
			j.fail(126, fmt.Sprintf("directory %q: %v", req.Dir, err))
			return j, nil
		}
	}
	path, err := exec.LookPath(req.Argv[0])
	if err != nil {
		// As a shell does: 127 for a command that is not there.
		j.fail(127, fmt.Sprintf("start %q: %v", req.Argv[0], err))
		return j, nil
	}
	if err := j.run(path, req); err != nil {
		j.fail(126, err.Error())
	}
	return j, nil
}

func (j *job) run(path string, req *pb.StartJobRequest) error {
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		return err
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   req.Argv,
		Dir:    req.Dir,
		Env:    append(append(jobEnv(), req.Env...), jobOwnerEnv+"="+j.host.owner),
		Stdout: stdoutW,
		Stderr: stderrW,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	// Fork on the host's thread so that the job starts in its namespaces.
	err = j.host.do(func() error {
		j.start = time.Now()
		return cmd.Start()
	})
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		return fmt.Errorf("start %q: %w", req.Argv[0], err)
	}
	j.pgid = cmd.Process.Pid
	var timer *time.Timer
	if d := req.Timeout.AsDuration(); req.Timeout != nil && d > 0 {
		timer = time.AfterFunc(d, func() {
			j.mu.Lock()
			j.timedOut = true
			j.mu.Unlock()
			syscall.Kill(-j.pgid, syscall.SIGKILL)
		})
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go j.copy(&readers, pb.JobOutput_STDOUT, stdoutR)
	go j.copy(&readers, pb.JobOutput_STDERR, stderrR)
	go func() {
		err := cmd.Wait()
		if timer != nil {
			timer.Stop()
		}
		// Nothing of a job outlives it: kill what is left of its group.
		syscall.Kill(-j.pgid, syscall.SIGKILL)
		waitTimeout(&readers, strayGrace, stdoutR, stderrR)
		j.out.close()
		code, sig := exitStatus(cmd.ProcessState, err)
		j.finish(code, sig, "")
	}()
	return nil
}

func (j *job) copy(wg *sync.WaitGroup, stream pb.JobOutput_Stream, r io.ReadCloser) {
	defer wg.Done()
	buf := make([]byte, outputRead)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			j.out.write(stream, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// waitTimeout waits for wg, and closes files to unblock it after d (a
// process that left the job's group may still hold its pipes).
func waitTimeout(wg *sync.WaitGroup, d time.Duration, files ...*os.File) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		for _, f := range files {
			f.Close()
		}
		<-done
	}
	for _, f := range files {
		f.Close()
	}
}

func exitStatus(ps *os.ProcessState, err error) (code, sig int) {
	if ps == nil {
		return -1, 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, int(ws.Signal())
	}
	return ps.ExitCode(), 0
}

// fail ends a job that could not start, with code as a shell would give.
func (j *job) fail(code int, msg string) {
	j.start = time.Now()
	j.out.write(pb.JobOutput_STDERR, []byte(msg+"\n"))
	j.out.close()
	j.finish(code, 0, msg)
}

func (j *job) finish(code, sig int, errMsg string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.result = &pb.JobResult{
		Id:       j.id,
		ExitCode: int32(code),
		Signal:   int32(sig),
		Start:    timestamppb.New(j.start),
		Duration: durationpb.New(time.Since(j.start)),
		Killed:   j.killed,
		TimedOut: j.timedOut,
		Error:    errMsg,
	}
	close(j.done)
}

// wait blocks until the job ends or ctx is done, and returns its result
// without output.
func (j *job) wait(ctx context.Context) (*pb.JobResult, error) {
	select {
	case <-j.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	j.mu.Lock()
	r := proto.Clone(j.result).(*pb.JobResult)
	r.UndoSeq = j.undoSeq
	j.mu.Unlock()
	r.StdoutSize, r.StdoutTruncated = j.out.size(pb.JobOutput_STDOUT)
	r.StderrSize, r.StderrTruncated = j.out.size(pb.JobOutput_STDERR)
	return r, nil
}

// waitWhole is wait with the output in the result, at most the last
// resultOutputMax bytes of each stream.
func (j *job) waitWhole(ctx context.Context) (*pb.JobResult, error) {
	r, err := j.wait(ctx)
	if err != nil {
		return nil, err
	}
	var cut bool
	r.Stdout, cut = j.out.tail(pb.JobOutput_STDOUT, resultOutputMax)
	r.StdoutTruncated = r.StdoutTruncated || cut
	r.Stderr, cut = j.out.tail(pb.JobOutput_STDERR, resultOutputMax)
	r.StderrTruncated = r.StderrTruncated || cut
	return r, nil
}

// kill sends sig to the job's process group. A job that has ended is left
// alone.
func (j *job) kill(sig syscall.Signal) error {
	select {
	case <-j.done:
		return nil
	default:
	}
	j.mu.Lock()
	j.killed = true
	j.mu.Unlock()
	if j.pgid <= 0 {
		return nil
	}
	if err := syscall.Kill(-j.pgid, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill job %d: %w", j.id, err)
	}
	return nil
}

// stop kills the job if it still runs and waits until it is reaped.
func (j *job) stop() {
	if j.kill(syscall.SIGKILL) == nil {
		<-j.done
	}
}

// jobEnv is the environment jobs start with: the agent's, without the
// variables that made this process an agent.
func jobEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, launch.EnvPrefix) {
			env = append(env, e)
		}
	}
	return env
}

func (h *host) job(id int64) (*job, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	j, ok := h.jobs[id]
	if !ok {
		return nil, fmt.Errorf("%s has no job %d", h.label(), id)
	}
	return j, nil
}

// forget drops a job the agent no longer needs to answer for, and gives
// back its output's share of the agent's output budget.
func (h *host) forget(id int64) {
	h.mu.Lock()
	j := h.jobs[id]
	delete(h.jobs, id)
	h.mu.Unlock()
	if j != nil && j.out.release() >= freeAfter {
		debug.FreeOSMemory()
	}
}

// stopJobs kills, reaps and forgets every job of the host.
func (h *host) stopJobs() {
	h.mu.Lock()
	var jobs []*job
	for _, j := range h.jobs {
		jobs = append(jobs, j)
	}
	h.mu.Unlock()
	for _, j := range jobs {
		j.stop()
		h.forget(j.id)
	}
}
