package lnsttest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc"
)

// AddNftTable adds an nftables table (nft add table) and deletes it, with
// its chains and rules, when the test ends. A table that exists already
// fails: its deletion would take what the test did not make.
func (h *Host) AddNftTable(t testing.TB, tab devices.NftTable) {
	t.Helper()
	h.nftChange(t, "nft table "+tab.String(), tab, tab.Validate, h.client.NftAddTable, true)
}

// AddNftChain adds a chain (a base chain with Hook, or a regular one)
// and deletes it when the test ends.
func (h *Host) AddNftChain(t testing.TB, c devices.NftChain) {
	t.Helper()
	h.nftChange(t, "nft chain "+c.String(), c, c.Validate, h.client.NftAddChain, true)
}

// AddNftRules appends rules, in one batch, to a chain of a table or a
// chain this test made: they go with it.
func (h *Host) AddNftRules(t testing.TB, r devices.NftRules) {
	t.Helper()
	h.nftChange(t, "nft rules of "+r.Family+" "+r.Table+" "+r.Chain, r, r.Validate, h.client.NftAddRules, false)
}

func (h *Host) nftChange(t testing.TB, what string, v any, validate func() error,
	call func(ctx context.Context, in *pb.NftRequest, opts ...grpc.CallOption) (*pb.ChangeReply, error), journaled bool) {
	t.Helper()
	if err := validate(); err != nil {
		t.Fatalf("%s: add %s: %v", h.name, what, err)
	}
	st := h.s.state(t)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: add %s: %v", h.name, what, err)
	}
	r, err := call(rpcCtx(t), &pb.NftRequest{Host: h.id, Group: st.group, Spec: b})
	if err != nil {
		t.Fatalf("%s: add %s: %v", h.name, what, err)
	}
	if journaled {
		st.undoAt(t, h.client, what+" on "+h.name, r.Seq)
	}
}
