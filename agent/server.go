package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Version is the agent's version, reported by Hello.
const Version = "0.1.0"

// Options configure a Server.
type Options struct {
	// Lab lets the server create namespace hosts and lab networks.
	Lab bool
	// Logger receives the agent's log; nil discards it.
	Logger hclog.Logger
	// JournalPath is the file the undo journal is kept in, so that an agent
	// started after a crash takes back what the crashed one left (see
	// NewServer); "" keeps the journal in memory only.
	JournalPath string
	// JournalSkipCorrupt makes NewServer skip corrupt records in the middle
	// of the journal file (their changes stay) rather than fail.
	JournalSkipCorrupt bool
	// LeaseTTL is how long a controller's session lives without a
	// heartbeat (0: DefaultLeaseTTL).
	LeaseTTL time.Duration
	// OutputCap is how many bytes of each of a job's stdout and stderr the
	// agent keeps (0: DefaultOutputCap). Of a job that writes more, the
	// agent keeps the last OutputCap bytes and marks the stream truncated.
	OutputCap int64
	// OutputBudget bounds the output kept of all the jobs the agent still
	// answers for, together (0: DefaultOutputBudget). While more is kept,
	// a job that writes keeps only the last 1 MiB (or OutputCap, if
	// smaller) of that stream and drops its older bytes, marking the
	// stream truncated; the output of other jobs stays as it is. A job's
	// output is given back when its result is collected (RunJob, and
	// WaitJob of a job without a group) or its group restored.
	OutputBudget int64
}

// Server implements the Agent gRPC service.
type Server struct {
	pb.UnimplementedAgentServer

	log     hclog.Logger
	lab     bool
	journal journal

	mu       sync.Mutex
	hosts    map[string]*host
	networks map[string]*host // lab network -> the namespace of its bridge
	ports    int
	closed   bool

	leases leases
	// owner marks the processes of this agent's jobs (see jobOwnerEnv).
	owner string
	// outputCap and budget bound the job output kept (output.go).
	outputCap int64
	budget    *outputBudget
	// inflight is held (read) by each state-changing call, and taken by
	// Shutdown to wait for them (see guard.go).
	inflight     sync.RWMutex
	shuttingDown bool
	stopLeases   sync.Once

	// files holds PutFile's backups and Reboot's command (files.go).
	files fileState
	// captures are the running packet captures (capture.go).
	captures captureSet
	// nic is where interrupts and CPUs are found (nic_irq.go).
	nic nicPaths

	probeOnce sync.Once
	probe     struct {
		kinds, qdiscs, tc map[string]bool
		err               error
	}
}

// NewServer makes a server for this machine. With opts.JournalPath it
// first takes back, newest first, the changes on this machine's own host
// that a previous agent with that journal left (it crashed); it fails if
// another agent holds the journal, or if the journal is corrupt in the
// middle and opts.JournalSkipCorrupt is not set.
func NewServer(opts Options) (*Server, error) {
	root, err := newRootHost()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ttl := opts.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	s := &Server{log: log, lab: opts.Lab, hosts: map[string]*host{"": root}, networks: map[string]*host{}}
	s.owner = jobOwner(opts.JournalPath)
	s.outputCap = opts.OutputCap
	if s.outputCap <= 0 {
		s.outputCap = DefaultOutputCap
	}
	s.budget = &outputBudget{limit: opts.OutputBudget}
	if s.budget.limit <= 0 {
		s.budget.limit = DefaultOutputBudget
	}
	root.owner, root.outputCap, root.budget = s.owner, s.outputCap, s.budget
	if opts.JournalPath != "" {
		if err := s.openJournal(opts); err != nil {
			root.close()
			return nil, err
		}
		killOrphans(root.owner, log)
		n, err := countStarts(startsFile(opts.JournalPath))
		if err != nil {
			log.Warn("job ids may repeat those of an earlier agent on this journal", "error", err)
		}
		root.nextID = int64(n) * jobsPerStart
	}
	s.leases.ttl, s.leases.stop, s.leases.instance = ttl, make(chan struct{}), newInstanceID()
	go s.watchLeases()
	return s, nil
}

