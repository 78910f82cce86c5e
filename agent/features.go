package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"golang.org/x/sys/unix"
)

// ethtoolDo runs f with an ethtool socket in the host's network namespace.
func (h *host) ethtoolDo(f func(fd int) error) error {
	return h.do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return f(fd)
	})
}

// setFeatures switches features of a device and returns the undo that
// switches back those it changed.
func (h *host) setFeatures(name string, want map[string]bool) (undo, error) {
	if _, err := h.link(name); err != nil {
		return undo{}, err
	}
	if len(want) == 0 {
		return undo{}, badArg(errors.New("no feature given"))
	}
	var old map[string]bool
	err := h.ethtoolDo(func(fd int) error {
		var err error
		old, err = ethtool.Set(fd, name, want)
		return err
	})
	u := undo{Op: opSetFeatures, Link: name, Features: old}
	if err != nil {
		return u, fmt.Errorf("set features %s of %q on %s: %w", featureList(want), name, h.label(), err)
	}
	return u, nil
}

func featureList(f map[string]bool) string {
	var parts []string
	for k, v := range f {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// SetFeatures switches ethtool features of a device.
func (s *Server) SetFeatures(_ context.Context, req *pb.SetFeaturesRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	u, err := h.setFeatures(req.Name, req.Features)
	u.Host = req.Host
	if err != nil && len(u.Features) > 0 {
		// Some features changed before the error: keep their undo.
		return s.partChange(req.Group, u, err)
	}
	return s.change(req.Group, u, err)
}

// Features reads the ethtool features of a device.
func (s *Server) Features(_ context.Context, req *pb.LinkRef) (*pb.FeaturesReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	var f ethtool.Features
	err = h.ethtoolDo(func(fd int) error {
		var err error
		f, err = ethtool.Get(fd, req.Name)
		return err
	})
	if err != nil {
		return nil, failed(fmt.Errorf("read features of %q on %s: %w", req.Name, h.label(), err))
	}
	r := &pb.FeaturesReply{Active: f.Active}
	for _, k := range sortedKeys(f.Fixed) {
		if f.Fixed[k] {
			r.Fixed = append(r.Fixed, k)
		}
	}
	return r, nil
}

// ethtoolParams are a device's ring sizes or coalescing settings, as
// SetRing and SetCoalesce change them.
type ethtoolParams struct {
	op    string // opSetRing or opSetCoalesce
	what  string // in messages
	names []string
	set   func(ifname string, want map[string]uint32) (map[string]uint32, error)
}

var (
	ringParams     = ethtoolParams{opSetRing, "ring sizes", ethtool.RingNames(), ethtool.SetRings}
	coalesceParams = ethtoolParams{opSetCoalesce, "coalescing", ethtool.CoalesceNames(), ethtool.SetCoalesce}
)

// setParams changes ring sizes or coalescing of a device and returns the
// undo that sets back what it changed.
func (h *host) setParams(p ethtoolParams, name string, want map[string]uint32) (undo, error) {
	if _, err := h.link(name); err != nil {
		return undo{}, err
	}
	if len(want) == 0 {
		return undo{}, badArg(fmt.Errorf("set %s of %q: none given", p.what, name))
	}
	for _, k := range sortedKeys(want) {
		if !slices.Contains(p.names, k) {
			return undo{}, badArg(fmt.Errorf("set %s of %q: %q is none of %s", p.what, name, k, strings.Join(p.names, ", ")))
		}
	}
	var old map[string]uint32
	err := h.do(func() error {
		var err error
		old, err = p.set(name, want)
		return err
	})
	if err != nil {
		return undo{}, fmt.Errorf("set %s of %q on %s: %w", p.what, name, h.label(), err)
	}
	return undo{Op: p.op, Link: name, Params: old}, nil
}

// undoParams sets back ring sizes or coalescing.
func (h *host) undoParams(u undo) error {
	if _, err := h.nl.LinkByName(u.Link); err != nil {
		return nothingToUndo("%s has no device %q", h.label(), u.Link)
	}
	if len(u.Params) == 0 {
		return nothingToUndo("nothing of %q on %s was changed", u.Link, h.label())
	}
	p := paramsOfOp(u.Op)
	return h.do(func() error {
		_, err := p.set(u.Link, u.Params)
		return err
	})
}

func (s *Server) setParams(p ethtoolParams, req *pb.SetEthtoolRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	u, err := h.setParams(p, req.Name, req.Params)
	u.Host = req.Host
	return s.change(req.Group, u, err)
}

// SetRing sets ring sizes of a device.
func (s *Server) SetRing(_ context.Context, req *pb.SetEthtoolRequest) (*pb.ChangeReply, error) {
	return s.setParams(ringParams, req)
}

// SetCoalesce sets interrupt coalescing of a device.
func (s *Server) SetCoalesce(_ context.Context, req *pb.SetEthtoolRequest) (*pb.ChangeReply, error) {
	return s.setParams(coalesceParams, req)
}

// Ring reads the ring sizes of a device and their maximums.
func (s *Server) Ring(_ context.Context, req *pb.LinkRef) (*pb.EthtoolReply, error) {
	return s.readParams(req, ringParams.what, ethtool.Rings)
}

// Coalesce reads the interrupt coalescing settings of a device.
func (s *Server) Coalesce(_ context.Context, req *pb.LinkRef) (*pb.EthtoolReply, error) {
	return s.readParams(req, coalesceParams.what, func(name string) (map[string]uint32, map[string]uint32, error) {
		cur, err := ethtool.Coalesce(name)
		return cur, nil, err
	})
}

func (s *Server) readParams(req *pb.LinkRef, what string, read func(string) (cur, max map[string]uint32, err error)) (*pb.EthtoolReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	r := &pb.EthtoolReply{}
	err = h.do(func() error {
		var err error
		r.Params, r.Max, err = read(req.Name)
		return err
	})
	if err != nil {
		return nil, failed(fmt.Errorf("read %s of %q on %s: %w", what, req.Name, h.label(), err))
	}
	return r, nil
}
