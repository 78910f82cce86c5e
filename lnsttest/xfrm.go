package lnsttest

import (
	"encoding/json"
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// XfrmStateInfo is an xfrm state as the kernel lists it (keys left out)
// with its counters.
type XfrmStateInfo struct {
	devices.XfrmState
	// Packets and Bytes went through the state.
	Packets, Bytes uint64
	// ReplayWindow, Replay and IntegrityFailed are the kernel's error
	// counters: packets dropped out of the replay window, replayed, and
	// failing the integrity check.
	ReplayWindow, Replay, IntegrityFailed uint32
}

// AddXfrmState adds an IPsec security association (ip xfrm state add)
// and deletes it when the test ends (also on lease expiry and after an
// agent crash: the agent journals it, without its keys). s is validated
// first (see devices.XfrmState.Validate).
func (h *Host) AddXfrmState(t testing.TB, s devices.XfrmState) {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatalf("%s: add xfrm state: %v", h.name, err)
	}
	st := h.s.state(t)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("%s: add xfrm state %s: %v", h.name, s, err)
	}
	r, err := h.client.XfrmAddState(rpcCtx(t), &pb.XfrmRequest{Host: h.id, Group: st.group, Kind: "state", Spec: b})
	if err != nil {
		t.Fatalf("%s: add xfrm state %s: %v", h.name, s, err)
	}
	st.logger().Debug("added xfrm state", "host", h.name, "state", s.String())
	st.undoAt(t, h.client, "xfrm state "+s.String()+" on "+h.name, r.Seq)
}

// AddXfrmStates adds many states in one call to the agent, each deleted
// when the test ends.
func (h *Host) AddXfrmStates(t testing.TB, states []devices.XfrmState) {
	t.Helper()
	if len(states) == 0 {
		return
	}
	st := h.s.state(t)
	req := &pb.XfrmBatchRequest{Host: h.id, Group: st.group, States: make([][]byte, len(states))}
	for i, s := range states {
		if err := s.Validate(); err != nil {
			t.Fatalf("%s: add xfrm state %d: %v", h.name, i, err)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("%s: add xfrm state %s: %v", h.name, s, err)
		}
		req.States[i] = b
	}
	r, err := h.client.XfrmAddStates(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: add %d xfrm states: %v", h.name, len(states), err)
	}
	if len(r.Seqs) > 0 {
		st.undoAt(t, h.client, "xfrm states on "+h.name, r.Seqs[0])
	}
}

// AddXfrmPolicy adds an IPsec security policy (ip xfrm policy add) and
// deletes it when the test ends.
func (h *Host) AddXfrmPolicy(t testing.TB, p devices.XfrmPolicy) {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("%s: add xfrm policy: %v", h.name, err)
	}
	st := h.s.state(t)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("%s: add xfrm policy %s: %v", h.name, p, err)
	}
	r, err := h.client.XfrmAddPolicy(rpcCtx(t), &pb.XfrmRequest{Host: h.id, Group: st.group, Kind: "policy", Spec: b})
	if err != nil {
		t.Fatalf("%s: add xfrm policy %s: %v", h.name, p, err)
	}
	st.logger().Debug("added xfrm policy", "host", h.name, "policy", p.String())
	st.undoAt(t, h.client, "xfrm policy "+p.String()+" on "+h.name, r.Seq)
}

// Xfrm reads the host's xfrm states (with counters) and policies.
func (h *Host) Xfrm(t testing.TB) ([]XfrmStateInfo, []devices.XfrmPolicy) {
	t.Helper()
	r, err := h.client.XfrmList(rpcCtx(t), &pb.HostRef{Host: h.id})
	if err != nil {
		t.Fatalf("%s: list xfrm: %v", h.name, err)
	}
	states, policies, err := xfrmFromReply(r)
	if err != nil {
		t.Fatalf("%s: list xfrm: %v", h.name, err)
	}
	return states, policies
}

func xfrmFromReply(r *pb.XfrmListReply) ([]XfrmStateInfo, []devices.XfrmPolicy, error) {
	var states []XfrmStateInfo
	for _, s := range r.States {
		info := XfrmStateInfo{Packets: s.Packets, Bytes: s.Bytes, ReplayWindow: s.ReplayWindow, Replay: s.Replay, IntegrityFailed: s.IntegrityFailed}
		if err := json.Unmarshal(s.Spec, &info.XfrmState); err != nil {
			return nil, nil, err
		}
		states = append(states, info)
	}
	var policies []devices.XfrmPolicy
	for _, b := range r.Policies {
		var p devices.XfrmPolicy
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, nil, err
		}
		policies = append(policies, p)
	}
	return states, policies, nil
}

// XfrmSupports reports whether the host's kernel takes state s (its
// protocol, mode and algorithms), tried in a throwaway namespace; when
// not, why is the kernel's refusal. A recipe skips on it naming what is
// missing ("no rfc4106(gcm(aes)) in this kernel's crypto").
func (h *Host) XfrmSupports(t testing.TB, s devices.XfrmState) (ok bool, why string) {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("%s: probe xfrm state %s: %v", h.name, s, err)
	}
	r, err := h.client.XfrmProbe(rpcCtx(t), &pb.XfrmRequest{Host: h.id, Kind: "state", Spec: b})
	if err != nil {
		t.Fatalf("%s: probe xfrm state %s: %v", h.name, s, err)
	}
	return r.Ok, r.Why
}
