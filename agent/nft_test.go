package agent

import (
	"os/exec"
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestNftRestored adds a table, a base chain and rules, sees them as nft
// lists them, and restores them away; rules into a chain the test did
// not make are refused.
func TestNftRestored(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("requires the nft command to read the ruleset back")
	}
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	add := func(f func(*pb.NftRequest) error, v any) error {
		return f(&pb.NftRequest{Host: "h1", Group: "g", Spec: xfrmJSON(t, v)})
	}
	addTable := func(r *pb.NftRequest) error { _, err := c.NftAddTable(ctx, r); return err }
	addChain := func(r *pb.NftRequest) error { _, err := c.NftAddChain(ctx, r); return err }
	addRules := func(r *pb.NftRequest) error { _, err := c.NftAddRules(ctx, r); return err }

	require.NoError(t, add(addTable, devices.NftTable{Family: "inet", Name: "lnst"}))
	require.NoError(t, add(addChain, devices.NftChain{Family: "inet", Table: "lnst", Name: "input", Hook: "input", Policy: "accept"}))
	require.NoError(t, add(addRules, devices.NftRules{Family: "inet", Table: "lnst", Chain: "input", Rules: []devices.NftRule{
		{Src: "198.18.187.0/24", Proto: "tcp", DPort: 5201, Counter: true, Verdict: "drop"},
		{Dst: "2001:db8:187::/64", Verdict: "accept"},
		{Proto: "udp", DPort: 9, Counter: true},
	}}))
	out := testSh(t, c, "h1", "nft list ruleset")
	assert.Contains(t, out, "table inet lnst")
	assert.Contains(t, out, "type filter hook input priority filter; policy accept;")
	assert.Contains(t, out, "ip saddr 198.18.187.0/24 tcp dport 5201 counter packets 0 bytes 0 drop")
	assert.Contains(t, out, "ip6 daddr 2001:db8:187::/64 accept")
	assert.Contains(t, out, "udp dport 9 counter packets 0 bytes 0")

	// A table the test did not make takes no rules, and adding an
	// existing table (which nft would take silently) is refused.
	testSh(t, c, "h1", "nft add table ip other; nft add chain ip other c")
	err := add(addRules, devices.NftRules{Family: "ip", Table: "other", Chain: "c", Rules: []devices.NftRule{{Verdict: "drop"}}})
	testCode(t, err, codes.InvalidArgument, "not of a table or chain this test made")
	err = add(addTable, devices.NftTable{Family: "ip", Name: "other"})
	testCode(t, err, codes.Aborted, "add nft table ip other", "file exists")
	// A chain of its own in that table is the test's, with its rules.
	require.NoError(t, add(addChain, devices.NftChain{Family: "ip", Table: "other", Name: "mine"}))
	require.NoError(t, add(addRules, devices.NftRules{Family: "ip", Table: "other", Chain: "mine", Rules: []devices.NftRule{{Dst: "198.18.188.1/32", Verdict: "accept"}}}))

	testCode(t, add(addRules, devices.NftRules{Family: "ip", Table: "lnst", Chain: "input", Rules: []devices.NftRule{{Dst: "2001:db8::/64"}}}),
		codes.InvalidArgument, "does not fit a table of family ip")

	testRestoreClean(t, c, &log, "g", 3)
	out = testSh(t, c, "h1", "nft list ruleset")
	assert.NotContains(t, out, "lnst")
	assert.NotContains(t, out, "chain mine")
	assert.Contains(t, out, "table ip other", "the table the test did not make stays")
	testSh(t, c, "h1", "nft delete table ip other")
}
