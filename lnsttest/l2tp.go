package lnsttest

import (
	"encoding/json"
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// AddL2tpTunnel adds an L2TPv3 tunnel (ip l2tp add tunnel) and deletes
// it, with its sessions, when the test ends.
func (h *Host) AddL2tpTunnel(t testing.TB, tun devices.L2tpTunnel) {
	t.Helper()
	if err := tun.Validate(); err != nil {
		t.Fatalf("%s: add l2tp tunnel: %v", h.name, err)
	}
	st := h.s.state(t)
	b, err := json.Marshal(tun)
	if err != nil {
		t.Fatalf("%s: add %s: %v", h.name, tun, err)
	}
	r, err := h.client.L2TpAddTunnel(rpcCtx(t), &pb.L2TpRequest{Host: h.id, Group: st.group, Spec: b})
	if err != nil {
		t.Fatalf("%s: add %s: %v", h.name, tun, err)
	}
	st.undoAt(t, h.client, tun.String()+" on "+h.name, r.Seq)
}

// AddL2tpSession adds an Ethernet pseudowire session to a tunnel (ip
// l2tp add session) and returns its device (s.Name, which must be set);
// the session goes when the test ends.
func (h *Host) AddL2tpSession(t testing.TB, s devices.L2tpSession) *Device {
	t.Helper()
	if s.Name == "" {
		t.Fatalf("%s: add %s: give the session's device a Name", h.name, s)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("%s: add l2tp session: %v", h.name, err)
	}
	st := h.s.state(t)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("%s: add %s: %v", h.name, s, err)
	}
	r, err := h.client.L2TpAddSession(rpcCtx(t), &pb.L2TpRequest{Host: h.id, Group: st.group, Spec: b})
	if err != nil {
		t.Fatalf("%s: add %s: %v", h.name, s, err)
	}
	st.undoAt(t, h.client, s.String()+" on "+h.name, r.Seq)
	return h.device(s.Name)
}
