package agent

import (
	"os/exec"
	"testing"

	"github.com/lnst-go/lnst/devices/nft"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestNftRestored adds a table, a base chain and rules, sees them as nft
// lists them, and restores them away. A group alters only tables it
// made: chains and rules for a table the host had, or another group's,
// are refused, and so is a table that exists already; the host's table
// stays after the restore.
func TestNftRestored(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("requires the nft command to read the ruleset back")
	}
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	req := func(group string, v any) *pb.NftRequest {
		return &pb.NftRequest{Host: "h1", Group: group, Spec: xfrmJSON(t, v)}
	}
	addTable := func(g string, v any) error { _, err := c.NftAddTable(ctx, req(g, v)); return err }
	addChain := func(g string, v any) error { _, err := c.NftAddChain(ctx, req(g, v)); return err }
	addRules := func(g string, v any) error { _, err := c.NftAddRules(ctx, req(g, v)); return err }

	input := nft.Chain{Family: "inet", Table: "lnst", Name: "input", Hook: "input", Policy: "accept"}
	require.NoError(t, addTable("g", nft.Table{Family: "inet", Name: "lnst"}))
	require.NoError(t, addChain("g", input))
	require.NoError(t, addRules("g", nft.Rules{Chain: input, Rules: []nft.Rule{
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

	// A table the host had takes no chain and no rules from the test,
	// and adding it (which nft add would take silently, and whose undo
	// would delete it) is refused.
	testSh(t, c, "h1", "nft add table ip other; nft add chain ip other c")
	other := nft.Chain{Family: "ip", Table: "other", Name: "c"}
	testCode(t, addRules("g", nft.Rules{Chain: other, Rules: []nft.Rule{{Verdict: "drop"}}}),
		codes.InvalidArgument, "table ip other is not one this test made")
	testCode(t, addChain("g", nft.Chain{Family: "ip", Table: "other", Name: "mine"}),
		codes.InvalidArgument, "table ip other is not one this test made")
	testCode(t, addTable("g", nft.Table{Family: "ip", Name: "other"}), codes.Aborted, "add nft table ip other", "file exists")
	// Nor does another group's table.
	testCode(t, addRules("g2", nft.Rules{Chain: input, Rules: []nft.Rule{{Verdict: "drop"}}}),
		codes.InvalidArgument, "table inet lnst is not one this test made")
	testCode(t, addChain("g2", nft.Chain{Family: "inet", Table: "lnst", Name: "theirs"}),
		codes.InvalidArgument, "table inet lnst is not one this test made")
	// The same name in another family is another table.
	testCode(t, addChain("g", nft.Chain{Family: "ip", Table: "lnst", Name: "c"}),
		codes.InvalidArgument, "table ip lnst is not one this test made")

	// A spec field the type lacks is an error, not a match left out.
	_, err := c.NftAddRules(ctx, &pb.NftRequest{Host: "h1", Group: "g",
		Spec: []byte(`{"chain":{"family":"inet","table":"lnst","name":"input"},"rules":[{"dport":22,"prot":"tcp"}]}`)})
	testCode(t, err, codes.InvalidArgument, "unknown field", "prot")
	testCode(t, addRules("g", nft.Rules{Chain: nft.Chain{Family: "ip", Table: "lnst", Name: "input"}, Rules: []nft.Rule{{Dst: "2001:db8::/64"}}}),
		codes.InvalidArgument, "IPv6")

	testRestoreClean(t, c, &log, "g", 3)
	out = testSh(t, c, "h1", "nft list ruleset")
	assert.NotContains(t, out, "lnst")
	assert.Contains(t, out, "table ip other", "the table the test did not make stays")
	assert.Contains(t, out, "chain c", "with its chain")
	testSh(t, c, "h1", "nft delete table ip other")
}

func TestParseConntrackStat(t *testing.T) {
	s := `entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
00000003  00000000 00000000 00000000 00000002 00000000 00000000 00000000 0000000a 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000
00000003  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000010 00000001 00000000 00000000 00000000  00000000 00000000 00000000 00000000
`
	m, err := parseConntrackStat(s)
	require.NoError(t, err)
	assert.Equal(t, uint64(26), m["insert"])
	assert.Equal(t, uint64(1), m["insert_failed"])
	assert.Equal(t, uint64(2), m["invalid"])
	assert.NotContains(t, m, "entries", "the same count on each line: not a sum")
	_, err = parseConntrackStat("entries insert\n1\n")
	assert.ErrorContains(t, err, "columns")
	_, err = parseConntrackStat("entries insert\n1 zz\n")
	assert.ErrorContains(t, err, "insert")
}

func TestUndoStringNftMptcp(t *testing.T) {
	u := undo{Op: opNftDelRules, Host: "h1", Nft: &nftUndo{Table: "lnst", Chain: "fwd", Handles: []uint64{4, 5}}}
	assert.Equal(t, `delete nft table inet lnst chain fwd (2 rules) on host "h1"`, u.String())
	u = undo{Op: opMptcpDelEndpoint, Host: "h1", Mptcp: &mptcpUndo{ID: 2, Addr: "198.18.2.1"}}
	assert.Equal(t, `delete mptcp endpoint 198.18.2.1 id 2 on host "h1"`, u.String())
}
