package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

	probeOnce sync.Once
	probe     struct {
		kinds, qdiscs map[string]bool
		err           error
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

// CreateHost makes a namespace host.
func (s *Server) CreateHost(_ context.Context, req *pb.CreateHostRequest) (*pb.CreateHostReply, error) {
	if !s.lab {
		return nil, status.Error(codes.FailedPrecondition, "this agent is not a lab agent: it serves only its own machine")
	}
	if req.Name == "" {
		return nil, invalid(errors.New("host name is empty"))
	}
	if _, err := s.host(req.Name); err == nil {
		return nil, status.Errorf(codes.AlreadyExists, "host %q exists", req.Name)
	} else if status.Code(err) == codes.Unavailable {
		return nil, err
	}
	h, err := s.newHost(req.Name, true)
	if err != nil {
		return nil, failed(err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		h.close()
		return nil, status.Error(codes.Unavailable, "agent is shutting down")
	}
	if _, dup := s.hosts[req.Name]; dup {
		s.mu.Unlock()
		h.close()
		return nil, status.Errorf(codes.AlreadyExists, "host %q exists", req.Name)
	}
	s.hosts[req.Name] = h
	s.mu.Unlock()
	s.log.Debug("created namespace host", "host", req.Name)
	if _, err := s.record(req.Group, undo{Op: opDestroyHost, Host: req.Name}); err != nil {
		return nil, err
	}
	return &pb.CreateHostReply{Host: req.Name}, nil
}

// DestroyHost kills the host's jobs and removes it.
func (s *Server) DestroyHost(_ context.Context, req *pb.HostRef) (*pb.Empty, error) {
	if req.Host == "" {
		return nil, invalid(errors.New("the agent's own host cannot be destroyed"))
	}
	if _, err := s.host(req.Host); err != nil {
		return nil, err
	}
	s.destroyHost(req.Host)
	return &pb.Empty{}, nil
}

func (s *Server) destroyHost(name string) {
	s.mu.Lock()
	h, ok := s.hosts[name]
	delete(s.hosts, name)
	s.mu.Unlock()
	if !ok {
		return
	}
	h.stopJobs()
	h.stopTeamds()
	h.close()
	s.log.Debug("destroyed namespace host", "host", name)
}

// Connect gives a namespace host an interface on a lab network.
func (s *Server) Connect(_ context.Context, req *pb.ConnectRequest) (*pb.Empty, error) {
	if !s.lab {
		return nil, status.Error(codes.FailedPrecondition, "this agent is not a lab agent")
	}
	if err := checkLinkName(req.Ifname); err != nil {
		return nil, invalid(err)
	}
	if req.Network == "" {
		return nil, invalid(errors.New("network name is empty"))
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	sw, port, err := s.network(req.Network, req.Group)
	if err != nil {
		return nil, failed(err)
	}
	// The port is not journaled: it goes with the host's namespace or the
	// network's, whichever is removed first.
	if err := sw.connect(h, req.Ifname, labBridge, port); err != nil {
		return nil, failed(fmt.Errorf("connect %s of host %q to network %q: %w", req.Ifname, req.Host, req.Network, err))
	}
	return &pb.Empty{}, nil
}

// labBridge is the name of the bridge in a lab network's namespace.
const labBridge = "br0"

// network returns the switch of a lab network, a namespace holding its
// bridge, creating it on first use, and a fresh port name. Each network has
// its own namespace so that removing it is one namespace release, which
// the kernel batches, rather than one device deletion (and RCU barrier) per
// port.
func (s *Server) network(network, group string) (sw *host, port string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, "", status.Error(codes.Unavailable, "agent is shutting down")
	}
	s.ports++
	port = fmt.Sprintf("p%d", s.ports)
	if sw, ok := s.networks[network]; ok {
		return sw, port, nil
	}
	sw, err = newNamespaceHost("network "+network, false)
	if err != nil {
		return nil, "", err
	}
	if err := sw.createBridge(labBridge); err != nil {
		sw.close()
		return nil, "", fmt.Errorf("create bridge for network %q: %w", network, err)
	}
	s.networks[network] = sw
	if _, err := s.record(group, undo{Op: opDestroyNetwork, Network: network}); err != nil {
		return nil, "", err
	}
	return sw, port, nil
}

// DestroyNetwork removes a lab network: its namespace, bridge and ports.
func (s *Server) DestroyNetwork(_ context.Context, req *pb.DestroyNetworkRequest) (*pb.Empty, error) {
	s.destroyNetwork(req.Network)
	return &pb.Empty{}, nil
}

func (s *Server) destroyNetwork(network string) {
	s.mu.Lock()
	sw, ok := s.networks[network]
	delete(s.networks, network)
	s.mu.Unlock()
	if ok {
		sw.close()
	}
}

// StartJob starts a job. A job in a group is stopped when its group is
// restored; a job without one is forgotten once its result is collected.
func (s *Server) StartJob(_ context.Context, req *pb.StartJobRequest) (*pb.StartJobReply, error) {
	j, err := s.startJob(req)
	if err != nil {
		return nil, err
	}
	if req.Group == "" {
		// No Restore can take an entry of no group: it would stay.
		return &pb.StartJobReply{Id: j.id}, nil
	}
	seq, err := s.record(req.Group, undo{Op: opStopJob, Host: req.Host, Job: j.id})
	if err != nil {
		return nil, err
	}
	return &pb.StartJobReply{Id: j.id, Seq: seq}, nil
}

func (s *Server) startJob(req *pb.StartJobRequest) (*job, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	j, err := h.startJob(req)
	if err != nil {
		return nil, invalid(err)
	}
	s.log.Debug("job started", "host", req.Host, "id", j.id, "argv", req.Argv)
	return j, nil
}

// RunJob runs a job to its end.
func (s *Server) RunJob(ctx context.Context, req *pb.StartJobRequest) (*pb.JobResult, error) {
	j, err := s.startJob(req)
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
	j, err := s.startJob(req)
	if err != nil {
		return err
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

// change journals u, the undo of a change made in group, and answers the
// call; with err the change failed and nothing is journaled.
func (s *Server) change(group string, u undo, err error) (*pb.ChangeReply, error) {
	if err != nil {
		return nil, failed(err)
	}
	seq, err := s.record(group, u)
	if err != nil {
		return nil, err
	}
	return &pb.ChangeReply{Seq: seq}, nil
}

// partChange journals u, the undo of the part of a change in group that
// was made before it failed with err, and answers the call with err.
func (s *Server) partChange(group string, u undo, err error) (*pb.ChangeReply, error) {
	if _, jerr := s.record(group, u); jerr != nil {
		return nil, status.Errorf(codes.Internal, "%v; and of the part made: %v", err, status.Convert(jerr).Message())
	}
	return nil, failed(err)
}

// record journals u, the undo of a change made in group, and returns its
// sequence number. The entry is kept even when writing it to disk fails:
// then the error, Internal, says that Restore takes the change back but a
// crash of the agent would leave it.
func (s *Server) record(group string, u undo) (uint64, error) {
	u.Group = group
	seq, err := s.journal.add(u)
	if err != nil {
		return seq, status.Error(codes.Internal, fmt.Sprintf("the change is made and Restore of group %q takes it back, but its undo is not on disk (a crash of the agent would leave it): %v", group, err))
	}
	return seq, nil
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
	err = h.addAddr(req.Name, req.Cidr)
	u := undo{Op: opDelAddr, Host: req.Host, Link: req.Name, CIDR: req.Cidr}
	if err != nil && status.Code(err) != codes.InvalidArgument && !errors.Is(err, unix.EEXIST) {
		// The address may be there, still tentative: take it back too.
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
	links, err := h.nl.LinkList()
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

// CreateNetns makes a namespace host inside a host.
func (s *Server) CreateNetns(_ context.Context, req *pb.CreateNetnsRequest) (*pb.CreateHostReply, error) {
	if req.Name == "" || strings.ContainsAny(req.Name, "/\x00") {
		return nil, invalid(fmt.Errorf("namespace name %q is empty or has '/'", req.Name))
	}
	if _, err := s.host(req.Host); err != nil {
		return nil, err
	}
	id := req.Name
	if req.Host != "" {
		id = req.Host + "/" + req.Name
	}
	h, err := s.newHost(id, true)
	if err != nil {
		return nil, failed(err)
	}
	s.mu.Lock()
	_, dup := s.hosts[id]
	if dup || s.closed {
		s.mu.Unlock()
		h.close()
		if dup {
			return nil, status.Errorf(codes.AlreadyExists, "host %q already has a namespace %q", req.Host, req.Name)
		}
		return nil, status.Error(codes.Unavailable, "agent is shutting down")
	}
	s.hosts[id] = h
	s.mu.Unlock()
	if _, err := s.record(req.Group, undo{Op: opDestroyHost, Host: id}); err != nil {
		return nil, err
	}
	return &pb.CreateHostReply{Host: id}, nil
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
		s.probe.kinds, s.probe.qdiscs, s.probe.err = probeKernel()
	})
	if s.probe.err != nil {
		return nil, failed(fmt.Errorf("probe the kernel: %w", s.probe.err))
	}
	return &pb.ProbeReply{LinkKinds: s.probe.kinds, Qdiscs: s.probe.qdiscs}, nil
}

// Restore undoes a group's changes, newest first.
func (s *Server) Restore(_ context.Context, req *pb.RestoreRequest) (*pb.RestoreReply, error) {
	if req.Group == "" {
		return nil, invalid(errors.New("group is empty"))
	}
	undone, errs := s.restore(s.journal.take(req.Group, req.Since, false))
	if req.Since == 0 {
		// The group is over: forget its jobs, all ended by now.
		s.forgetJobs(req.Group)
	}
	r := &pb.RestoreReply{Undone: int32(undone)}
	for _, err := range errs {
		r.Errors = append(r.Errors, err.Error())
	}
	return r, nil
}

// forgetJobs forgets the ended jobs of a group on every host.
func (s *Server) forgetJobs(group string) {
	s.mu.Lock()
	hosts := make([]*host, 0, len(s.hosts))
	for _, h := range s.hosts {
		hosts = append(hosts, h)
	}
	s.mu.Unlock()
	var freed int64
	for _, h := range hosts {
		h.mu.Lock()
		for id, j := range h.jobs {
			select {
			case <-j.done:
				if j.group == group {
					delete(h.jobs, id)
					freed += j.out.release()
				}
			default:
			}
		}
		h.mu.Unlock()
	}
	if freed >= freeAfter {
		debug.FreeOSMemory()
	}
}

// restore applies undo entries in the order given. A failed entry does not
// stop the rest; every failure is returned.
func (s *Server) restore(entries []undo) (int, []error) {
	var errs []error
	for _, u := range entries {
		if err := s.undoOne(u, hclog.Trace); err != nil {
			errs = append(errs, err)
		}
	}
	return len(entries), errs
}

func (s *Server) apply(u undo) error {
	switch u.Op {
	case opDestroyHost:
		s.destroyHost(u.Host)
		return nil
	case opDestroyNetwork:
		s.destroyNetwork(u.Network)
		return nil
	case opRemovePath:
		return s.undoPath(u)
	}
	s.mu.Lock()
	h := s.hosts[u.Host]
	s.mu.Unlock()
	if h == nil {
		// The host is gone, and every change on it with it.
		return nothingToUndo("host %q is gone", u.Host)
	}
	switch u.Op {
	case opStopJob:
		j, err := h.job(u.Job)
		if err != nil {
			return nil
		}
		// The job stays findable: its controller may still be waiting
		// for its result. Restore of the whole group forgets it.
		j.stop()
		return nil
	case opWriteValue:
		p, err := valuePath(u.ValueKind, u.Key)
		if err != nil {
			return err
		}
		return goneIfMissing(h.writeFile(p, u.Value))
	case opSetFeatures:
		if _, err := h.nl.LinkByName(u.Link); err != nil {
			return nothingToUndo("%s has no device %q", h.label(), u.Link)
		}
		// The closure gets copies: capturing u would move every undo
		// applied to the heap (a Restore of 10,000 routes: 4.6 MB).
		link, features := u.Link, u.Features
		return h.ethtoolDo(func(fd int) error {
			_, err := ethtool.Set(fd, link, features)
			return err
		})
	case opSetRing, opSetCoalesce:
		return h.undoParams(u)
	case opDelRoute:
		return h.delRoute(u.Route, true)
	case opAddRoute:
		return h.undoAddRoute(u.Route)
	case opAddNeigh, opDelNeigh:
		return h.undoNeigh(u)
	case opAddRule, opDelRule:
		return h.undoRule(u)
	case opMoveLink:
		return s.undoMoveLink(h, u)
	case opRenameLink:
		return h.undoRename(u)
	case opStopTeamd:
		return h.stopTeamd(u.Link)
	}
	return h.applyUndoLink(u)
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
