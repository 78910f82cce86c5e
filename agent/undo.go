package agent

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
// stop the rest; every failure is returned. Their done records are
// group-committed, restoreDoneBatch at a time, each batch after its
// undos were applied (see journalfile.go).
func (s *Server) restore(entries []undo) (int, []error) {
	var errs []error
	done := make([]uint64, 0, min(len(entries), restoreDoneBatch))
	for _, u := range entries {
		if err := s.applyLogged(u, hclog.Trace); err != nil {
			errs = append(errs, err)
		}
		done = append(done, u.Seq)
		if len(done) == restoreDoneBatch {
			s.markDone(done)
			done = done[:0]
		}
	}
	s.markDone(done)
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
	case opStopCapture:
		// A capture ends with the agent process: nothing to find on disk.
		s.stopCapture(u)
		return nil
	case opIrqAffinity:
		// The machine's, whichever host set it.
		return s.undoIrqAffinity(u)
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
	case opSetNumVfs, opSetVf, opSetEswitch:
		return s.undoSriov(h, u)
	case opSetRSS, opSetFlowHash, opDelNtuple:
		return h.undoNic(u)
	case opSetRing, opSetCoalesce, opSetChannels, opSetPause, opSetLinkModes:
		return h.undoParams(u)
	case opDelRoute:
		return h.delRoute(u.Route, true)
	case opAddRoute:
		return h.undoAddRoute(u.Route)
	case opAddNeigh, opDelNeigh:
		return h.undoNeigh(u)
	case opAddRule, opDelRule:
		return h.undoRule(u)
	case opNftDelTable, opNftDelChain, opNftDelRules:
		return h.undoNft(u)
	case opMptcpDelEndpoint, opMptcpSetLimits:
		return h.undoMptcp(u)
	case opMoveLink:
		return s.undoMoveLink(h, u)
	case opRenameLink:
		return h.undoRename(u)
	case opStopTeamd:
		return h.stopTeamd(u.Link)
	case opRunCommand:
		return h.runUndoCommand(u)
	case opTcDelQdisc, opTcPutQdisc, opTcDelClass, opTcPutClass, opTcDelFilter, opTcPutFilter:
		return h.undoTc(u)
	case opDelXfrmState, opDelXfrmPolicy, opDelL2tpTunnel, opDelL2tpSession:
		return h.undoIssue18(u)
	}
	return h.applyUndoLink(u)
}
