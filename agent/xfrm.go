package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/lnst-go/lnst/agent/internal/nlspec"
	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// IPsec through xfrm netlink (issue 18): states and policies, each
// journaled with its deletion as undo. The undo entry holds the spec
// without its keys: a journal on disk holds no key material.

// The undo operations of issue 18's objects.
const (
	opDelXfrmState   = "del-xfrm-state"
	opDelXfrmPolicy  = "del-xfrm-policy"
	opDelL2tpTunnel  = "del-l2tp-tunnel"
	opDelL2tpSession = "del-l2tp-session"
)

// maxXfrmBatch bounds XfrmAddStates, as maxRoutesBatch bounds AddRoutes.
const maxXfrmBatch = 100000

func init() {
	for _, m := range []string{"XfrmAddState", "XfrmAddStates", "XfrmAddPolicy", "MacsecAdd", "L2tpAddTunnel", "L2tpAddSession"} {
		callKinds[m] = changes
	}
	callKinds["XfrmList"], callKinds["XfrmProbe"] = reads, reads
	probeLinks["xfrm"] = func(int) netlink.Link { return &netlink.Xfrmi{LinkAttrs: probeAttrs(), Ifid: 1} }
	for name := range xfrmProbeStates {
		probeUserspace[name] = func() (bool, string) { return probeXfrm(name) }
	}
	probeLinks["vti6"] = func(int) netlink.Link {
		return &netlink.Vti{LinkAttrs: probeAttrs(), Local: net.ParseIP("2001:db8::1"), Remote: net.ParseIP("2001:db8::2")}
	}
}

// issue18UndoString is String of the entries above.
func issue18UndoString(u undo) string {
	what := map[string]string{
		opDelXfrmState: "xfrm state", opDelXfrmPolicy: "xfrm policy",
		opDelL2tpTunnel: "l2tp tunnel", opDelL2tpSession: "l2tp session",
	}[u.Op]
	return fmt.Sprintf("remove %s %s on %s", what, u.Spec, hostLabel(u.Host))
}

// undoIssue18 applies an entry of the operations above.
func (h *host) undoIssue18(u undo) error {
	switch u.Op {
	case opDelXfrmState:
		var s devices.XfrmState
		if err := json.Unmarshal(u.Spec, &s); err != nil {
			return fmt.Errorf("undo entry %d: xfrm state %s: %w", u.Seq, u.Spec, err)
		}
		return h.delXfrmState(s)
	case opDelXfrmPolicy:
		var p devices.XfrmPolicy
		if err := json.Unmarshal(u.Spec, &p); err != nil {
			return fmt.Errorf("undo entry %d: xfrm policy %s: %w", u.Seq, u.Spec, err)
		}
		return h.delXfrmPolicy(p)
	}
	return h.undoL2tp(u)
}

// keyless is s with its keys dropped, as JSON: what the journal keeps.
func keyless(s devices.XfrmState) json.RawMessage {
	for _, a := range []**devices.XfrmAlgo{&s.Aead, &s.Crypt, &s.Auth, &s.Comp} {
		if *a != nil {
			c := **a
			c.Key = nil
			*a = &c
		}
	}
	b, _ := json.Marshal(s)
	return b
}

// gone reports whether err says the object to delete is not there.
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}

func (h *host) delXfrmState(s devices.XfrmState) error {
	id, err := nlspec.XfrmStateID(s)
	if err != nil {
		return err
	}
	err = h.do(func() error { return netlink.XfrmStateDel(id) })
	if gone(err) {
		return nothingToUndo("%s has no xfrm state %s", h.label(), s)
	}
	if err != nil {
		return fmt.Errorf("delete xfrm state %s on %s: %w", s, h.label(), err)
	}
	return nil
}

func (h *host) delXfrmPolicy(p devices.XfrmPolicy) error {
	np, err := nlspec.XfrmPolicy(p)
	if err != nil {
		return err
	}
	err = h.do(func() error { return netlink.XfrmPolicyDel(np) })
	if gone(err) {
		return nothingToUndo("%s has no xfrm policy %s", h.label(), p)
	}
	if err != nil {
		return fmt.Errorf("delete xfrm policy %s on %s: %w", p, h.label(), err)
	}
	return nil
}

// decodeXfrmState decodes and validates a state of a request.
func decodeXfrmState(b []byte) (devices.XfrmState, []nl.NetlinkRequestData, error) {
	var s devices.XfrmState
	if err := strictJSON(b, &s); err != nil {
		return s, nil, fmt.Errorf("xfrm state: %w", err)
	}
	msg, err := nlspec.XfrmStateMsg(s)
	return s, msg, err
}