// newHost makes a namespace host whose jobs carry this agent's mark.
func (s *Server) newHost(name string, mounts bool) (*host, error) {
	h, err := newNamespaceHost(name, mounts)
	if err == nil {
		h.owner, h.outputCap, h.budget = s.owner, s.outputCap, s.budget
	}
	return h, err
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { pb.RegisterAgentServer(g, s) }

func invalid(err error) error { return status.Error(codes.InvalidArgument, err.Error()) }

// argError is an error in a request's arguments.
type argError struct{ error }

func (e argError) Unwrap() error { return e.error }

// badArg marks err as an error in a request's arguments.
func badArg(err error) error { return argError{err} }

// failed turns err into a gRPC status: InvalidArgument for bad arguments,
// Aborted for an operation that failed.
func failed(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ae argError
	if errors.As(err, &ae) {
		return invalid(err)
	}
	return status.Error(codes.Aborted, err.Error())
}

func (s *Server) host(name string) (*host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, status.Error(codes.Unavailable, "agent is shutting down")
	}
	h, ok := s.hosts[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "agent serves no host %q", name)
	}
	return h, nil
}

// Hello reports the agent's version and machine.
func (s *Server) Hello(context.Context, *pb.HelloRequest) (*pb.HelloReply, error) {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return &pb.HelloReply{
		Version: Version,
		Kernel:  unix.ByteSliceToString(u.Release[:]),
		Arch:    unix.ByteSliceToString(u.Machine[:]),
		Pid:     int32(syscall.Getpid()),
		Lab:     s.lab,
		BootId:  bootID(),
	}, nil
}

// StartJob starts a job. A job in a group is stopped when its group is
// restored; a job without one is forgotten once its result is collected.
func (s *Server) StartJob(_ context.Context, req *pb.StartJobRequest) (*pb.StartJobReply, error) {
	j, err := s.startJob(req, false)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	undoSeq := j.undoSeq
	j.mu.Unlock()
	if req.Group == "" {
		// No Restore can take an entry of no group: it would stay.
		return &pb.StartJobReply{Id: j.id}, nil
	}
	seq, err := s.record(req.Group, undo{Op: opStopJob, Host: req.Host, Job: j.id})
	if err != nil {
		return nil, err
	}
	return &pb.StartJobReply{Id: j.id, Seq: seq, UndoSeq: undoSeq}, nil
}

// startJob starts req's job. A call Shutdown does not guard (RunJob,
// RunJobStream: see callKinds) has unguarded set: a job with an undo
// command is then guarded while its undo is journaled.
func (s *Server) startJob(req *pb.StartJobRequest, unguarded bool) (*job, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	var j *job
	if len(req.UndoArgv) > 0 {
		j, err = s.startJobWithUndo(h, req, unguarded)
	} else if j, err = h.startJob(req); err != nil {
		err = invalid(err)
	}
	if err != nil {
		return nil, err
	}
	s.log.Debug("job started", "host", req.Host, "id", j.id, "argv", req.Argv, "undo", req.UndoArgv)
	return j, nil
}

// RunJob runs a job to its end.
func (s *Server) RunJob(ctx context.Context, req *pb.StartJobRequest) (*pb.JobResult, error) {
	j, err := s.startJob(req, true)
	if err != nil {
		return nil, err
	}
	r, err := j.waitWhole(ctx)
	s.forgetRun(j, err)
	if err != nil {
		return nil, status.FromContextError(err).Err()
	}
	return r, nil
}

// forgetRun forgets a job run by RunJob or RunJobStream: its result is
// returned, or nobody waits any more (err), and then the job is stopped.
func (s *Server) forgetRun(j *job, err error) {
	if err != nil {
		j.stop()
	}
	j.host.forget(j.id)
}

// RunJobStream runs a job to its end and streams its output and result.
func (s *Server) RunJobStream(req *pb.StartJobRequest, stream grpc.ServerStreamingServer[pb.JobEvent]) error {
	j, err := s.startJob(req, true)
	if err != nil {
		return err
	}
	// The job's id goes first, so that the controller can name it while
	// it runs; an empty output chunk carries it, as no output to a client
	// that does not know JobEvent.started.
	if j.started() {
		ev := &pb.JobEvent{Event: &pb.JobEvent_Output{Output: &pb.JobOutput{}}, Started: &pb.JobStarted{Id: j.id, Start: timestamppb.New(j.start)}}
		if err := stream.Send(ev); err != nil {
			s.forgetRun(j, err)
			return err
		}
	}
	// The job is forgotten before its result goes: the controller sees
	// its end once the agent has let go of its output.
	err = s.sendJob(j, stream, func() { j.host.forget(j.id) })
	s.forgetRun(j, err)
	return err
}

func (s *Server) job(ref *pb.JobRef) (*job, error) {
	h, err := s.host(ref.Host)
	if err != nil {
		return nil, err
	}
	j, err := h.job(ref.Id)
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	return j, nil
}

