package lnsttest

import (
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Host is a host a recipe got from Require, driven through its agent.
type Host struct {
	s      *session
	client pb.AgentClient
	name   string            // as the recipe calls it
	id     string            // as its agent calls it
	ifaces map[string]string // required interface name -> real name
	vm     *vmHost           // set on a VM lab host
	devs   devRegistry       // its devices' identities
	outer  *Host             // the host a Netns handle is a namespace of
	// emulated is set on a pool machine whose pool entry has param
	// emulated: "true" (a libvirt provisioner's TCG guests).
	emulated bool
}

// Name is the host's name in the recipe ("h1").
func (h *Host) Name() string { return h.name }

// Lab is the kind of lab the host is in: "netns" (a network namespace of
// the local lab), "rootless" (the same, in a user namespace), "vm" (a VM
// of the local lab) or "pool" (a machine of -lnst.pool). Figures measured
// on one kind are not comparable with another's.
func (h *Host) Lab() string {
	switch {
	case h.outer != nil:
		return h.outer.Lab()
	case h.vm != nil:
		return "vm"
	case h.s != nil && h.s.pool != nil:
		return "pool"
	case rootless():
		return "rootless"
	}
	return "netns"
}

// Emulated reports whether the host's CPU is emulated (QEMU's TCG): a VM
// lab guest, or a pool machine whose pool entry has param
// emulated: "true", as a libvirt provisioner with accel: tcg gives its
// guests. Starting a process there takes a second or more, which what
// schedules jobs ahead of time (perf's flows) allows for.
func (h *Host) Emulated() bool {
	if h.outer != nil {
		return h.outer.Emulated()
	}
	return h.vm != nil || h.emulated
}

// Iface returns the host's device the recipe called name in its IfaceReq.
// Any other name is taken as the name of a device on the host ("lo").
// Handles of one device share it: a Rename or SetNetns through one is
// seen through every other, and Iface of a renamed required interface is
// the renamed device.
func (h *Host) Iface(name string) *Device {
	if real, ok := h.realIface(name); ok {
		return h.device(real)
	}
	return h.device(name)
}

// Run runs cmd under /bin/sh -c on the host and waits for it. The test
// fails (and stops) when the job's exit code is not 0, or not 0 under
// ExpectFail, or when it outlives its Timeout.
func (h *Host) Run(t testing.TB, cmd string, opts ...RunOpt) *Job {
	t.Helper()
	return h.run(t, []string{"/bin/sh", "-c", cmd}, cmd, opts)
}

// Output runs cmd as Run does and returns its standard output, as
// exec.Cmd.Output does: the job must succeed (exit code 0, or one of
// ExitCodes), else the test fails and stops.
func (h *Host) Output(t testing.TB, cmd string, opts ...RunOpt) string {
	t.Helper()
	return h.Run(t, cmd, opts...).Result().Stdout
}

// OutputArgv runs argv on the host, with no shell, and returns its
// standard output; it fails the test as Output does.
func (h *Host) OutputArgv(t testing.TB, argv []string, opts ...RunOpt) string {
	t.Helper()
	return h.RunArgv(t, argv, opts...).Result().Stdout
}

// RunArgv runs argv on the host, with no shell, and waits for it; it
// fails the test as Run does.
func (h *Host) RunArgv(t testing.TB, argv []string, opts ...RunOpt) *Job {
	t.Helper()
	return h.run(t, argv, strings.Join(argv, " "), opts)
}

// Start starts cmd under /bin/sh -c on the host in the background. A job
// still running when the test ends is killed, reaped and reported.
func (h *Host) Start(t testing.TB, cmd string, opts ...RunOpt) *Job {
	t.Helper()
	return h.start(t, []string{"/bin/sh", "-c", cmd}, cmd, opts)
}

// StartArgv starts argv on the host, with no shell, in the background.
func (h *Host) StartArgv(t testing.TB, argv []string, opts ...RunOpt) *Job {
	t.Helper()
	return h.start(t, argv, strings.Join(argv, " "), opts)
}

func (h *Host) newJob(t testing.TB, argv []string, display string, opts []RunOpt) (*Job, *pb.StartJobRequest) {
	t.Helper()
	j := &Job{host: h, argv: argv, cmd: display, done: make(chan struct{})}
	for _, o := range opts {
		o(&j.opts)
	}
	return j, j.opts.request(h.id, h.s.state(t).group, argv)
}

// request is the agent's request for a job of argv with these options, on
// the agent's host id in group.
func (o *runOpts) request(host, group string, argv []string) *pb.StartJobRequest {
	req := &pb.StartJobRequest{Host: host, Group: group, Argv: argv, Dir: o.dir, Env: o.env, Desc: o.desc}
	if o.timeout > 0 {
		req.Timeout = durationpb.New(o.timeout)
	}
	if o.undo != "" {
		// As Run runs its command.
		req.UndoArgv = []string{"/bin/sh", "-c", o.undo}
	}
	if len(o.undoArgv) > 0 {
		req.UndoArgv = o.undoArgv
	}
	return req
}

func (h *Host) run(t testing.TB, argv []string, display string, opts []RunOpt) *Job {
	t.Helper()
	j, req := h.newJob(t, argv, display, opts)
	st := h.s.state(t)
	if !j.opts.quiet {
		st.logger().Info("run", "host", h.name, "cmd", j.what())
	}
	ctx := rpcCtx(t)
	st.jobStarted(j, 0)
	// Called in this goroutine, while the job runs: a call cut short
	// (the test binary's deadline) still names the job by its id.
	r, err := pb.RunJobWholeStarted(ctx, h.client, req, func(s *pb.JobStarted) {
		j.id = s.Id
		st.jobNamed(j, s.Id)
	})
	if r != nil {
		j.id = r.Id
	}
	j.set(r, callErr(ctx, err))
	close(j.done)
	if r != nil {
		h.undoCommand(t, j, r.UndoSeq)
	}
	st.jobEnded(j)
	p := j.problem()
	if p != "" || !j.opts.quiet {
		st.addJob(j)
	}
	if p != "" {
		t.Fatal(j.failure(p))
	}
	return j
}

func (h *Host) start(t testing.TB, argv []string, display string, opts []RunOpt) *Job {
	t.Helper()
	j, req := h.newJob(t, argv, display, opts)
	st := h.s.state(t)
	ctx := rpcCtx(t)
	r, err := h.client.StartJob(ctx, req)
	if err != nil {
		t.Fatalf("%s: start %q: %v", h.name, display, callErr(ctx, err))
	}
	j.id, j.seq = r.Id, r.Seq
	h.undoCommand(t, j, r.UndoSeq)
	st.addJob(j)
	st.jobStarted(j, j.id)
	st.logger().Info("started", "host", h.name, "job", j.id, "cmd", j.what())
	wctx := waitCtx(t)
	go func() {
		r, err := pb.WaitJobWhole(wctx, h.client, &pb.JobRef{Host: h.id, Id: j.id})
		j.set(r, callErr(wctx, err))
		close(j.done)
		st.jobEnded(j)
	}()
	st.use(h.client)
	t.Cleanup(func() {
		t.Helper()
		select {
		case <-j.done:
			return
		default:
		}
		st.logger().Info("job still running at the end of the test: killing it", "host", h.name, "job", j.id, "cmd", j.what())
		j.mu.Lock()
		j.cleanup = true
		j.mu.Unlock()
		st.restoreOn(t, h.client, j.seq, "job")
		<-j.done
	})
	return j
}

// Wait waits for the job to end and returns its result. It fails the test
// if the job failed (exit code, timeout) unless the job was killed.
func (j *Job) Wait(t testing.TB) Result {
	t.Helper()
	j.waitProgress(t)
	if p := j.problem(); p != "" {
		t.Fatal(j.failure(p))
	}
	return j.Result()
}

// progressEvery is how often a long wait says, in -v output, that it is
// still waiting.
const progressEvery = 5 * time.Second

// waitProgress waits for the job to end, logging every progressEvery
// how long it has run so far.
func (j *Job) waitProgress(t testing.TB) {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-j.done:
			return
		case <-tick.C:
			t.Logf("%s: waiting for job %d (%s): %v so far", j.host.name, j.id, j.what(), time.Since(start).Round(time.Second))
		}
	}
}

