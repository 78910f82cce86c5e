package packets

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Matcher says whether a packet is one a recipe looks for; String
// describes it in results ("icmp-echo in vxlan vni 42").
type Matcher interface {
	Match(p *Packet) bool
	String() string
}

// Protocols Match.Proto knows.
var protos = map[string]bool{
	"ip": true, "ip6": true, "arp": true, "tcp": true, "udp": true,
	"icmp": true, "icmp-echo": true, "icmp-reply": true,
	"icmp6": true, "icmp6-echo": true, "icmp6-reply": true, "vxlan": true,
	"sctp": true, "sctp-data": true,
}

// Match is a typed packet filter: a packet matches when it meets every
// field set (the zero Match matches every packet).
//
// With VNI set, the packet must carry VXLAN with that VNI, and Proto,
// Host, Src, Dst and Port apply to the packet inside it (the first
// VXLAN layer with that VNI); VLAN, LargerThan and the directions always
// apply to the packet as captured.
type Match struct {
	// Proto is a protocol the packet carries: ip, ip6, arp, tcp, udp,
	// icmp, icmp-echo (echo request), icmp-reply, icmp6, icmp6-echo,
	// icmp6-reply, vxlan, sctp, sctp-data (an SCTP packet with a DATA
	// chunk, found from the chunk headers: it matches packets cut by a
	// capture's snap length too).
	Proto string
	// Host is the source or destination address; Src and Dst the one or
	// the other (of the first IP header in scope).
	Host, Src, Dst netip.Addr
	// Port is the TCP, UDP or SCTP source or destination port.
	Port int
	// VLAN is an 802.1Q tag's VLAN id the packet carries.
	VLAN int
	// VNI is the VXLAN network identifier of the tunnel it is inside.
	VNI int
	// LargerThan: its network-layer length (Packet.NetworkLength, what an
	// MTU bounds) is above this.
	LargerThan int
	// Outgoing, Incoming: the host sent, or received, it.
	Outgoing, Incoming bool
}

// Check reports a field of m that cannot match anything (an unknown
// Proto, an out-of-range VLAN, VNI or port).
func (m Match) Check() error {
	if m.Proto != "" && !protos[m.Proto] {
		return fmt.Errorf("packet match %v: unknown protocol %q (want one of ip, ip6, arp, tcp, udp, icmp, icmp-echo, icmp-reply, icmp6, icmp6-echo, icmp6-reply, vxlan, sctp, sctp-data)", m, m.Proto)
	}
	switch {
	case m.VLAN < 0 || m.VLAN > 4095:
		return fmt.Errorf("packet match %v: VLAN %d is not from 0 to 4095", m, m.VLAN)
	case m.VNI < 0 || m.VNI > 1<<24-1:
		return fmt.Errorf("packet match %v: VNI %d is not from 0 to 16777215", m, m.VNI)
	case m.Port < 0 || m.Port > 65535:
		return fmt.Errorf("packet match %v: port %d is not from 0 to 65535", m, m.Port)
	case m.Outgoing && m.Incoming:
		return fmt.Errorf("packet match %v: a packet is either outgoing or incoming", m)
	}
	return nil
}

// Match reports whether p matches m.
func (m Match) Match(p *Packet) bool {
	if m.Outgoing && !p.Outgoing || m.Incoming && p.Outgoing {
		return false
	}
	if m.LargerThan > 0 && p.NetworkLength() <= m.LargerThan {
		return false
	}
	ls := p.Decode().Layers()
	if m.VLAN != 0 && !hasVLAN(ls, m.VLAN) {
		return false
	}
	if m.VNI != 0 {
		i := vxlanIndex(ls, m.VNI)
		if i < 0 {
			return false
		}
		ls = ls[i+1:]
	}
	return m.matchInner(ls)
}

func hasVLAN(ls []gopacket.Layer, id int) bool {
	for _, l := range ls {
		if d, ok := l.(*layers.Dot1Q); ok && int(d.VLANIdentifier) == id {
			return true
		}
		if _, ok := l.(*layers.VXLAN); ok {
			return false // tags inside a tunnel are not on this wire
		}
	}
	return false
}

func vxlanIndex(ls []gopacket.Layer, vni int) int {
	for i, l := range ls {
		if v, ok := l.(*layers.VXLAN); ok && int(v.VNI) == vni {
			return i
		}
	}
	return -1
}

// matchInner checks the fields that apply inside a tunnel (ls are the
// layers in scope).
func (m Match) matchInner(ls []gopacket.Layer) bool {
	if m.Proto != "" && !hasProto(ls, m.Proto) {
		return false
	}
	if m.Host.IsValid() || m.Src.IsValid() || m.Dst.IsValid() {
		src, dst, ok := firstIP(ls)
		if !ok ||
			m.Host.IsValid() && m.Host != src && m.Host != dst ||
			m.Src.IsValid() && m.Src != src ||
			m.Dst.IsValid() && m.Dst != dst {
			return false
		}
	}
	if m.Port != 0 && !hasPort(ls, m.Port) {
		return false
	}
	return true
}

