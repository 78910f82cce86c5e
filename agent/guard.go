package agent

import (
	"context"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// KeepaliveMinTime is the shortest interval at which the agent lets a
// controller ping it (gRPC keepalive): a controller pings an agent over
// TCP to find a machine that went away without closing the connection
// (powered off, cut off), so that its calls fail rather than wait for
// TCP to give up. gRPC's default, 5 min, would end such a controller's
// connection with "too many pings".
const KeepaliveMinTime = 5 * time.Second

// callKind says how an RPC stands to Shutdown.
type callKind int

const (
	// changes: the call changes state and journals its undo. Shutdown
	// waits for it (its undo must be journaled before Shutdown takes
	// the journal) and refuses it once begun.
	changes callKind = iota + 1
	// reads: the call changes nothing, or only waits (a RunJob or
	// WaitJob ends when Shutdown kills its job, a WaitLink when the
	// server stops). It runs also while Shutdown restores, and Shutdown
	// does not wait for it.
	reads
)

// callKinds classifies every method of the Agent service; a test checks
// it against the service descriptor, so a new RPC must be classified
// here before the agent serves it.
var callKinds = map[string]callKind{
	"Hello": reads,

	"CreateHost": changes, "DestroyHost": changes, "Connect": changes, "DestroyNetwork": changes,
	"CreateNetns": changes,

	"StartJob": changes, "RunJob": reads, "RunJobStream": reads,
	"WaitJob": reads, "WaitJobStream": reads, "StreamJob": reads, "KillJob": reads,

	"CreateLink": changes, "DeleteLink": changes, "SetLink": changes, "SetLinkNetns": changes,
	"RenameLink": changes, "LinkInfo": reads, "Links": reads, "WaitLink": reads,
	"AddAddr": changes, "DelAddr": changes,
	"AddRoute": changes, "DelRoute": changes, "AddRoutes": changes,
	"AddNeigh": changes, "DelNeigh": changes, "AddRule": changes, "DelRule": changes,

	"ReadValue": reads, "WriteValue": changes,
	"SetFeatures": changes, "Features": reads,
	"SetRing": changes, "Ring": reads, "SetCoalesce": changes, "Coalesce": reads,
	"Probe": reads, "Facts": reads,

	"SetChannels": changes, "Channels": reads, "NicIrqs": reads, "SetIrqAffinity": changes,
	"SetPause": changes, "Pause": reads, "SetLinkModes": changes, "LinkModes": reads,
	"NicRss": reads, "SetNicRss": changes, "NicFlowHash": reads, "SetNicFlowHash": changes, "AddNicNtuple": changes,
	"SetNicNumVfs": changes, "NicVfs": reads, "SetNicVf": changes, "SetNicEswitch": changes, "NicEswitch": reads,

	"Heartbeat": reads, "Release": reads, "Restore": changes,
	"PutFile": changes, "GetFile": reads, "TempDir": changes,
	"Reboot": changes, "LoadKernel": changes,

	// A capture streams until it is stopped: Shutdown must not wait for
	// it. Its undo, journaled even past Shutdown, has nothing left to do
	// then: the capture ends with its stream when the server stops.
	"CaptureStart": reads, "CaptureStop": reads,
	// The kernel log and counters are read; a kept sysinfo baseline is
	// the agent's own memory, not a change to the machine.
	"SnapshotHosts": reads,
	"KmsgCursor":    reads, "KmsgRead": reads, "SysinfoSnapshot": reads, "SysinfoAgentLog": reads,
	"TcAddQdisc": changes, "TcReplaceQdisc": changes, "TcDelQdisc": changes,
	"TcAddClass": changes, "TcDelClass": changes, "TcAddFilter": changes, "TcDelFilter": changes,
	"TcList": reads, "TcSaveQdiscs": reads, "TcResetQdiscs": changes,

	// nftables, conntrack and MPTCP (nft.go, mptcp.go).
	"NftAddTable": changes, "NftAddChain": changes, "NftAddRules": changes, "NftRules": reads,
	"ConntrackStats":   reads,
	"MptcpAddEndpoint": changes, "MptcpSetLimits": changes, "MptcpState": reads,
}

// unguarded reports whether a method runs past Shutdown's guard (see
// reads). A method callKinds does not know is guarded.
func unguarded(method string) bool { return callKinds[method] == reads }

// ServerOptions are the gRPC server options the agent needs: keepalive
// pings from controllers every KeepaliveMinTime allowed, interceptors that
// turn a panic in a call into a codes.Internal error (logged with its
// stack) rather than the death of an agent holding undo state, and
// interceptors that let Shutdown wait for every call that changes state,
// so that no change is journaled after Shutdown took the journal (it
// would never be undone), refuse such calls once Shutdown has begun, and
// refuse a call in a group of a session that may not change anything
// (checkGroup).
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (_ any, err error) {
			defer s.recoverCall(info.FullMethod, &err)
			return h(ctx, req)
		}, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			done, err := s.enter(info.FullMethod)
			if err != nil {
				return nil, err
			}
			defer done()
			if g, ok := req.(interface{ GetGroup() string }); ok {
				if err := s.checkGroup(g.GetGroup()); err != nil {
					return nil, err
				}
			}
			return h(ctx, req)
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
			defer s.recoverCall(info.FullMethod, &err)
			return h(srv, ss)
		}, func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			done, err := s.enter(info.FullMethod)
			if err != nil {
				return err
			}
			defer done()
			return h(srv, s.groupChecked(ss))
		}),
	}
}

// recoverCall, deferred around a call, turns a panic in it into an
// Internal error that names the method, and logs the panic's stack. The
// agent goes on serving, and its journal stays, to be undone at the end
// as ever. A panic in a goroutine a call started is not caught here.
func (s *Server) recoverCall(method string, err *error) {
	p := recover()
	if p == nil {
		return
	}
	s.log.Error("a call panicked: it fails with Internal and the agent goes on", "method", method, "panic", p, "stack", string(debug.Stack()))
	*err = status.Errorf(codes.Internal, "%s: the agent panicked: %v (its log has the stack)", method, p)
}

// enter admits a call: a state-changing one holds the in-flight lock
// until done, and is refused once Shutdown has begun.
func (s *Server) enter(fullMethod string) (done func(), err error) {
	if unguarded(fullMethod[strings.LastIndex(fullMethod, "/")+1:]) {
		return func() {}, nil
	}
	s.inflight.RLock()
	if s.shuttingDown {
		s.inflight.RUnlock()
		return nil, status.Error(codes.Unavailable, "agent is shutting down")
	}
	return s.inflight.RUnlock, nil
}

// quiesce makes every later state-changing call fail and waits for those
// in flight to end.
func (s *Server) quiesce() {
	s.inflight.Lock()
	s.shuttingDown = true
	s.inflight.Unlock()
}