// Kill sends sig to the job's whole process group.
func (j *Job) Kill(t testing.TB, sig syscall.Signal) {
	t.Helper()
	select {
	case <-j.done:
		return // nothing left to signal
	default:
	}
	_, err := j.host.client.KillJob(rpcCtx(t), &pb.KillJobRequest{Host: j.host.id, Id: j.id, Signal: int32(sig)})
	if err != nil {
		t.Fatalf("%s: kill job %d (%s) with %v: %v", j.host.name, j.id, j.cmd, sig, err)
	}
}

// Sysctl sets a sysctl ("net.ipv4.ip_forward") on the host and restores
// its old value when the test ends.
func (h *Host) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	h.writeValue(t, "sysctl", key, value)
}

// WriteSysfs writes a sysfs attribute (a path under /sys) on the host and
// restores its old value when the test ends.
func (h *Host) WriteSysfs(t testing.TB, path, value string) {
	t.Helper()
	h.writeValue(t, "sysfs", path, value)
}

// ReadSysctl reads a sysctl on the host.
func (h *Host) ReadSysctl(t testing.TB, key string) string {
	t.Helper()
	return h.readValue(t, "sysctl", key)
}

// ReadSysfs reads a sysfs attribute on the host.
func (h *Host) ReadSysfs(t testing.TB, path string) string {
	t.Helper()
	return h.readValue(t, "sysfs", path)
}

func (h *Host) readValue(t testing.TB, kind, key string) string {
	t.Helper()
	r, err := h.client.ReadValue(rpcCtx(t), &pb.ValueRef{Host: h.id, Kind: kind, Key: key})
	if err != nil {
		t.Fatalf("%s: read %s %s: %v", h.name, kind, key, err)
	}
	return r.Value
}

func (h *Host) writeValue(t testing.TB, kind, key, value string) {
	t.Helper()
	st := h.s.state(t)
	r, err := h.client.WriteValue(rpcCtx(t), &pb.WriteValueRequest{Host: h.id, Group: st.group, Kind: kind, Key: key, Value: value})
	if status.Code(err) == codes.PermissionDenied && rootless() {
		t.Skipf("%s: %s %s cannot be set in the rootless lab (it is not owned by the lab's user namespace; run as root): %v", h.name, kind, key, err)
	}
	if err != nil {
		t.Fatalf("%s: set %s %s = %q: %v", h.name, kind, key, value, err)
	}
	st.logger().Debug("set", "host", h.name, kind, key, "value", value, "old", r.Old)
	st.undoAt(t, h.client, kind+" "+key+" on "+h.name, r.Seq)
}