// WaitJob waits for a job's end.
func (s *Server) WaitJob(ctx context.Context, ref *pb.JobRef) (*pb.JobResult, error) {
	j, err := s.job(ref)
	if err != nil {
		return nil, err
	}
	r, err := j.waitWhole(ctx)
	if err != nil {
		return nil, status.FromContextError(err).Err()
	}
	s.collected(j)
	return r, nil
}

// WaitJobStream waits for a job's end and streams its output and result.
func (s *Server) WaitJobStream(ref *pb.JobRef, stream grpc.ServerStreamingServer[pb.JobEvent]) error {
	j, err := s.job(ref)
	if err != nil {
		return err
	}
	return s.sendJob(j, stream, func() { s.collected(j) })
}

// collected forgets a job without a group once its result went out: no
// Restore would ever forget it.
func (s *Server) collected(j *job) {
	if j.group == "" {
		j.host.forget(j.id)
	}
}

// sendJob waits for j's end, then sends the output kept of it, a record a
// message, calls sent, and sends its result last.
func (s *Server) sendJob(j *job, stream grpc.ServerStreamingServer[pb.JobEvent], sent func()) error {
	ctx := stream.Context()
	r, err := j.wait(ctx)
	if err != nil {
		return status.FromContextError(err).Err()
	}
	chunks, _, _ := j.out.from(0)
	for _, c := range chunks {
		o := &pb.JobOutput{Stream: c.stream, Data: c.data}
		if err := stream.Send(&pb.JobEvent{Event: &pb.JobEvent_Output{Output: o}}); err != nil {
			return err
		}
	}
	sent()
	return stream.Send(&pb.JobEvent{Event: &pb.JobEvent_Result{Result: r}})
}

// KillJob signals a job's process group.
func (s *Server) KillJob(_ context.Context, req *pb.KillJobRequest) (*pb.Empty, error) {
	if req.Signal <= 0 || req.Signal >= 65 {
		return nil, invalid(fmt.Errorf("signal %d is not a signal number", req.Signal))
	}
	j, err := s.job(&pb.JobRef{Host: req.Host, Id: req.Id})
	if err != nil {
		return nil, err
	}
	if err := j.kill(syscall.Signal(req.Signal)); err != nil {
		return nil, failed(err)
	}
	return &pb.Empty{}, nil
}

