package lnsttest

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"github.com/lnst-go/lnst/devices/nft"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/mptcp"
)

// nftRequest checks spec and makes the request carrying it.
func (h *Host) nftRequest(t testing.TB, what string, spec any, validate error) *pb.NftRequest {
	t.Helper()
	if validate != nil {
		t.Fatalf("%s: %s: %v", h.name, what, validate)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatalf("%s: %s: %v", h.name, what, err)
	}
	return &pb.NftRequest{Host: h.id, Group: h.s.state(t).group, Spec: b}
}

// NftAddTable adds an nftables table; cleanup deletes it with everything
// in it. A table of that name already there fails the test.
func (h *Host) NftAddTable(t testing.TB, table nft.Table) {
	t.Helper()
	what := "add nft table " + table.String()
	req := h.nftRequest(t, what, table, table.Validate())
	r, err := h.client.NftAddTable(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: %s: %v", h.name, what, err)
	}
	h.s.state(t).undoAt(t, h.client, "nft table "+table.String()+" on "+h.name, r.Seq)
}

// NftAddChain adds a chain to a table this test made (NftAddTable; the
// agent refuses any other table: a recipe alters only its own); cleanup
// deletes it with its rules.
func (h *Host) NftAddChain(t testing.TB, chain nft.Chain) {
	t.Helper()
	what := "add nft chain " + chain.String()
	req := h.nftRequest(t, what, chain, chain.Validate())
	r, err := h.client.NftAddChain(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: %s: %v", h.name, what, err)
	}
	h.s.state(t).undoAt(t, h.client, "nft chain "+chain.String()+" on "+h.name, r.Seq)
}

// NftAddRules appends rules to a chain of a table this test made (in
// batches: thousands are fine); cleanup deletes them.
func (h *Host) NftAddRules(t testing.TB, chain nft.Chain, rules ...nft.Rule) {
	t.Helper()
	what := fmt.Sprintf("add %d nft rules to %s", len(rules), chain)
	err := chain.Validate()
	for i, r := range rules {
		if err != nil {
			break
		}
		if err = r.Validate(chain.Family); err != nil {
			err = fmt.Errorf("rule %d (%s): %w", i, r, err)
		}
	}
	req := h.nftRequest(t, what, nft.Rules{Chain: chain, Rules: rules}, err)
	r, err := h.client.NftAddRules(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: %s: %v", h.name, what, err)
	}
	h.s.state(t).undoAt(t, h.client, fmt.Sprintf("%d nft rules of %s on %s", len(rules), chain, h.name), r.Seq)
}

// NftRules reads a chain's rules back with their counters, in order.
func (h *Host) NftRules(t testing.TB, chain nft.Chain) []nft.RuleState {
	t.Helper()
	what := "read nft rules of " + chain.String()
	req := h.nftRequest(t, what, chain, chain.Validate())
	r, err := h.client.NftRules(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: %s: %v", h.name, what, err)
	}
	l := make([]nft.RuleState, len(r.Rules))
	for i, x := range r.Rules {
		l[i] = nft.RuleState{Handle: x.Handle, Counter: x.Counter, Packets: x.Packets, Bytes: x.Bytes}
	}
	return l
}

// ConntrackStats are a host's conntrack entry count and counters.
type ConntrackStats struct {
	// Count is the number of entries now (nf_conntrack_count).
	Count uint64
	// Counters are the per-CPU counters of /proc/net/stat/nf_conntrack
	// summed, by its column names: "insert", "insert_failed", "drop",
	// "early_drop", "invalid", "found", ...
	Counters map[string]uint64
}

// ConntrackStats reads the host's conntrack count and counters. A host
// without conntrack loaded fails the test. (The conntrack sysctls,
// net.netfilter.nf_conntrack_*, are set and restored by Sysctl.)
func (h *Host) ConntrackStats(t testing.TB) ConntrackStats {
	t.Helper()
	r, err := h.client.ConntrackStats(rpcCtx(t), &pb.HostRef{Host: h.id})
	if err != nil {
		t.Fatalf("%s: read conntrack stats: %v", h.name, err)
	}
	return ConntrackStats{Count: r.Count, Counters: r.Counters}
}

