package agent

import (
	"encoding/json"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestRSSVethUnimplemented: a veth has no RSS, flow hashing or ntuple
// filters; each call answers Unimplemented naming the device, bad
// arguments InvalidArgument, and nothing is journaled.
func TestRSSVethUnimplemented(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testSh(t, c, "h1", "ip link add veth0 type veth peer name veth1")
	_, err := c.NicRss(ctx, &pb.LinkRef{Host: "h1", Name: "veth0"})
	testCode(t, err, codes.Unimplemented, "read RSS of veth0", "on host h1")
	_, err = c.SetNicRss(ctx, &pb.NicRssRequest{Host: "h1", Group: "g", Name: "veth0", Equal: 1})
	testCode(t, err, codes.Unimplemented, "veth0")
	_, err = c.SetNicRss(ctx, &pb.NicRssRequest{Host: "h1", Group: "g", Name: "veth0", Equal: 1, DefaultIndir: true})
	testCode(t, err, codes.InvalidArgument, "one of a table, equal and default_indir")
	_, err = c.SetNicRss(ctx, &pb.NicRssRequest{Host: "h1", Group: "g", Name: "veth0"})
	testCode(t, err, codes.InvalidArgument, "nothing to change")
	_, err = c.NicFlowHash(ctx, &pb.NicFlowHashRequest{Host: "h1", Name: "veth0", FlowType: "tcp4"})
	testCode(t, err, codes.Unimplemented, "rx-flow-hash tcp4 of veth0")
	_, err = c.SetNicFlowHash(ctx, &pb.NicFlowHashRequest{Host: "h1", Group: "g", Name: "veth0", FlowType: "tcp4", Fields: "sdfn"})
	testCode(t, err, codes.Unimplemented, "veth0")
	_, err = c.AddNicNtuple(ctx, &pb.NicNtupleRequest{Host: "h1", Group: "g", Name: "veth0", FlowType: "tcp4", DstPort: 5201, Queue: 1})
	testCode(t, err, codes.Unimplemented, "ntuple filter of veth0")
	_, err = c.AddNicNtuple(ctx, &pb.NicNtupleRequest{Host: "h1", Group: "g", Name: "veth0", FlowType: "tcp4", DstIp: "198.18.0.300"})
	testCode(t, err, codes.InvalidArgument, "dst_ip")
	testRestoreClean(t, c, &log, "g", 0)
}

// TestNicUndoJournal: RSS, flow hash and ntuple undos go to disk and come
// back as they were (what a successor agent replays).
func TestNicUndoJournal(t *testing.T) {
	for _, u := range []undo{
		{Op: opSetRSS, Link: "eth1", Nic: &nicUndo{Indir: []uint32{0, 1, 0, 1}, Key: []byte{1, 2, 3}, Hfunc: "toeplitz"}},
		{Op: opSetRSS, Link: "eth1", Nic: &nicUndo{DefaultIndir: true}},
		{Op: opSetFlowHash, Link: "eth1", Nic: &nicUndo{Flow: "udp4", Fields: "sd"}},
		{Op: opDelNtuple, Link: "eth1", Nic: &nicUndo{Loc: 1023}},
		{Op: opIrqAffinity, Key: "38", Value: "0-1"},
	} {
		testJSONRoundTrip(t, u)
	}
}

// testJSONRoundTrip checks that u comes back from its journal encoding
// as it was, and that it has a description.
func testJSONRoundTrip(t *testing.T, u undo) {
	t.Helper()
	b, err := json.Marshal(u)
	require.NoError(t, err)
	var back undo
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, u, back)
	assert.NotContains(t, u.String(), "unknown")
}
