package agent

import (
	"context"
	"errors"
	"fmt"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxRoutesBatch bounds the routes of one AddRoutes call.
const maxRoutesBatch = 100000

// AddRoutes adds many routes, in order, each journaled as its own entry;
// the entries go to the journal file in one write. Each device is looked
// up once per batch. A route that fails stops the batch: the routes
// before it stay, and are journaled.
func (s *Server) AddRoutes(_ context.Context, req *pb.RoutesRequest) (*pb.ChangeReply, error) {
	if len(req.Routes) == 0 {
		return nil, invalid(errors.New("AddRoutes: no routes given"))
	}
	if len(req.Routes) > maxRoutesBatch {
		return nil, invalid(fmt.Errorf("AddRoutes: %d routes, more than %d in one call", len(req.Routes), maxRoutesBatch))
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	undos := make([]undo, 0, len(req.Routes))
	err = h.addRoutes(req.Routes, func(r route) {
		undos = append(undos, undo{Group: req.Group, Op: opDelRoute, Host: req.Host, Route: r})
	})
	if len(undos) == 0 {
		return nil, failed(err)
	}
	first, jerr := s.journal.addBatch(undos)
	if err != nil {
		return nil, failed(err)
	}
	if jerr != nil {
		return nil, status.Error(codes.Internal, fmt.Sprintf("the routes are added and Restore of group %q takes them back, but their undo is not on disk (a crash of the agent would leave them): %v", req.Group, jerr))
	}
	return &pb.ChangeReply{Seq: first}, nil
}

// addRoutes adds routes in order, calling added for each one added, until
// one fails.
func (h *host) addRoutes(reqs []*pb.RouteRequest, added func(route)) error {
	index := map[string]int{}
	lookup := func(name string) (int, error) {
		if i, ok := index[name]; ok {
			return i, nil
		}
		i, err := h.linkIndex(name)
		if err == nil {
			index[name] = i
		}
		return i, err
	}
	for n, req := range reqs {
		r := routeOf(req)
		nr, err := h.netlinkRouteWith(r, lookup)
		if err == nil {
			err = h.nl.RouteAdd(nr)
			if err != nil {
				err = fmt.Errorf("add route %s on %s: %w", r, h.label(), err)
			}
		}
		if err != nil {
			return fmt.Errorf("route %d of %d: %w", n+1, len(reqs), err)
		}
		added(r)
	}
	return nil
}

// addBatch records entries as add does, one after the other, and writes
// the ones that go to disk in one write. It returns the first one's
// sequence number.
func (j *journal) addBatch(us []undo) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var disk []undo
	for i := range us {
		j.seq++
		us[i].Seq = j.seq
		if j.file != nil && durable(us[i]) {
			disk = append(disk, us[i])
		}
	}
	j.entries = append(j.entries, us...)
	if len(disk) == 0 {
		return us[0].Seq, nil
	}
	return us[0].Seq, j.file.addMany(disk)
}

// addMany appends an add record for each of us in one write.
func (jf *journalFile) addMany(us []undo) error {
	var b []byte
	for i := range us {
		rec, err := encodeRecord(journalRecord{Op: recordAdd, Entry: &us[i]})
		if err != nil {
			return err
		}
		b = append(b, rec...)
	}
	if err := jf.append(b); err != nil {
		return err
	}
	for _, u := range us {
		jf.pending[u.Seq] = true
	}
	return nil
}