func hasProto(ls []gopacket.Layer, proto string) bool {
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.IPv4:
			if proto == "ip" {
				return true
			}
		case *layers.IPv6:
			if proto == "ip6" {
				return true
			}
		case *layers.ARP:
			if proto == "arp" {
				return true
			}
		case *layers.TCP:
			if proto == "tcp" {
				return true
			}
		case *layers.UDP:
			if proto == "udp" {
				return true
			}
		case *layers.VXLAN:
			if proto == "vxlan" {
				return true
			}
		case *layers.SCTP:
			if proto == "sctp" || proto == "sctp-data" && sctpHasData(l.Payload) {
				return true
			}
		case *layers.ICMPv4:
			t := l.TypeCode.Type()
			if proto == "icmp" || proto == "icmp-echo" && t == layers.ICMPv4TypeEchoRequest || proto == "icmp-reply" && t == layers.ICMPv4TypeEchoReply {
				return true
			}
		case *layers.ICMPv6:
			t := l.TypeCode.Type()
			if proto == "icmp6" || proto == "icmp6-echo" && t == layers.ICMPv6TypeEchoRequest || proto == "icmp6-reply" && t == layers.ICMPv6TypeEchoReply {
				return true
			}
		}
	}
	return false
}

func firstIP(ls []gopacket.Layer) (src, dst netip.Addr, ok bool) {
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.IPv4:
			s, _ := netip.AddrFromSlice(l.SrcIP.To4())
			d, _ := netip.AddrFromSlice(l.DstIP.To4())
			return s, d, true
		case *layers.IPv6:
			s, _ := netip.AddrFromSlice(l.SrcIP)
			d, _ := netip.AddrFromSlice(l.DstIP)
			return s, d, true
		}
	}
	return src, dst, false
}

func hasPort(ls []gopacket.Layer, port int) bool {
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.TCP:
			return int(l.SrcPort) == port || int(l.DstPort) == port
		case *layers.UDP:
			return int(l.SrcPort) == port || int(l.DstPort) == port
		case *layers.SCTP:
			return int(l.SrcPort) == port || int(l.DstPort) == port
		}
	}
	return false
}

// sctpHasData reports whether chunks, an SCTP packet's chunks, hold a
// DATA chunk, reading the chunk headers alone: gopacket decodes no chunk
// that a capture's snap length cut, as it cuts every full DATA chunk.
func sctpHasData(chunks []byte) bool {
	for c := chunks; len(c) >= 4; {
		if layers.SCTPChunkType(c[0]) == layers.SCTPChunkTypeData {
			return true
		}
		n := (int(c[2])<<8 | int(c[3]) + 3) &^ 3
		if n < 4 || n >= len(c) {
			return false
		}
		c = c[n:]
	}
	return false
}

// String describes m as tcpdump-like words ("icmp-echo host 198.18.1.2
// in vxlan vni 42").
func (m Match) String() string {
	var w []string
	add := func(f string, a ...any) { w = append(w, fmt.Sprintf(f, a...)) }
	if m.Proto != "" {
		add("%s", m.Proto)
	}
	if m.Host.IsValid() {
		add("host %s", m.Host)
	}
	if m.Src.IsValid() {
		add("src %s", m.Src)
	}
	if m.Dst.IsValid() {
		add("dst %s", m.Dst)
	}
	if m.Port != 0 {
		add("port %d", m.Port)
	}
	if m.VNI != 0 {
		add("in vxlan vni %d", m.VNI)
	}
	if m.VLAN != 0 {
		add("vlan %d", m.VLAN)
	}
	if m.LargerThan != 0 {
		add("larger than %d", m.LargerThan)
	}
	if m.Outgoing {
		add("outgoing")
	}
	if m.Incoming {
		add("incoming")
	}
	if len(w) == 0 {
		return "any packet"
	}
	return strings.Join(w, " ")
}

// Func makes a Matcher of a function, described by desc.
func Func(desc string, f func(p *Packet) bool) Matcher { return funcMatcher{desc, f} }

type funcMatcher struct {
	desc string
	f    func(p *Packet) bool
}

func (f funcMatcher) Match(p *Packet) bool { return f.f(p) }
func (f funcMatcher) String() string       { return f.desc }

// Filter returns the packets of pkts that m matches.
func Filter(pkts []Packet, m Matcher) []Packet {
	var out []Packet
	for i := range pkts {
		if m.Match(&pkts[i]) {
			out = append(out, pkts[i])
		}
	}
	return out
}
