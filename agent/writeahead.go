package agent

import (
	"errors"
	"fmt"
	"io/fs"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Where the undo of a change is written relative to the change.
//
// Write-ahead (CreateLink, WriteValue on the agent's own host with an
// on-disk journal): the undo is on disk before the change is made, so a
// crash at any point leaves no residue. A crash after the undo is written
// and before the change is made leaves an undo that finds nothing to do
// (the device is not there; the value written back is the value in place).
// A device that already exists is not journaled ahead: its create fails,
// and its undo must never delete someone else's device.
//
// Every other change is journaled after it is made and before its RPC
// returns (see Server.change): a crash in between (one write and one
// fdatasync) leaves that change behind, unacknowledged.

// unjournaled is the error of a change refused because its undo could
// not be written to disk.
func unjournaled(err error) error {
	return status.Error(codes.Internal, fmt.Sprintf("journal the undo before the change: %v; the change was not made", err))
}

// createLinkAhead creates a device with its undo on disk first. ok is
// false when the device is not to be journaled ahead; the caller then
// creates it the ordinary way.
func (s *Server) createLinkAhead(h *host, req *pb.CreateLinkRequest) (r *pb.ChangeReply, ok bool, err error) {
	spec, err := specOf(req)
	if err != nil {
		return nil, false, nil
	}
	u := undo{Group: req.Group, Op: createUndo(spec), Kind: createUndoKind(spec), Host: req.Host, Link: spec.LinkName()}
	if !s.journal.writesAhead(u) {
		return nil, false, nil
	}
	if _, err := h.nl.LinkByName(u.Link); err == nil {
		return nil, false, nil
	}
	if u.L3mdev, err = h.l3mdevBefore(spec); err != nil {
		return nil, true, failed(err)
	}
	if u.ValueKind, u.Key, u.Value, err = h.netwideValue(spec); err != nil {
		return nil, true, failed(err)
	}
	u, err = s.journal.reserve(u)
	if err != nil {
		return nil, true, unjournaled(err)
	}
	if _, err := h.createLink(req); err != nil {
		s.abandon(u)
		return nil, true, failed(err)
	}
	s.journal.commit(u)
	return &pb.ChangeReply{Seq: u.Seq}, true, nil
}

// writeValueAhead writes a value with its undo on disk first; ok is false
// when the value is not to be journaled ahead.
func (s *Server) writeValueAhead(h *host, req *pb.WriteValueRequest) (r *pb.ChangeReply, ok bool, err error) {
	u := undo{Group: req.Group, Op: opWriteValue, Host: req.Host, ValueKind: req.Kind, Key: req.Key}
	if !s.journal.writesAhead(u) {
		return nil, false, nil
	}
	old, err := h.readValue(req.Kind, req.Key)
	if err != nil {
		// The ordinary path reports it.
		return nil, false, nil
	}
	u.Value = old
	u, err = s.journal.reserve(u)
	if err != nil {
		return nil, true, unjournaled(err)
	}
	if err := h.replaceValue(req.Kind, req.Key, req.Value); err != nil {
		s.abandon(u)
		if errors.Is(err, fs.ErrPermission) {
			return nil, true, status.Error(codes.PermissionDenied, err.Error())
		}
		return nil, true, failed(err)
	}
	s.journal.commit(u)
	return &pb.ChangeReply{Seq: u.Seq, Old: old}, true, nil
}

func (s *Server) abandon(u undo) {
	if err := s.journal.abandon(u); err != nil {
		s.log.Error("journal: drop the undo of a change that failed; after a crash it would be tried", "undo", u.String(), "error", err)
	}
}
