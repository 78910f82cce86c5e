package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/mptcp"
	"golang.org/x/sys/unix"
)

// MPTCP path manager endpoints and limits, through the mptcp_pm generic
// netlink family on the host's thread; each change journaled with its
// undo (see internal/mptcp).

// Undo operations of MPTCP changes (undo.Mptcp says what).
const (
	opMptcpDelEndpoint = "mptcp-del-endpoint"
	opMptcpSetLimits   = "mptcp-set-limits"
)

// mptcpUndo is an endpoint to delete (ID, with Addr to check it is
// still the one made) or limits to set back.
type mptcpUndo struct {
	ID     uint8         `json:",omitempty"`
	Addr   string        `json:",omitempty"`
	Limits *mptcp.Limits `json:",omitempty"`
}

func (m *mptcpUndo) String() string {
	switch {
	case m == nil:
		return "<none>"
	case m.Limits != nil:
		return fmt.Sprintf("limits subflows %d add_addr_accepted %d", m.Limits.Subflows, m.Limits.AddAddrAccepted)
	}
	return fmt.Sprintf("endpoint %s id %d", m.Addr, m.ID)
}

func endpointOf(h *host, e *pb.MptcpEndpoint) (mptcp.Endpoint, error) {
	if e == nil {
		return mptcp.Endpoint{}, errors.New("mptcp endpoint: none given")
	}
	a, err := netip.ParseAddr(e.Addr)
	if err != nil {
		return mptcp.Endpoint{}, fmt.Errorf("mptcp endpoint: address %q: %w", e.Addr, err)
	}
	if e.Id > 255 || e.Port > 65535 {
		return mptcp.Endpoint{}, fmt.Errorf("mptcp endpoint %s: id %d (0-255) or port %d (0-65535) out of range", e.Addr, e.Id, e.Port)
	}
	me := mptcp.Endpoint{ID: uint8(e.Id), Addr: a, Port: uint16(e.Port), Flags: e.Flags}
	if err := me.Validate(); err != nil {
		return mptcp.Endpoint{}, err
	}
	if e.Dev != "" && h != nil {
		l, err := h.nl.LinkByName(e.Dev)
		if err != nil {
			return mptcp.Endpoint{}, fmt.Errorf("mptcp endpoint %s: device %q on %s: %w", e.Addr, e.Dev, h.label(), err)
		}
		me.IfIndex = int32(l.Attrs().Index)
	}
	return me, nil
}

func pbEndpoint(h *host, e mptcp.Endpoint) *pb.MptcpEndpoint {
	p := &pb.MptcpEndpoint{Id: uint32(e.ID), Addr: e.Addr.String(), Port: uint32(e.Port), Flags: e.Flags}
	if e.IfIndex != 0 {
		if l, err := h.nl.LinkByIndex(int(e.IfIndex)); err == nil {
			p.Dev = l.Attrs().Name
		}
	}
	return p
}

// MptcpAddEndpoint adds a path manager endpoint.
func (s *Server) MptcpAddEndpoint(_ context.Context, req *pb.MptcpEndpointRequest) (*pb.MptcpEndpointReply, error) {
	if _, err := endpointOf(nil, req.Endpoint); err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	e, err := endpointOf(h, req.Endpoint)
	if err != nil {
		return nil, invalid(err)
	}
	var got mptcp.Endpoint
	err = h.do(func() (err error) { got, err = mptcp.AddEndpoint(e); return err })
	if err != nil {
		return nil, failed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	rep, err := s.change(req.Group, undo{Op: opMptcpDelEndpoint, Host: req.Host, Mptcp: &mptcpUndo{ID: got.ID, Addr: got.Addr.String()}}, nil)
	if err != nil {
		return nil, err
	}
	return &pb.MptcpEndpointReply{Seq: rep.Seq, Endpoint: pbEndpoint(h, got)}, nil
}

// MptcpSetLimits sets the path manager's limits.
func (s *Server) MptcpSetLimits(_ context.Context, req *pb.MptcpLimitsRequest) (*pb.ChangeReply, error) {
	l := mptcp.Limits{Subflows: req.Subflows, AddAddrAccepted: req.AddAddrAccepted}
	if err := l.Validate(); err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	var old mptcp.Limits
	err = h.do(func() (err error) { old, err = mptcp.SetLimits(l); return err })
	if err != nil {
		err = fmt.Errorf("on %s: %w", h.label(), err)
	}
	return s.change(req.Group, undo{Op: opMptcpSetLimits, Host: req.Host, Mptcp: &mptcpUndo{Limits: &old}}, err)
}

// MptcpState reads the endpoints and limits.
func (s *Server) MptcpState(_ context.Context, req *pb.HostRef) (*pb.MptcpStateReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	var eps []mptcp.Endpoint
	var l mptcp.Limits
	err = h.do(func() (err error) {
		if eps, err = mptcp.Endpoints(); err != nil {
			return err
		}
		l, err = mptcp.GetLimits()
		return err
	})
	if err != nil {
		return nil, failed(fmt.Errorf("on %s: %w", h.label(), err))
	}
	rep := &pb.MptcpStateReply{Subflows: l.Subflows, AddAddrAccepted: l.AddAddrAccepted}
	for _, e := range eps {
		rep.Endpoints = append(rep.Endpoints, pbEndpoint(h, e))
	}
	return rep, nil
}

// undoMptcp deletes an endpoint (one gone, or another in its id's place,
// is errNothingToUndo) or sets limits back.
func (h *host) undoMptcp(u undo) error {
	if u.Mptcp == nil {
		return fmt.Errorf("undo %s: nothing named", u.Op)
	}
	return h.do(func() error {
		if u.Op == opMptcpSetLimits {
			if u.Mptcp.Limits == nil {
				return fmt.Errorf("undo %s: no limits", u.Op)
			}
			_, err := mptcp.SetLimits(*u.Mptcp.Limits)
			return err
		}
		eps, err := mptcp.Endpoints()
		if err != nil {
			return err
		}
		for _, e := range eps {
			if e.ID == u.Mptcp.ID && e.Addr.String() == u.Mptcp.Addr {
				err := mptcp.DelEndpoint(e.ID)
				if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
					return nothingToUndo("%s has no mptcp %s", h.label(), u.Mptcp)
				}
				return err
			}
		}
		return nothingToUndo("%s has no mptcp %s", h.label(), u.Mptcp)
	})
}
