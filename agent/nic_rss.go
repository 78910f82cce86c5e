package agent

import (
	"context"
	"fmt"
	"net/netip"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"github.com/lnst-go/lnst/internal/sriov"
)

// nicUndo is what an RSS, flow hash or ntuple undo sets back.
type nicUndo struct {
	// RSS: the old table (with DefaultIndir when it looked like the
	// kernel's default spread: reset first), key and hash function; empty
	// ones were not changed.
	Indir        []uint32 `json:",omitempty"`
	DefaultIndir bool     `json:",omitempty"`
	Key          []byte   `json:",omitempty"`
	Hfunc        string   `json:",omitempty"`
	// Flow and Fields: a flow type's old hash fields.
	Flow   string `json:",omitempty"`
	Fields string `json:",omitempty"`
	// Loc is the location of an ntuple filter to delete.
	Loc uint32 `json:",omitempty"`
	// VF is the index of a VF and VFSet what sets it back (opSetVf).
	VF    int             `json:",omitempty"`
	VFSet *sriov.VFChange `json:",omitempty"`
}

func (n *nicUndo) flow() string {
	if n == nil {
		return ""
	}
	return n.Flow
}

func (n *nicUndo) loc() uint32 {
	if n == nil {
		return 0
	}
	return n.Loc
}

// undoNic sets back RSS or a flow hash, or deletes an ntuple filter.
func (h *host) undoNic(u undo) error {
	if _, err := h.nl.LinkByName(u.Link); err != nil {
		return nothingToUndo("%s has no device %q", h.label(), u.Link)
	}
	if u.Nic == nil {
		return fmt.Errorf("%s: the entry has nothing to set back", u)
	}
	n := *u.Nic
	link, op := u.Link, u.Op
	return h.ethtoolDo(func(fd int) error {
		switch op {
		case opSetRSS:
			_, err := ethtool.SetRSS(fd, link, ethtool.RSSChange{Indir: n.Indir, DefaultIndir: n.DefaultIndir, Key: n.Key, Hfunc: n.Hfunc})
			return err
		case opSetFlowHash:
			_, err := ethtool.SetFlowHash(fd, link, n.Flow, n.Fields)
			return err
		}
		return ethtool.DelNtuple(fd, link, n.Loc)
	})
}

// NicRss reads a device's RSS.
func (s *Server) NicRss(_ context.Context, req *pb.LinkRef) (*pb.NicRssReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	var r ethtool.RSS
	err = h.ethtoolDo(func(fd int) error {
		var err error
		r, err = ethtool.ReadRSS(fd, req.Name)
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	return &pb.NicRssReply{Indir: r.Indir, Key: r.Key, Hfunc: r.Hfunc}, nil
}

// SetNicRss changes a device's RSS.
func (s *Server) SetNicRss(_ context.Context, req *pb.NicRssRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	c := ethtool.RSSChange{Indir: req.Indir, DefaultIndir: req.DefaultIndir, Key: req.Key, Hfunc: req.Hfunc}
	n := 0
	for _, given := range []bool{len(req.Indir) > 0, req.Equal > 0, req.DefaultIndir} {
		if given {
			n++
		}
	}
	if n > 1 {
		return nil, invalid(fmt.Errorf("set RSS of %q: give one of a table, equal and default_indir", req.Name))
	}
	if n == 0 && len(req.Key) == 0 && req.Hfunc == "" {
		return nil, invalid(fmt.Errorf("set RSS of %q: nothing to change", req.Name))
	}
	if len(req.Indir) == 0 {
		c.Indir = nil
	}
	if len(req.Key) == 0 {
		c.Key = nil
	}
	var old ethtool.RSSChange
	err = h.ethtoolDo(func(fd int) error {
		if req.Equal > 0 {
			cur, err := ethtool.ReadRSS(fd, req.Name)
			if err != nil {
				return err
			}
			c.Indir = ethtool.EqualIndir(len(cur.Indir), int(req.Equal))
		}
		var err error
		old, err = ethtool.SetRSS(fd, req.Name, c)
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	u := undo{Op: opSetRSS, Host: req.Host, Link: req.Name, Nic: &nicUndo{Indir: old.Indir, DefaultIndir: old.DefaultIndir, Key: old.Key, Hfunc: old.Hfunc}}
	return s.change(req.Group, u, nil)
}

// NicFlowHash reads the fields a device hashes a flow type on.
func (s *Server) NicFlowHash(_ context.Context, req *pb.NicFlowHashRequest) (*pb.NicFlowHashReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	var f string
	err = h.ethtoolDo(func(fd int) error {
		var err error
		f, err = ethtool.FlowHash(fd, req.Name, req.FlowType)
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	return &pb.NicFlowHashReply{Fields: f}, nil
}

// SetNicFlowHash sets the fields a device hashes a flow type on.
func (s *Server) SetNicFlowHash(_ context.Context, req *pb.NicFlowHashRequest) (*pb.ChangeReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	var old string
	err = h.ethtoolDo(func(fd int) error {
		var err error
		old, err = ethtool.SetFlowHash(fd, req.Name, req.FlowType, req.Fields)
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	return s.change(req.Group, undo{Op: opSetFlowHash, Host: req.Host, Link: req.Name, Nic: &nicUndo{Flow: req.FlowType, Fields: old}}, nil)
}

// AddNicNtuple adds an ntuple filter.
func (s *Server) AddNicNtuple(_ context.Context, req *pb.NicNtupleRequest) (*pb.NicNtupleReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if _, err := h.link(req.Name); err != nil {
		return nil, failed(err)
	}
	n := ethtool.Ntuple{Flow: req.FlowType, Queue: req.Queue, Drop: req.Drop}
	for _, a := range []struct {
		s   string
		to  *netip.Addr
		arg string
	}{{req.SrcIp, &n.Src, "src_ip"}, {req.DstIp, &n.Dst, "dst_ip"}} {
		if a.s == "" {
			continue
		}
		if *a.to, err = netip.ParseAddr(a.s); err != nil {
			return nil, invalid(fmt.Errorf("ntuple filter on %q: %s: %w", req.Name, a.arg, err))
		}
	}
	if req.SrcPort > 0xffff || req.DstPort > 0xffff {
		return nil, invalid(fmt.Errorf("ntuple filter on %q: port %d/%d above 65535", req.Name, req.SrcPort, req.DstPort))
	}
	n.SrcPort, n.DstPort = uint16(req.SrcPort), uint16(req.DstPort)
	var loc uint32
	err = h.ethtoolDo(func(fd int) error {
		var err error
		loc, err = ethtool.AddNtuple(fd, req.Name, n)
		return err
	})
	if err != nil {
		return nil, nicFailed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	r, err := s.change(req.Group, undo{Op: opDelNtuple, Host: req.Host, Link: req.Name, Nic: &nicUndo{Loc: loc}}, nil)
	if err != nil {
		return nil, err
	}
	return &pb.NicNtupleReply{Seq: r.Seq, Location: loc}, nil
}
