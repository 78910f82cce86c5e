package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultLeaseTTL is how long an agent keeps a controller's lease without
// a heartbeat.
const DefaultLeaseTTL = 15 * time.Second

// leases tracks the controllers' sessions and when each was last heard.
// One session at a time holds the agent's lease: while it does, the
// heartbeats and the changes of every other session are refused (see
// heldErr), so that two controllers, which do not see each other's lease
// files, never use one machine at once.
type leases struct {
	mu   sync.Mutex
	ttl  time.Duration
	seen map[string]time.Time
	// holder is the session holding the lease ("" when free), since when,
	// and the controller it came from (peer address, and the subject of
	// its client certificate under mutual TLS).
	holder     string
	since      time.Time
	controller string
	// gone are the sessions whose lease expired, and when: they may not
	// come back, since their changes were undone under them.
	gone map[string]time.Time
	stop chan struct{}
	// instance identifies this agent process.
	instance string
}

// expiredErr is the error for a call or heartbeat of an expired session.
func (l *leases) expiredErr(session string, at time.Time) error {
	return status.Errorf(codes.FailedPrecondition,
		"the lease of session %s expired at %s (no heartbeat for %v): this agent undid the session's changes and killed its jobs",
		session, at.Format(time.RFC3339), l.ttl)
}

// LeaseHeldCode is the gRPC code of a heartbeat or a change refused
// because another session holds the agent's lease; IsLeaseHeld tells such
// an error.
const LeaseHeldCode = codes.ResourceExhausted

// leaseHeldText starts the message of a refusal for a held lease.
const leaseHeldText = "this agent is leased to another controller"

// IsLeaseHeld reports whether err is an agent's refusal because another
// session (another controller) holds its lease: the machine is busy, and
// the call may succeed once that lease is released or expires.
func IsLeaseHeld(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == LeaseHeldCode && strings.Contains(st.Message(), leaseHeldText)
}

// heldErr is the refusal of session's call while another session holds
// the lease. Called with l.mu held.
func (l *leases) heldErr(session string, now time.Time) error {
	return status.Errorf(LeaseHeldCode,
		"%s: session %s of controller %s holds the lease since %s (last heartbeat %v ago, lease TTL %v); session %s may go on once it is released or expires",
		leaseHeldText, l.holder, l.controller, l.since.Format(time.RFC3339), now.Sub(l.seen[l.holder]).Round(time.Millisecond), l.ttl, session)
}

// checkGroup refuses a change in a group of an expired session, or of a
// session other than the one holding the lease. A group without a
// session (the local lab's, a job without a group) is not a controller's
// session and is let through.
func (s *Server) checkGroup(group string) error {
	session, _, ok := strings.Cut(group, "/")
	if !ok {
		return nil
	}
	l := &s.leases
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, gone := l.gone[session]; gone {
		return l.expiredErr(session, at)
	}
	if l.holder != "" && l.holder != session {
		return l.heldErr(session, time.Now())
	}
	return nil
}

// groupChecked makes a stream's requests that name a group pass
// checkGroup, as the unary interceptor makes single requests.
func (s *Server) groupChecked(ss grpc.ServerStream) grpc.ServerStream {
	return groupCheckedStream{ss, s}
}

type groupCheckedStream struct {
	grpc.ServerStream
	s *Server
}

func (g groupCheckedStream) RecvMsg(m any) error {
	if err := g.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if r, ok := m.(interface{ GetGroup() string }); ok {
		return g.s.checkGroup(r.GetGroup())
	}
	return nil
}

// controllerOf names the controller of a call: its address, and the
// subject of its certificate when it showed one.
func controllerOf(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "(unknown)"
	}
	name := p.Addr.String()
	if name == "" || name == "@" {
		name = p.Addr.Network()
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
		name += " (" + ti.State.PeerCertificates[0].Subject.String() + ")"
	}
	return name
}

// SessionGroup is the journal group name a controller uses for a group of
// its session: the agent undoes it when the session's lease expires.
func SessionGroup(session, group string) string { return session + "/" + group }

// Heartbeat takes the agent's lease for a session, or keeps it; it is
// refused while another session holds it.
func (s *Server) Heartbeat(ctx context.Context, req *pb.HeartbeatRequest) (*pb.HeartbeatReply, error) {
	if req.Session == "" || strings.Contains(req.Session, "/") {
		return nil, invalid(errors.New("session id is empty or has '/'"))
	}
	l := &s.leases
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, gone := l.gone[req.Session]; gone {
		return nil, l.expiredErr(req.Session, at)
	}
	now := time.Now()
	if l.holder != "" && l.holder != req.Session {
		err := l.heldErr(req.Session, now)
		s.log.Info("lease refused", "session", req.Session, "controller", controllerOf(ctx), "holder", l.holder)
		return nil, err
	}
	if l.seen == nil {
		l.seen = map[string]time.Time{}
	}
	if l.holder == "" {
		l.holder, l.since, l.controller = req.Session, now, controllerOf(ctx)
		s.log.Info("lease taken", "session", req.Session, "controller", l.controller, "ttl", l.ttl)
	}
	l.seen[req.Session] = now
	return &pb.HeartbeatReply{Ttl: durationpb.New(l.ttl), Instance: l.instance}, nil
}

// Release ends a session's lease.
func (s *Server) Release(_ context.Context, req *pb.HeartbeatRequest) (*pb.Empty, error) {
	l := &s.leases
	l.mu.Lock()
	delete(l.seen, req.Session)
	held := l.holder == req.Session
	if held {
		l.holder = ""
	}
	l.mu.Unlock()
	if held {
		s.log.Info("lease released", "session", req.Session)
	}
	return &pb.Empty{}, nil
}

// watchLeases expires sessions not heard from for the lease TTL: their
// jobs are killed and their changes undone, newest first. It runs until
// Shutdown.
func (s *Server) watchLeases() {
	tick := time.NewTicker(max(s.leases.ttl/10, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.leases.stop:
			return
		case <-tick.C:
		}
		for _, session := range s.expired(time.Now()) {
			entries := s.journal.takePrefix(session + "/")
			s.log.Warn("lease expired: restoring the session's changes", "session", session, "entries", len(entries))
			_, errs := s.restore(entries)
			for _, err := range errs {
				s.log.Error("lease expired: restore failed", "session", session, "error", err)
			}
		}
	}
}

// expired removes and returns the sessions whose lease ran out by now.
func (s *Server) expired(now time.Time) []string {
	l := &s.leases
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for session, seen := range l.seen {
		if now.Sub(seen) > l.ttl {
			out = append(out, session)
			delete(l.seen, session)
			if l.holder == session {
				l.holder = ""
			}
			if l.gone == nil {
				l.gone = map[string]time.Time{}
			}
			l.gone[session] = now
		}
	}
	return out
}

// takePrefix removes and returns, newest first, the entries of every
// group whose name starts with prefix.
func (j *journal) takePrefix(prefix string) []undo {
	j.mu.Lock()
	var groups []string
	seen := map[string]bool{}
	for _, u := range j.entries {
		if strings.HasPrefix(u.Group, prefix) && !seen[u.Group] {
			seen[u.Group] = true
			groups = append(groups, u.Group)
		}
	}
	j.mu.Unlock()
	var all []undo
	for _, g := range groups {
		all = append(all, j.take(g, 0, false)...)
	}
	sortNewestFirst(all)
	return all
}

func sortNewestFirst(u []undo) {
	sort.Slice(u, func(a, b int) bool { return u[a].Seq > u[b].Seq })
}

// newInstanceID is a random id of this agent process.
func newInstanceID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