// strictJSON decodes b into v, refusing fields v lacks.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// addXfrmState sends one XFRM_MSG_NEWSA in the host's namespace.
func (h *host) addXfrmState(s devices.XfrmState, msg []nl.NetlinkRequestData) error {
	err := h.do(func() error { return sendXfrm(nl.XFRM_MSG_NEWSA, msg) })
	if err != nil {
		return fmt.Errorf("add xfrm state %s on %s: %w%s", s, h.label(), err, xfrmHint(s, err))
	}
	return nil
}

// xfrmHint says what the kernel lacks when it refuses a state for want
// of an algorithm (ENOSYS, ENOENT) or a protocol (EPROTONOSUPPORT).
func xfrmHint(s devices.XfrmState, err error) string {
	var algos []string
	for _, a := range []*devices.XfrmAlgo{s.Aead, s.Crypt, s.Auth, s.Comp} {
		if a != nil {
			algos = append(algos, a.Name)
		}
	}
	switch {
	case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOENT):
		return fmt.Sprintf(" (no %s in this kernel's crypto)", strings.Join(algos, ", "))
	case errors.Is(err, unix.EPROTONOSUPPORT):
		mod := map[string]string{"esp": "esp", "ah": "ah", "comp": "ipcomp"}[s.Proto]
		v := map[int]string{4: "4", 6: "6"}[s.Family()]
		if s.Proto == "comp" && v == "4" {
			v = ""
		}
		return fmt.Sprintf(" (no %s for IPv%d in this kernel: module %s%s)", s.Proto, s.Family(), mod, v)
	}
	return ""
}

