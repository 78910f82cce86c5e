package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/l2tp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// L2TP tunnels and sessions (issue 18) through the l2tp generic netlink
// family, each journaled with its deletion.

func init() {
	probeUserspace["l2tp_eth"] = func() (bool, string) { return probeL2tp("udp") }
	probeUserspace["l2tp_ip"] = func() (bool, string) { return probeL2tp("ip") }
}

// l2tpDo sends msg in the host's namespace.
func (h *host) l2tpDo(msg l2tp.Message) error {
	return h.do(func() error {
		fam, err := netlink.GenlFamilyGet(l2tp.GenlName)
		if err != nil {
			return fmt.Errorf("find the l2tp generic netlink family (module l2tp_netlink): %w", err)
		}
		r := nl.NewNetlinkRequest(int(fam.ID), unix.NLM_F_ACK)
		r.AddData(rawData(msg.Data))
		_, err = r.Execute(unix.NETLINK_GENERIC, 0)
		return err
	})
}

// undoL2tp applies an L2TP undo entry.
func (h *host) undoL2tp(u undo) error {
	var msg l2tp.Message
	var what string
	switch u.Op {
	case opDelL2tpTunnel:
		var t devices.L2tpTunnel
		if err := json.Unmarshal(u.Spec, &t); err != nil {
			return fmt.Errorf("undo entry %d: %s: %w", u.Seq, u.Spec, err)
		}
		msg, what = l2tp.TunnelDelete(t.TunnelID), t.String()
	case opDelL2tpSession:
		var s devices.L2tpSession
		if err := json.Unmarshal(u.Spec, &s); err != nil {
			return fmt.Errorf("undo entry %d: %s: %w", u.Seq, u.Spec, err)
		}
		msg, what = l2tp.SessionDelete(s.TunnelID, s.SessionID), s.String()
	default:
		return fmt.Errorf("undo entry %d: unknown operation %q", u.Seq, u.Op)
	}
	err := h.l2tpDo(msg)
	if gone(err) {
		return nothingToUndo("%s has no %s", h.label(), what)
	}
	if err != nil {
		return fmt.Errorf("delete %s on %s: %w", what, h.label(), err)
	}
	return nil
}

// L2TpAddTunnel adds an L2TP tunnel; its undo deletes it (and its
// sessions).
func (s *Server) L2TpAddTunnel(_ context.Context, req *pb.L2TpRequest) (*pb.ChangeReply, error) {
	var t devices.L2tpTunnel
	if err := strictJSON(req.Spec, &t); err != nil {
		return nil, invalid(fmt.Errorf("l2tp tunnel: %w", err))
	}
	msg, err := l2tp.TunnelCreate(t)
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if err = h.l2tpDo(msg); err != nil {
		err = fmt.Errorf("add %s on %s: %w", t, h.label(), err)
	}
	spec, _ := json.Marshal(t)
	return s.change(req.Group, undo{Op: opDelL2tpTunnel, Host: req.Host, Spec: spec}, err)
}

// L2TpAddSession adds an L2TP session; its undo deletes it.
func (s *Server) L2TpAddSession(_ context.Context, req *pb.L2TpRequest) (*pb.ChangeReply, error) {
	var se devices.L2tpSession
	if err := strictJSON(req.Spec, &se); err != nil {
		return nil, invalid(fmt.Errorf("l2tp session: %w", err))
	}
	msg, err := l2tp.SessionCreate(se)
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if err = h.l2tpDo(msg); err != nil {
		err = fmt.Errorf("add %s on %s: %w", se, h.label(), err)
	}
	// The cookies stay out of the journal, as keys do.
	se.Cookie, se.PeerCookie = nil, nil
	spec, _ := json.Marshal(se)
	return s.change(req.Group, undo{Op: opDelL2tpSession, Host: req.Host, Spec: spec}, err)
}

// probeL2tp makes an L2TP tunnel of encap with an Ethernet session in a
// throwaway namespace: it needs l2tp_netlink, l2tp_eth and, for encap
// ip, l2tp_ip.
func probeL2tp(encap string) (bool, string) {
	h, err := newNamespaceHost("l2tpprobe", false)
	if err != nil {
		return false, fmt.Sprintf("make a namespace: %v", err)
	}
	defer h.close()
	if err := h.setLoUp(); err != nil {
		return false, err.Error()
	}
	t := devices.L2tpTunnel{TunnelID: 1, PeerTunnelID: 1, Encap: encap, Local: "127.0.0.1", Remote: "127.0.0.1"}
	if encap == "udp" {
		t.SrcPort, t.DstPort = 1701, 1701
	}
	msg, err := l2tp.TunnelCreate(t)
	if err != nil {
		return false, err.Error()
	}
	if err := h.l2tpDo(msg); err != nil {
		return false, fmt.Sprintf("%s: %v", t, err)
	}
	se := devices.L2tpSession{TunnelID: 1, SessionID: 1, PeerSessionID: 1}
	msg, _ = l2tp.SessionCreate(se)
	if err := h.l2tpDo(msg); err != nil {
		return false, fmt.Sprintf("%s (module l2tp_eth): %v", se, err)
	}
	return true, ""
}