// StreamJob streams a job's output from its start (what the agent still
// keeps of it) until it ends.
func (s *Server) StreamJob(ref *pb.JobRef, stream grpc.ServerStreamingServer[pb.JobOutput]) error {
	j, err := s.job(ref)
	if err != nil {
		return err
	}
	var next uint64
	for {
		chunks, closed, changed := j.out.from(next)
		for _, c := range chunks {
			if err := stream.Send(&pb.JobOutput{Stream: c.stream, Data: c.data}); err != nil {
				return err
			}
			next = c.seq + 1
		}
		if closed && len(chunks) == 0 {
			return nil
		}
		if len(chunks) > 0 {
			continue
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// CreateLink creates a device.
func (s *Server) CreateLink(_ context.Context, req *pb.CreateLinkRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if r, ok, err := s.createLinkAhead(h, req); ok {
		return r, err
	}
	u, err := h.createLink(req)
	u.Host = req.Host
	return s.change(req.Group, u, err)
}

// DeleteLink deletes a device.
func (s *Server) DeleteLink(_ context.Context, req *pb.LinkRef) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	u, err := h.deleteLink(req.Name)
	u.Host = req.Host
	return s.change(req.Group, u, err)
}

// SetLink changes a device's settings.
func (s *Server) SetLink(_ context.Context, req *pb.SetLinkRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	u, err := h.setLink(req)
	u.Host = req.Host
	if err != nil && (u.MTU != nil || u.Master != nil || u.Up != nil || u.HWAddr != nil) {
		// Part of the change was made: its undo is kept.
		return s.partChange(req.Group, u, err)
	}
	return s.change(req.Group, u, err)
}

// AddAddr adds an address.
func (s *Server) AddAddr(_ context.Context, req *pb.AddrRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, _, err := parseCIDR(req.Cidr); err != nil {
		return nil, invalid(err)
	}
	added, err := h.addAddr(req.Name, req.Cidr)
	u := undo{Op: opDelAddr, Host: req.Host, Link: req.Name, CIDR: req.Cidr}
	if err != nil && added {
		// The address is there, but its duplicate address detection
		// failed or did not end: take it back too.
		return s.partChange(req.Group, u, err)
	}
	return s.change(req.Group, u, err)
}

// DelAddr removes an address.
func (s *Server) DelAddr(_ context.Context, req *pb.AddrRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, _, err := parseCIDR(req.Cidr); err != nil {
		return nil, invalid(err)
	}
	was, err := h.delAddr(req.Name, req.Cidr)
	return s.change(req.Group, undo{Op: opAddAddr, Host: req.Host, Link: req.Name, CIDR: req.Cidr, Addr: was}, err)
}

// LinkInfo reads a device.
func (s *Server) LinkInfo(_ context.Context, req *pb.LinkRef) (*pb.LinkInfoReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	r, err := h.linkInfo(req.Name)
	var ae argError
	if errors.As(err, &ae) {
		return nil, invalid(err)
	}
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	return r, nil
}

// Links reads every device of a host.
func (s *Server) Links(_ context.Context, req *pb.HostRef) (*pb.LinksReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	links, err := h.linkList()
	if err != nil {
		return nil, failed(fmt.Errorf("list devices of %s: %w", h.label(), err))
	}
	r := &pb.LinksReply{}
	for _, l := range links {
		info, err := h.linkInfo(l.Attrs().Name)
		if err != nil {
			continue // gone meanwhile
		}
		r.Links = append(r.Links, info)
	}
	return r, nil
}

// ReadValue reads a sysctl or sysfs value.
func (s *Server) ReadValue(_ context.Context, req *pb.ValueRef) (*pb.ValueReply, error) {
	if _, err := valuePath(req.Kind, req.Key); err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	v, err := h.readValue(req.Kind, req.Key)
	if err != nil {
		return nil, failed(err)
	}
	return &pb.ValueReply{Value: v}, nil
}

// WriteValue writes a sysctl or sysfs value.
func (s *Server) WriteValue(_ context.Context, req *pb.WriteValueRequest) (*pb.ChangeReply, error) {
	if _, err := valuePath(req.Kind, req.Key); err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if r, ok, err := s.writeValueAhead(h, req); ok {
		return r, err
	}
	old, err := h.writeValue(req.Kind, req.Key, req.Value)
	if errors.Is(err, fs.ErrPermission) {
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	r, err := s.change(req.Group, undo{Op: opWriteValue, Host: req.Host, ValueKind: req.Kind, Key: req.Key, Value: old}, err)
	if r != nil {
		r.Old = old
	}
	return r, err
}

// AddRoute adds a route.
func (s *Server) AddRoute(_ context.Context, req *pb.RouteRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	r := routeOf(req)
	return s.change(req.Group, undo{Op: opDelRoute, Host: req.Host, Route: r}, h.addRoute(r))
}

// DelRoute removes a route.
func (s *Server) DelRoute(_ context.Context, req *pb.RouteRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	r := routeOf(req)
	return s.change(req.Group, undo{Op: opAddRoute, Host: req.Host, Route: r}, h.delRoute(r, false))
}

// Probe reports the kernel's link kinds and qdiscs; the answer is found
// once per agent.
func (s *Server) Probe(_ context.Context, req *pb.ProbeRequest) (*pb.ProbeReply, error) {
	if _, err := s.host(req.Host); err != nil {
		return nil, err
	}
	s.probeOnce.Do(func() {
		s.probe.kinds, s.probe.qdiscs, s.probe.tc, s.probe.err = probeKernel()
	})
	if s.probe.err != nil {
		return nil, failed(fmt.Errorf("probe the kernel: %w", s.probe.err))
	}
	return &pb.ProbeReply{LinkKinds: s.probe.kinds, Qdiscs: s.probe.qdiscs, Tc: s.probe.tc}, nil
}

// Shutdown undoes every change the agent journaled, newest first, kills
// every job and removes every namespace host. It returns the undo failures.
func (s *Server) Shutdown() []error {
	s.quiesce()
	s.stopLeases.Do(func() { close(s.leases.stop) })
	_, errs := s.restore(s.journal.take("", 0, true))
	s.mu.Lock()
	s.closed = true
	hosts := s.hosts
	s.hosts = map[string]*host{}
	networks := s.networks
	s.networks = map[string]*host{}
	s.mu.Unlock()
	for _, h := range hosts {
		h.stopJobs()
		h.stopTeamds()
		h.close()
	}
	for _, sw := range networks {
		sw.close()
	}
	if err := s.journal.close(); err != nil {
		s.log.Error("close journal", "error", err)
	}
	runtime.GC()
	return errs
}