// MptcpEndpoint is an MPTCP path manager endpoint.
type MptcpEndpoint struct {
	// ID is the endpoint's id; 0 lets the kernel choose.
	ID int
	// Addr is its address; required.
	Addr string
	// Port is a port to announce with a signal endpoint; 0 is none.
	Port int
	// Flags are "signal", "subflow", "backup", "fullmesh".
	Flags []string
	// Dev is the device the endpoint is on; nil is any.
	Dev *Device
}

func (e MptcpEndpoint) String() string {
	s := e.Addr
	if e.ID != 0 {
		s += fmt.Sprintf(" id %d", e.ID)
	}
	for _, f := range e.Flags {
		s += " " + f
	}
	return s
}

// MptcpAddEndpoint adds a path manager endpoint and returns its id;
// cleanup deletes it.
func (h *Host) MptcpAddEndpoint(t testing.TB, e MptcpEndpoint) int {
	t.Helper()
	a, err := netip.ParseAddr(e.Addr)
	if err == nil && (e.ID < 0 || e.ID > 255 || e.Port < 0 || e.Port > 65535) {
		err = fmt.Errorf("id %d (0-255) or port %d (0-65535) out of range", e.ID, e.Port)
	}
	if err == nil {
		err = mptcp.Endpoint{ID: uint8(e.ID), Addr: a, Port: uint16(e.Port), Flags: e.Flags}.Validate()
	}
	if err != nil {
		t.Fatalf("%s: add mptcp endpoint %s: %v", h.name, e, err)
	}
	pe := &pb.MptcpEndpoint{Id: uint32(e.ID), Addr: e.Addr, Port: uint32(e.Port), Flags: e.Flags}
	if e.Dev != nil {
		pe.Dev = e.Dev.Name()
	}
	st := h.s.state(t)
	r, err := h.client.MptcpAddEndpoint(rpcCtx(t), &pb.MptcpEndpointRequest{Host: h.id, Group: st.group, Endpoint: pe})
	if err != nil {
		t.Fatalf("%s: add mptcp endpoint %s: %v", h.name, e, err)
	}
	st.undoAt(t, h.client, "mptcp endpoint "+e.String()+" on "+h.name, r.Seq)
	return int(r.Endpoint.Id)
}

// MptcpSetLimits sets the path manager's limits: the most extra
// subflows of a connection and the most addresses announced by the peer
// it accepts (each 0-8); cleanup sets the old ones back.
func (h *Host) MptcpSetLimits(t testing.TB, subflows, addAddrAccepted int) {
	t.Helper()
	if subflows < 0 || addAddrAccepted < 0 || subflows > mptcp.MaxLimit || addAddrAccepted > mptcp.MaxLimit {
		t.Fatalf("%s: mptcp limits subflows %d, add_addr_accepted %d: each must be 0-%d", h.name, subflows, addAddrAccepted, mptcp.MaxLimit)
	}
	st := h.s.state(t)
	r, err := h.client.MptcpSetLimits(rpcCtx(t), &pb.MptcpLimitsRequest{Host: h.id, Group: st.group, Subflows: uint32(subflows), AddAddrAccepted: uint32(addAddrAccepted)})
	if err != nil {
		t.Fatalf("%s: set mptcp limits: %v", h.name, err)
	}
	st.undoAt(t, h.client, fmt.Sprintf("mptcp limits subflows %d add_addr_accepted %d on %s", subflows, addAddrAccepted, h.name), r.Seq)
}

// MptcpState reads the host's path manager endpoints and limits.
func (h *Host) MptcpState(t testing.TB) (endpoints []MptcpEndpoint, subflows, addAddrAccepted int) {
	t.Helper()
	r, err := h.client.MptcpState(rpcCtx(t), &pb.HostRef{Host: h.id})
	if err != nil {
		t.Fatalf("%s: read mptcp state: %v", h.name, err)
	}
	for _, e := range r.Endpoints {
		me := MptcpEndpoint{ID: int(e.Id), Addr: e.Addr, Port: int(e.Port), Flags: e.Flags}
		endpoints = append(endpoints, me)
	}
	return endpoints, int(r.Subflows), int(r.AddAddrAccepted)
}
