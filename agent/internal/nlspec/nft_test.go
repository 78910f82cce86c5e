package nlspec

import (
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/lnst-go/lnst/devices"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNftRuleExprs(t *testing.T) {
	cmp := func(b ...byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
	// ip saddr 198.18.1.0/24 tcp dport 5201 counter drop, in an inet
	// table: nfproto first, then the masked address, l4proto, port.
	got := NftRuleExprs("inet", devices.NftRule{Src: "198.18.1.0/24", Proto: "tcp", DPort: 5201, Counter: true, Verdict: "drop"})
	want := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp(2),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 255, 255, 0}, Xor: []byte{0, 0, 0, 0}},
		cmp(198, 18, 1, 0),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp(6),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, cmp(0x14, 0x51),
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
	assert.Equal(t, want, got)

	// ip6 daddr 2001:db8::1/128 accept in an ip6 table: no nfproto, no
	// mask for a whole address; the destination at offset 24.
	got = NftRuleExprs("ip6", devices.NftRule{Dst: "2001:db8::1/128", Verdict: "accept"})
	require.Len(t, got, 3)
	assert.Equal(t, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}, got[0])
	assert.Equal(t, &expr.Verdict{Kind: expr.VerdictAccept}, got[2])
}

func TestNftChainAndValidation(t *testing.T) {
	c, err := NftChain(devices.NftChain{Family: "ip", Table: "t", Name: "in", Hook: "input", Priority: -5, Policy: "drop"})
	require.NoError(t, err)
	assert.Equal(t, nftables.ChainHookInput, c.Hooknum)
	assert.Equal(t, nftables.ChainPolicyDrop, *c.Policy)
	assert.Equal(t, nftables.ChainPriority(-5), *c.Priority)
	assert.Equal(t, nftables.TableFamilyIPv4, c.Table.Family)
	reg, err := NftChain(devices.NftChain{Family: "inet", Table: "t", Name: "sub"})
	require.NoError(t, err)
	assert.Nil(t, reg.Hooknum, "a regular chain has no hook")

	for _, tc := range []struct {
		err  error
		want string
	}{
		{devices.NftTable{Family: "arp", Name: "t"}.Validate(), `Family: "arp" is not`},
		{devices.NftTable{Family: "ip"}.Validate(), "a table name is 1 to 255 bytes"},
		{devices.NftChain{Family: "ip", Table: "t", Name: "c", Hook: "ingress"}.Validate(), `Hook: "ingress"`},
		{devices.NftChain{Family: "ip", Table: "t", Name: "c", Policy: "drop"}.Validate(), "a regular chain (no Hook) has no Priority or Policy"},
		{devices.NftRules{Family: "ip", Table: "t", Chain: "c", Rules: []devices.NftRule{{DPort: 80}}}.Validate(), "DPort needs Proto"},
		{devices.NftRules{Family: "ip", Table: "t", Chain: "c", Rules: []devices.NftRule{{Src: "198.18.1.1/24"}}}.Validate(), "host bits set"},
		{devices.NftRules{Family: "inet", Table: "t", Chain: "c", Rules: []devices.NftRule{{Src: "198.18.1.0/24", Dst: "2001:db8::/64"}}}.Validate(), "different families"},
		{devices.NftRules{Family: "ip", Table: "t", Chain: "c", Rules: []devices.NftRule{{Verdict: "reject"}}}.Validate(), `Verdict "reject"`},
		{devices.NftRules{Family: "ip", Table: "t", Chain: "c", Rules: []devices.NftRule{{Proto: "sctp"}}}.Validate(), `Proto "sctp"`},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("got %v, want an error with %q", tc.err, tc.want)
		}
	}
}
