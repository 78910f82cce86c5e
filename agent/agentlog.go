package agent

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// The agent keeps its recent log lines in memory, for SysinfoAgentLog: a
// controller fetches a pool or VM host's agent log of a failed recipe's
// window with it, where it cannot read the agent's stderr.

// agentLogKeep is how many lines the agent keeps.
const agentLogKeep = 4096

type logLine struct {
	at   time.Time
	text string
}

// logRing is the last agentLogKeep lines written to it.
type logRing struct {
	mu      sync.Mutex
	lines   []logLine
	partial []byte
	// evicted is when the newest line dropped for room was logged.
	evicted time.Time
}

var agentLog = &logRing{}

// LogOutput returns a writer for the agent's logger: it writes to w and
// keeps the lines for SysinfoAgentLog.
func LogOutput(w io.Writer) io.Writer { return io.MultiWriter(w, agentLog) }

// Write keeps the whole lines of p; a line's end may come in a later
// Write.
func (r *logRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	data := append(r.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		r.lines = append(r.lines, logLine{now, string(data[:i])})
		data = data[i+1:]
	}
	r.partial = append([]byte(nil), data...)
	if over := len(r.lines) - agentLogKeep; over > 0 {
		r.evicted = r.lines[over-1].at
		r.lines = append(r.lines[:0:0], r.lines[over:]...)
	}
	return len(p), nil
}

// since returns the lines logged from t on, and whether some of them are
// no longer kept.
func (r *logRing) since(t time.Time) ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if !l.at.Before(t) {
			out = append(out, l.text)
		}
	}
	return out, !r.evicted.IsZero() && !r.evicted.Before(t)
}

// SysinfoAgentLog returns the agent's log lines from a time on.
func (s *Server) SysinfoAgentLog(_ context.Context, req *pb.SysinfoAgentLogRequest) (*pb.SysinfoAgentLogReply, error) {
	lines, dropped := agentLog.since(time.Unix(0, req.SinceUnixNano))
	return &pb.SysinfoAgentLogReply{Lines: lines, Dropped: dropped}, nil
}