func sendXfrm(typ int, msg []nl.NetlinkRequestData) error {
	req := nl.NewNetlinkRequest(typ, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	for _, d := range msg {
		req.AddData(d)
	}
	_, err := req.Execute(unix.NETLINK_XFRM, 0)
	return err
}

// XfrmAddState adds an xfrm state; its undo deletes it.
func (s *Server) XfrmAddState(_ context.Context, req *pb.XfrmRequest) (*pb.ChangeReply, error) {
	st, msg, err := decodeXfrmState(req.Spec)
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	err = h.addXfrmState(st, msg)
	return s.change(req.Group, undo{Op: opDelXfrmState, Host: req.Host, Spec: keyless(st)}, err)
}

// XfrmAddStates adds many xfrm states, each journaled.
func (s *Server) XfrmAddStates(_ context.Context, req *pb.XfrmBatchRequest) (*pb.XfrmBatchReply, error) {
	if len(req.States) == 0 {
		return nil, invalid(errors.New("XfrmAddStates: no states given"))
	}
	if len(req.States) > maxXfrmBatch {
		return nil, invalid(fmt.Errorf("XfrmAddStates: %d states, more than %d in one call", len(req.States), maxXfrmBatch))
	}
	states := make([]devices.XfrmState, len(req.States))
	msgs := make([][]nl.NetlinkRequestData, len(req.States))
	for i, b := range req.States {
		var err error
		if states[i], msgs[i], err = decodeXfrmState(b); err != nil {
			return nil, invalid(fmt.Errorf("state %d: %w", i, err))
		}
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	reply := &pb.XfrmBatchReply{}
	var addErr error
	err = h.do(func() error {
		for i := range states {
			if err := sendXfrm(nl.XFRM_MSG_NEWSA, msgs[i]); err != nil {
				addErr = fmt.Errorf("add xfrm state %d (%s) on %s: %w", i, states[i], h.label(), err)
				return nil
			}
			seq, err := s.record(req.Group, undo{Op: opDelXfrmState, Host: req.Host, Spec: keyless(states[i])})
			reply.Seqs = append(reply.Seqs, seq)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if addErr != nil {
		return nil, failed(addErr)
	}
	return reply, nil
}

// XfrmAddPolicy adds an xfrm policy; its undo deletes it.
func (s *Server) XfrmAddPolicy(_ context.Context, req *pb.XfrmRequest) (*pb.ChangeReply, error) {
	var p devices.XfrmPolicy
	if err := strictJSON(req.Spec, &p); err != nil {
		return nil, invalid(fmt.Errorf("xfrm policy: %w", err))
	}
	np, err := nlspec.XfrmPolicy(p)
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if err = h.do(func() error { return netlink.XfrmPolicyAdd(np) }); err != nil {
		err = fmt.Errorf("add xfrm policy %s on %s: %w", p, h.label(), err)
	}
	spec, _ := json.Marshal(p)
	return s.change(req.Group, undo{Op: opDelXfrmPolicy, Host: req.Host, Spec: spec}, err)
}

// XfrmList reads the host's states, with counters and without keys, and
// policies.
func (s *Server) XfrmList(_ context.Context, req *pb.HostRef) (*pb.XfrmListReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	var states []netlink.XfrmState
	var policies []netlink.XfrmPolicy
	err = h.do(func() error {
		var err error
		if states, err = netlink.XfrmStateList(netlink.FAMILY_ALL); err != nil {
			return fmt.Errorf("list xfrm states: %w", err)
		}
		if policies, err = netlink.XfrmPolicyList(netlink.FAMILY_ALL); err != nil {
			return fmt.Errorf("list xfrm policies: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, failed(fmt.Errorf("%s: %w", h.label(), err))
	}
	r := &pb.XfrmListReply{}
	for _, st := range states {
		r.States = append(r.States, &pb.XfrmStateInfo{
			Spec:    keyless(nlspec.XfrmStateSpec(st)),
			Packets: st.Statistics.Packets, Bytes: st.Statistics.Bytes,
			ReplayWindow: st.Statistics.ReplayWindow, Replay: st.Statistics.Replay,
			IntegrityFailed: st.Statistics.Failed,
		})
	}
	for _, p := range policies {
		b, _ := json.Marshal(nlspec.XfrmPolicySpec(p))
		r.Policies = append(r.Policies, b)
	}
	return r, nil
}

// XfrmProbe tries a state in a throwaway namespace.
func (s *Server) XfrmProbe(_ context.Context, req *pb.XfrmRequest) (*pb.XfrmProbeReply, error) {
	st, msg, err := decodeXfrmState(req.Spec)
	if err != nil {
		return nil, invalid(err)
	}
	h, err := newNamespaceHost("xfrmprobe", false)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "xfrm probe: make a namespace: %v", err)
	}
	defer h.close()
	if err := h.addXfrmState(st, msg); err != nil {
		return &pb.XfrmProbeReply{Why: err.Error()}, nil
	}
	return &pb.XfrmProbeReply{Ok: true}, nil
}

// xfrmProbeStates are the IPsec kernel features Probe reports on (and
// lnsttest.Kernel takes), each with a state that needs it: the modules
// esp4, esp6, ah4, ah6, ipcomp, ipcomp6, and the AEAD rfc4106(gcm(aes))
// in the kernel's crypto.
var xfrmProbeStates = func() map[string]devices.XfrmState {
	cbc := func(s devices.XfrmState) devices.XfrmState {
		s.Crypt = &devices.XfrmAlgo{Name: "cbc(aes)", Key: make([]byte, 16)}
		s.Auth = &devices.XfrmAlgo{Name: "hmac(sha256)", Key: make([]byte, 32)}
		return s
	}
	ah := func(s devices.XfrmState) devices.XfrmState {
		s.Auth = &devices.XfrmAlgo{Name: "hmac(sha256)", Key: make([]byte, 32)}
		return s
	}
	comp := func(s devices.XfrmState) devices.XfrmState {
		s.Comp = &devices.XfrmAlgo{Name: "deflate"}
		return s
	}
	v4 := devices.XfrmState{Src: "198.18.0.1", Dst: "198.18.0.2", SPI: 0x100, Mode: "transport"}
	v6 := devices.XfrmState{Src: "2001:db8::1", Dst: "2001:db8::2", SPI: 0x100, Mode: "transport"}
	with := func(s devices.XfrmState, proto string) devices.XfrmState { s.Proto = proto; return s }
	gcm := with(v4, "esp")
	gcm.Aead = &devices.XfrmAlgo{Name: "rfc4106(gcm(aes))", Key: make([]byte, 20)}
	return map[string]devices.XfrmState{
		"esp4": cbc(with(v4, "esp")), "esp6": cbc(with(v6, "esp")),
		"ah4": ah(with(v4, "ah")), "ah6": ah(with(v6, "ah")),
		"ipcomp": comp(with(v4, "comp")), "ipcomp6": comp(with(v6, "comp")),
		"rfc4106(gcm(aes))": gcm,
	}
}()

// probeXfrm tries the state of feature name in a throwaway namespace.
func probeXfrm(name string) (bool, string) {
	s := xfrmProbeStates[name]
	msg, err := nlspec.XfrmStateMsg(s)
	if err != nil {
		return false, err.Error()
	}
	h, err := newNamespaceHost("xfrmprobe", false)
	if err != nil {
		return false, fmt.Sprintf("make a namespace: %v", err)
	}
	defer h.close()
	if err := h.addXfrmState(s, msg); err != nil {
		return false, err.Error()
	}
	return true, ""
}
