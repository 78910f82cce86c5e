package nft

import (
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string // "" valid, else a part of the error
	}{
		{"table", Table{Name: "lnst"}.Validate(), ""},
		{"table ip6", Table{Family: "ip6", Name: "t"}.Validate(), ""},
		{"table family", Table{Family: "arp", Name: "t"}.Validate(), `Family "arp"`},
		{"table name", Table{Name: "a b"}.Validate(), `Name "a b"`},
		{"table no name", Table{}.Validate(), `Name ""`},
		{"chain regular", Chain{Table: "t", Name: "c"}.Validate(), ""},
		{"chain base", Chain{Table: "t", Name: "c", Hook: "forward", Policy: "drop"}.Validate(), ""},
		{"chain hook", Chain{Table: "t", Name: "c", Hook: "ingress"}.Validate(), `Hook "ingress"`},
		{"chain policy", Chain{Table: "t", Name: "c", Hook: "input", Policy: "reject"}.Validate(), `Policy "reject"`},
		{"chain policy no hook", Chain{Table: "t", Name: "c", Policy: "drop"}.Validate(), "need a Hook"},
		{"chain table", Chain{Table: "", Name: "c"}.Validate(), `Name ""`},
		{"rule empty", Rule{}.Validate(""), ""},
		{"rule full", Rule{Proto: "tcp", Src: "198.18.1.0/24", Dst: "198.18.2.1", DPort: 5201, Counter: true, Verdict: "drop"}.Validate("inet"), ""},
		{"rule v6 in ip6", Rule{Dst: "2001:db8::/64"}.Validate("ip6"), ""},
		{"rule v6 in ip", Rule{Dst: "2001:db8::/64"}.Validate("ip"), "IPv6"},
		{"rule mixed", Rule{Src: "198.18.1.1", Dst: "2001:db8::1"}.Validate("inet"), "IPv6"},
		{"rule icmp v6", Rule{Proto: "icmp", Dst: "2001:db8::1"}.Validate(""), "IPv6"},
		{"rule host bits", Rule{Src: "198.18.1.1/24"}.Validate(""), "host bits"},
		{"rule bad addr", Rule{Src: "h1"}.Validate(""), `Src "h1"`},
		{"rule port no proto", Rule{DPort: 80}.Validate(""), "need Proto tcp or udp"},
		{"rule port icmp", Rule{Proto: "icmp", SPort: 80}.Validate(""), "need Proto tcp or udp"},
		{"rule proto", Rule{Proto: "sctp"}.Validate(""), `Proto "sctp"`},
		{"rule ct", Rule{CtState: []string{"new", "established"}}.Validate(""), ""},
		{"rule ct bad", Rule{CtState: []string{"old"}}.Validate(""), `CtState "old"`},
		{"rule verdict", Rule{Verdict: "reject"}.Validate(""), `Verdict "reject"`},
		{"rule family", Rule{}.Validate("bridge"), `table family "bridge"`},
	} {
		if c.want == "" {
			assert.NoError(t, c.err, c.name)
		} else if assert.Error(t, c.err, c.name) {
			assert.Contains(t, c.err.Error(), c.want, c.name)
		}
	}
}

// TestRuleExprs checks the expressions of a rule against nft's
// (nft --debug=netlink of "ip saddr 198.18.1.0/24 meta l4proto tcp th
// dport 5201 counter drop" in an inet table), but for the order and the
// prefix: nft loads 3 bytes for a /24, this a masked 4.
func TestRuleExprs(t *testing.T) {
	e, err := Rule{Proto: "tcp", Src: "198.18.1.0/24", DPort: 5201, Counter: true, Verdict: "drop"}.Exprs("inet")
	require.NoError(t, err)
	assert.Equal(t, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 255, 255, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{198, 18, 1, 0}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x14, 0x51}},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}, e)
}

func TestRuleExprsV6AndCt(t *testing.T) {
	// In an ip6 table no family check; a full address has no mask.
	e, err := Rule{Dst: "2001:db8::1", CtState: []string{"new"}}.Exprs("ip6")
	require.NoError(t, err)
	require.Len(t, e, 5)
	assert.Equal(t, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}, e[0])
	assert.Equal(t, []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, e[1].(*expr.Cmp).Data)
	assert.Equal(t, &expr.Ct{Register: 1, Key: expr.CtKeySTATE}, e[2])
	assert.Equal(t, uint32(8), uint32(e[3].(*expr.Bitwise).Mask[0]), "ct state new is bit 3")
	assert.Equal(t, expr.CmpOpNeq, e[4].(*expr.Cmp).Op)

	_, err = Rule{Src: "198.18.1.1"}.Exprs("ip6")
	assert.Error(t, err, "an IPv4 match in an ip6 table")
}

func TestNetlinkChain(t *testing.T) {
	c, err := Chain{Family: "ip", Table: "t", Name: "fwd", Hook: "forward", Priority: -5, Policy: "drop"}.NetlinkChain()
	require.NoError(t, err)
	assert.Equal(t, nftables.TableFamilyIPv4, c.Table.Family)
	assert.Equal(t, nftables.ChainHookForward, c.Hooknum)
	assert.Equal(t, nftables.ChainPriority(-5), *c.Priority)
	assert.Equal(t, nftables.ChainPolicyDrop, *c.Policy)
	assert.Equal(t, nftables.ChainTypeFilter, c.Type)
	r, err := Chain{Table: "t", Name: "sub"}.NetlinkChain()
	require.NoError(t, err)
	assert.Nil(t, r.Hooknum, "a regular chain has no hook")
	_, err = Chain{Table: "t", Name: "c", Hook: "bogus"}.NetlinkChain()
	assert.Error(t, err)
}

func TestStateOf(t *testing.T) {
	s := StateOf(&nftables.Rule{Handle: 7, Exprs: []expr.Any{&expr.Counter{Packets: 3, Bytes: 180}, &expr.Verdict{Kind: expr.VerdictAccept}}})
	assert.Equal(t, RuleState{Handle: 7, Packets: 3, Bytes: 180, Counter: true}, s)
}
