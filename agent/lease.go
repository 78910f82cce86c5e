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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultLeaseTTL is how long an agent keeps a controller's lease without
// a heartbeat.
const DefaultLeaseTTL = 15 * time.Second

// leases tracks the controllers' sessions and when each was last heard.
type leases struct {
	mu   sync.Mutex
	ttl  time.Duration
	seen map[string]time.Time
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

// checkGroup refuses a change in a group of an expired session.
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
	return nil
}

// SessionGroup is the journal group name a controller uses for a group of
// its session: the agent undoes it when the session's lease expires.
func SessionGroup(session, group string) string { return session + "/" + group }

// Heartbeat holds a session's lease.
func (s *Server) Heartbeat(_ context.Context, req *pb.HeartbeatRequest) (*pb.HeartbeatReply, error) {
	if req.Session == "" || strings.Contains(req.Session, "/") {
		return nil, invalid(errors.New("session id is empty or has '/'"))
	}
	l := &s.leases
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, gone := l.gone[req.Session]; gone {
		return nil, l.expiredErr(req.Session, at)
	}
	if l.seen == nil {
		l.seen = map[string]time.Time{}
	}
	if _, ok := l.seen[req.Session]; !ok {
		s.log.Info("lease taken", "session", req.Session, "ttl", l.ttl)
	}
	l.seen[req.Session] = time.Now()
	return &pb.HeartbeatReply{Ttl: durationpb.New(l.ttl), Instance: l.instance}, nil
}

// Release ends a session's lease.
func (s *Server) Release(_ context.Context, req *pb.HeartbeatRequest) (*pb.Empty, error) {
	s.leases.mu.Lock()
	delete(s.leases.seen, req.Session)
	s.leases.mu.Unlock()
	s.log.Info("lease released", "session", req.Session)
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
