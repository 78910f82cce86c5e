package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// NetlinkTable is the table as github.com/google/nftables takes it.
func (t Table) NetlinkTable() (*nftables.Table, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &nftables.Table{Name: t.Name, Family: tableFamily(t.Family)}, nil
}

func tableFamily(f string) nftables.TableFamily {
	switch family(f) {
	case "ip":
		return nftables.TableFamilyIPv4
	case "ip6":
		return nftables.TableFamilyIPv6
	}
	return nftables.TableFamilyINet
}

// NetlinkChain is the chain as github.com/google/nftables takes it.
func (c Chain) NetlinkChain() (*nftables.Chain, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	nc := &nftables.Chain{Name: c.Name, Table: &nftables.Table{Name: c.Table, Family: tableFamily(c.Family)}}
	if c.Hook == "" {
		return nc, nil
	}
	nc.Type = nftables.ChainTypeFilter
	nc.Hooknum = map[string]*nftables.ChainHook{
		"prerouting": nftables.ChainHookPrerouting, "input": nftables.ChainHookInput,
		"forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
		"postrouting": nftables.ChainHookPostrouting,
	}[c.Hook]
	nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority))
	policy := nftables.ChainPolicyAccept
	if c.Policy == "drop" {
		policy = nftables.ChainPolicyDrop
	}
	nc.Policy = &policy
	return nc, nil
}

// Exprs is the rule as nftables expressions for a table of family fam,
// in the order nft itself writes them: the IP family, the protocol,
// addresses, ports, conntrack state, counter, verdict.
func (r Rule) Exprs(fam string) ([]expr.Any, error) {
	v, err := r.ipFamily(fam)
	if err != nil {
		return nil, err
	}
	var e []expr.Any
	cmp := func(data []byte) {
		e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data})
	}
	if family(fam) == "inet" && v != 0 {
		nfproto := byte(unix.NFPROTO_IPV4)
		if v == 6 {
			nfproto = unix.NFPROTO_IPV6
		}
		e = append(e, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1})
		cmp([]byte{nfproto})
	}
	if r.Proto != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1})
		cmp([]byte{map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "icmp": unix.IPPROTO_ICMP, "icmpv6": unix.IPPROTO_ICMPV6}[r.Proto]})
	}
	for _, a := range []struct {
		s          string
		off4, off6 uint32
	}{{r.Src, 12, 8}, {r.Dst, 16, 24}} {
		if a.s == "" {
			continue
		}
		p, _ := prefix("", a.s) // checked by ipFamily
		e = append(e, addrMatch(p, a.off4, a.off6)...)
	}
	for _, p := range []struct {
		port uint16
		off  uint32
	}{{r.SPort, 0}, {r.DPort, 2}} {
		if p.port == 0 {
			continue
		}
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: p.off, Len: 2})
		cmp(binary.BigEndian.AppendUint16(nil, p.port))
	}
	if len(r.CtState) > 0 {
		var bits uint32
		for _, s := range r.CtState {
			bits |= ctStates[s]
		}
		e = append(e,
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	}
	if r.Counter {
		e = append(e, &expr.Counter{})
	}
	switch r.Verdict {
	case "accept":
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case "drop":
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	}
	return e, nil
}

// addrMatch loads the network header's address at off4 (IPv4) or off6
// (IPv6) and compares it, under the prefix's mask, with the prefix.
func addrMatch(p netip.Prefix, off4, off6 uint32) []expr.Any {
	off, n := off4, uint32(4)
	if p.Addr().Is6() {
		off, n = off6, 16
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}}
	if p.Bits() < int(n*8) {
		mask := make([]byte, n)
		for i := range p.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()})
}

// StateOf reads a rule's handle and counter from its expressions.
func StateOf(r *nftables.Rule) RuleState {
	s := RuleState{Handle: r.Handle}
	for _, x := range r.Exprs {
		if c, ok := x.(*expr.Counter); ok {
			s.Counter, s.Packets, s.Bytes = true, c.Packets, c.Bytes
		}
	}
	return s
}

// String is the rule in nft's words, for messages.
func (r Rule) String() string {
	s := ""
	add := func(f string, a ...any) {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf(f, a...)
	}
	if r.Src != "" {
		add("saddr %s", r.Src)
	}
	if r.Dst != "" {
		add("daddr %s", r.Dst)
	}
	if r.Proto != "" {
		add("meta l4proto %s", r.Proto)
	}
	if r.SPort != 0 {
		add("th sport %d", r.SPort)
	}
	if r.DPort != 0 {
		add("th dport %d", r.DPort)
	}
	if len(r.CtState) > 0 {
		add("ct state %v", r.CtState)
	}
	if r.Counter {
		add("counter")
	}
	if r.Verdict != "" {
		add("%s", r.Verdict)
	}
	if s == "" {
		return "(every packet)"
	}
	return s
}
