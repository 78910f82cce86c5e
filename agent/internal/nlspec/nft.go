package nlspec

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/lnst-go/lnst/devices"
	"golang.org/x/sys/unix"
)

// NftFamily is the nftables family of a devices family name ("ip",
// "ip6", "inet"; validated by the specs).
func NftFamily(f string) nftables.TableFamily {
	switch f {
	case "ip":
		return nftables.TableFamilyIPv4
	case "ip6":
		return nftables.TableFamilyIPv6
	}
	return nftables.TableFamilyINet
}

// NftTable validates t and maps it.
func NftTable(t devices.NftTable) (*nftables.Table, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &nftables.Table{Family: NftFamily(t.Family), Name: t.Name}, nil
}

var nftHooks = map[string]*nftables.ChainHook{
	"input": nftables.ChainHookInput, "forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
	"prerouting": nftables.ChainHookPrerouting, "postrouting": nftables.ChainHookPostrouting,
}

// NftChain validates c and maps it: a base chain of type filter with its
// hook, priority and policy, or a regular chain.
func NftChain(c devices.NftChain) (*nftables.Chain, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ch := &nftables.Chain{Name: c.Name, Table: &nftables.Table{Family: NftFamily(c.Family), Name: c.Table}}
	if c.Hook != "" {
		ch.Type = nftables.ChainTypeFilter
		ch.Hooknum = nftHooks[c.Hook]
		ch.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority))
		policy := nftables.ChainPolicyAccept
		if c.Policy == "drop" {
			policy = nftables.ChainPolicyDrop
		}
		ch.Policy = &policy
	}
	return ch, nil
}

// NftRuleExprs are the expressions of rule r in a table of family, as nft
// compiles the same rule: in an inet table an address match first checks
// the packet's family (meta nfproto), a port match the layer 4 protocol
// (meta l4proto).
func NftRuleExprs(family string, r devices.NftRule) []expr.Any {
	var ex []expr.Any
	cmp := func(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }
	for i, p := range []string{r.Src, r.Dst} {
		if p == "" {
			continue
		}
		pfx := netip.MustParsePrefix(p)
		addr := pfx.Addr().AsSlice()
		off := uint32(12 + 4*i) // IPv4 saddr, daddr
		nfproto := byte(unix.NFPROTO_IPV4)
		if pfx.Addr().Is6() {
			off, nfproto = uint32(8+16*i), unix.NFPROTO_IPV6
		}
		if family == "inet" {
			ex = append(ex, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp([]byte{nfproto}))
		}
		ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(addr))})
		if pfx.Bits() < len(addr)*8 {
			mask := make([]byte, len(addr))
			for b := 0; b < pfx.Bits(); b++ {
				mask[b/8] |= 0x80 >> (b % 8)
			}
			ex = append(ex, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(addr)), Mask: mask, Xor: make([]byte, len(addr))})
		}
		ex = append(ex, cmp(addr))
	}
	if r.Proto != "" {
		proto := byte(unix.IPPROTO_TCP)
		if r.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		ex = append(ex, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp([]byte{proto}))
		if r.DPort != 0 {
			ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				cmp(binary.BigEndian.AppendUint16(nil, uint16(r.DPort))))
		}
	}
	if r.Counter {
		ex = append(ex, &expr.Counter{})
	}
	switch r.Verdict {
	case "accept":
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictAccept})
	case "drop":
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictDrop})
	}
	return ex
}
