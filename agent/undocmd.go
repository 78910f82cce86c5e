package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Undo commands: a job whose request carries undo_argv (lnsttest.Undo)
// gets that command journaled, as an opRunCommand entry of the job's
// group, before the job starts: the job may half-make its change and
// still need its undo. A job that cannot start at all (no such command,
// no such directory) drops the entry. Restore runs it on the job's host
// with the group's other undos, newest first, as lease expiry does; an
// entry on the agent's own host is on disk (durable) and a restarted
// agent's journal replay runs it. An entry of a namespace host that is
// gone has nothing to undo, as every other entry of it.
//
// What it trusts: the command runs as root, like any job. At replay it is
// read from the journal file, which only root can have written (it is
// checked to be root's, not group- or world-writable, in a directory
// alike, and opened without following a symlink: see journalfile.go), and
// which only the agent writes, with what its authenticated controller
// asked; that controller can run any command as a job anyway. An undo
// command is not a remove-path entry: nothing of undopath.go's "remove
// only what the agent made" applies to it, and nothing of its Argv is
// used by any other op (FuzzReplayUndo checks that).

const (
	// defaultUndoTimeout bounds an undo command whose request gave no
	// timeout; maxUndoTimeout is the most a request may give.
	defaultUndoTimeout = time.Minute
	maxUndoTimeout     = 10 * time.Minute
	// maxUndoArgv bounds the bytes of an undo command's arguments, so
	// that its journal record stays far below maxRecordLen.
	maxUndoArgv = 64 << 10
	// undoOutputTail is how much of each of an undo command's streams a
	// failure reports: its last bytes.
	undoOutputTail = 2048
)

// undoCommandOf checks req's undo command and returns its journal entry.
func undoCommandOf(req *pb.StartJobRequest) (undo, error) {
	if req.Group == "" {
		return undo{}, errors.New("undo_argv needs a group: no Restore would run an undo of no group")
	}
	if req.UndoArgv[0] == "" {
		return undo{}, fmt.Errorf("undo_argv %q: its command is empty", req.UndoArgv)
	}
	n := 0
	for _, a := range req.UndoArgv {
		if strings.ContainsRune(a, 0) {
			return undo{}, fmt.Errorf("undo_argv %q: argument %q holds a NUL byte, which no command can be given", req.UndoArgv, a)
		}
		n += len(a)
	}
	if n > maxUndoArgv {
		return undo{}, fmt.Errorf("undo_argv of %q...: %d bytes, more than %d", req.UndoArgv[0], n, maxUndoArgv)
	}
	var timeout time.Duration
	if req.UndoTimeout != nil {
		if err := req.UndoTimeout.CheckValid(); err != nil {
			return undo{}, fmt.Errorf("undo_timeout: %w", err)
		}
		timeout = req.UndoTimeout.AsDuration()
		if timeout < 0 || timeout > maxUndoTimeout {
			return undo{}, fmt.Errorf("undo_timeout %v: not within 0 and %v", timeout, maxUndoTimeout)
		}
	}
	return undo{Group: req.Group, Op: opRunCommand, Host: req.Host, Argv: req.UndoArgv, Timeout: timeout}, nil
}

// startJobWithUndo starts req's job on h with its undo command journaled
// first (see above). With guard, the call is one Shutdown does not wait
// for (RunJob): it is refused once Shutdown has begun, and Shutdown waits
// until its undo is journaled, so that it does not journal after
// Shutdown took the journal. A call Shutdown guards already holds the
// guard, which must not be taken twice (sync.RWMutex).
func (s *Server) startJobWithUndo(h *host, req *pb.StartJobRequest, guard bool) (*job, error) {
	u, err := undoCommandOf(req)
	if err != nil {
		return nil, invalid(err)
	}
	if guard {
		s.inflight.RLock()
		defer s.inflight.RUnlock()
		if s.shuttingDown {
			return nil, status.Error(codes.Unavailable, "agent is shutting down")
		}
	}
	u, err = s.journal.reserve(u)
	if err != nil {
		return nil, unjournaled(err)
	}
	j, err := h.startJob(req)
	if err != nil {
		s.abandon(u)
		return nil, invalid(err)
	}
	if !j.started() {
		// Nothing ran: nothing to take back.
		s.abandon(u)
		return j, nil
	}
	s.journal.commit(u)
	j.mu.Lock()
	j.undoSeq = u.Seq
	j.mu.Unlock()
	return j, nil
}

// runUndoCommand runs an opRunCommand entry's command on h and waits for
// it, bounded by its timeout. Anything but exit code 0 is an error naming
// how it ended and the tail of its output.
func (h *host) runUndoCommand(u undo) error {
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = defaultUndoTimeout
	}
	j, err := h.startJob(&pb.StartJobRequest{Host: u.Host, Argv: u.Argv, Timeout: durationpb.New(timeout), Desc: "undo", Internal: true})
	if err != nil {
		return err
	}
	defer h.forget(j.id)
	r, err := j.wait(context.Background())
	if err != nil {
		return err
	}
	var how string
	switch {
	case r.Error != "":
		how = "could not start: " + r.Error
	case r.TimedOut:
		how = fmt.Sprintf("timed out after %v and was killed", timeout)
	case r.Signal != 0:
		how = fmt.Sprintf("ended by signal %d", r.Signal)
	case r.ExitCode != 0:
		how = fmt.Sprintf("exit code %d", r.ExitCode)
	default:
		return nil
	}
	if r.Error == "" {
		for _, st := range []pb.JobOutput_Stream{pb.JobOutput_STDERR, pb.JobOutput_STDOUT} {
			if out, cut := j.out.tail(st, undoOutputTail); len(out) > 0 {
				mark := ""
				if cut {
					mark = "..."
				}
				how += fmt.Sprintf("; %s: %s%q", strings.ToLower(st.String()), mark, out)
			}
		}
	}
	return errors.New(how)
}

// commandLine is argv as a recipe wrote it: the command line of a
// /bin/sh -c job, else its words.
func commandLine(argv []string) string {
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		return argv[2]
	}
	return strings.Join(argv, " ")
}
