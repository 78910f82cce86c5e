package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
