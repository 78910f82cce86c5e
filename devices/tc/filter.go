package tc

import (
	"math"
	"net"
	"net/netip"
)

// Filter classifies packets at a qdisc or class: those it matches go to
// ClassID and through its actions.
type Filter interface {
	// Kind is the kernel's name of the classifier ("u32", "flower").
	Kind() string
	// Attrs are where the filter goes and what it matches first.
	Attrs() FilterAttrs
	// Validate reports what is wrong with the spec, naming the field.
	Validate() error
}

// FilterAttrs are what every filter has.
type FilterAttrs struct {
	// Parent is the qdisc or class the filter is attached to: "1:",
	// "1:10", "ingress" (ingress or clsact qdisc), "egress" (clsact).
	Parent string
	// Protocol is the link-layer protocol matched: "all", "ip", "ipv6",
	// "arp", "802.1q" (tc's names); "" is "all".
	Protocol string
	// Prio orders filters on a parent, 1 (first) to 65535. Each filter
	// of a test needs its own Prio on its parent: its undo removes it by
	// priority.
	Prio int
}

// Protocols are the Protocol names a filter takes, and their EtherTypes.
var Protocols = map[string]uint16{
	"all": 0x0003, "ip": 0x0800, "ipv6": 0x86dd, "arp": 0x0806, "802.1q": 0x8100, "802.1ad": 0x88a8,
}

// ProtocolNumber is the EtherType of a Protocol name ("" is "all").
func ProtocolNumber(name string) (uint16, bool) {
	if name == "" {
		name = "all"
	}
	n, ok := Protocols[name]
	return n, ok
}

// IPProtos are the IPProto names a filter takes, and their numbers.
var IPProtos = map[string]uint8{"icmp": 1, "tcp": 6, "udp": 17, "sctp": 132, "icmpv6": 58}

func (c check) attrs(a FilterAttrs) error {
	if a.Parent == "" {
		return c.fail("Parent", "is required (\"1:\", \"1:10\", \"ingress\", \"egress\")")
	}
	if a.Parent != "ingress" && a.Parent != "egress" {
		if _, err := c.handle("Parent", a.Parent, true, false); err != nil {
			return err
		}
	}
	if _, ok := ProtocolNumber(a.Protocol); !ok {
		return c.oneOf("Protocol", a.Protocol, "all", "ip", "ipv6", "arp", "802.1q", "802.1ad")
	}
	if a.Prio < 1 || a.Prio > math.MaxUint16 {
		return c.fail("Prio", "%d is out of range 1..65535; it is required (the filter's undo removes it by priority)", a.Prio)
	}
	return nil
}

// classID checks an optional ClassID.
func (c check) classID(s string) error {
	_, err := c.handle("ClassID", s, true, false)
	return err
}

// ipFields checks the IP fields a U32 or Flower match; v6 is the family
// Protocol gives, ipOK whether it gives one at all.
func (c check) ipFields(protocol, ipProto, src, dst string, sport, dport uint16) (v6 bool, err error) {
	ipOK := protocol == "ip" || protocol == "ipv6"
	v6 = protocol == "ipv6"
	if !ipOK && (ipProto != "" || src != "" || dst != "" || sport != 0 || dport != 0) {
		return v6, c.fail("Protocol", "%q does not match IP fields: give \"ip\" or \"ipv6\"", protocol)
	}
	if ipProto != "" {
		if _, ok := IPProtos[ipProto]; !ok {
			return v6, c.oneOf("IPProto", ipProto, "icmp", "icmpv6", "tcp", "udp", "sctp")
		}
	}
	if (sport != 0 || dport != 0) && ipProto != "tcp" && ipProto != "udp" && ipProto != "sctp" {
		return v6, c.fail("IPProto", "%q has no ports: SrcPort and DstPort need \"tcp\", \"udp\" or \"sctp\"", ipProto)
	}
	if _, err := c.prefix("Src", src, v6); err != nil {
		return v6, err
	}
	_, err = c.prefix("Dst", dst, v6)
	return v6, err
}

// skip checks a classifier's SkipHw and SkipSw: one of them at most.
func (c check) skip(skipHw, skipSw bool) error {
	if skipHw && skipSw {
		return c.fail("SkipSw", "is given with SkipHw: the filter would be in neither software nor hardware; give one at most")
	}
	return nil
}

// filter checks what every classifier has, in this order: its
// attributes, its ClassID, then own (the kind's own fields; nil for
// none), its skip flags and its actions.
func (c check) filter(a FilterAttrs, classID string, skipHw, skipSw bool, actions ActionList, own func() error) error {
	if err := c.attrs(a); err != nil {
		return err
	}
	if err := c.classID(classID); err != nil {
		return err
	}
	if own != nil {
		if err := own(); err != nil {
			return err
		}
	}
	if err := c.skip(skipHw, skipSw); err != nil {
		return err
	}
	return checkActions(c.kind, actions)
}

// ClsFlags are the kernel's TCA_CLS_FLAGS_* bits of a classifier's flags
// attribute (TCA_FLOWER_FLAGS, TCA_U32_FLAGS, TCA_MATCHALL_FLAGS): the
// first two a filter is added with, the next two the kernel reports back.
const (
	ClsFlagSkipHw  = 1 << 0 // TCA_CLS_FLAGS_SKIP_HW
	ClsFlagSkipSw  = 1 << 1 // TCA_CLS_FLAGS_SKIP_SW
	ClsFlagInHw    = 1 << 2 // TCA_CLS_FLAGS_IN_HW: a driver offloaded it
	ClsFlagNotInHw = 1 << 3 // TCA_CLS_FLAGS_NOT_IN_HW
)

// SkipFlags returns the TCA_CLS_FLAGS_SKIP_* bits of a U32, Flower or
// MatchAll (0 for other filters).
func SkipFlags(f Filter) uint32 {
	var hw, sw bool
	switch s := f.(type) {
	case U32:
		hw, sw = s.SkipHw, s.SkipSw
	case Flower:
		hw, sw = s.SkipHw, s.SkipSw
	case MatchAll:
		hw, sw = s.SkipHw, s.SkipSw
	}
	var flags uint32
	if hw {
		flags |= ClsFlagSkipHw
	}
	if sw {
		flags |= ClsFlagSkipSw
	}
	return flags
}

// U32 is the universal 32-bit classifier: it matches 32-bit words of the
// packet under masks. Src, Dst, IPProto and the ports are the usual words
// of an IPv4 header without options (as tc's "match ip dport" assumes);
// Keys add any others. No key at all matches every packet.
type U32 struct {
	Parent, Protocol string
	Prio             int
	// ClassID is the class matched packets go to ("1:10"), if any.
	ClassID string
	// Src and Dst are IPv4 prefixes ("198.18.1.0/24") or addresses.
	Src, Dst string
	// IPProto is "tcp", "udp", "icmp" or "sctp".
	IPProto string
	// SrcPort and DstPort need IPProto "tcp", "udp" or "sctp".
	SrcPort, DstPort uint16
	// Keys are more words to match.
	Keys []U32Key
	// SkipHw keeps the filter out of hardware, SkipSw out of software
	// (the kernel then refuses it unless a driver offloads it).
	SkipHw, SkipSw bool
	Actions        ActionList
}

// U32Key matches the 32-bit word at Off bytes into the network header
// (negative: into the link-layer header): word & Mask == Val & Mask.
type U32Key struct {
	Val, Mask uint32
	Off       int
}

// Kind returns "u32".
func (U32) Kind() string { return "u32" }

// Attrs returns Parent, Protocol and Prio.
func (f U32) Attrs() FilterAttrs { return FilterAttrs{f.Parent, f.Protocol, f.Prio} }

// Validate checks the attributes, the match fields (IPv4 only), the keys
// and the actions.
func (f U32) Validate() error {
	c := check{f.Kind()}
	return c.filter(f.Attrs(), f.ClassID, f.SkipHw, f.SkipSw, f.Actions, func() error {
		v6, err := c.ipFields(f.Protocol, f.IPProto, f.Src, f.Dst, f.SrcPort, f.DstPort)
		if err != nil {
			return err
		}
		if v6 && (f.Src != "" || f.Dst != "" || f.IPProto != "" || f.SrcPort != 0 || f.DstPort != 0) {
			return c.fail("Protocol", "U32's Src, Dst, IPProto and ports are IPv4 header words; for IPv6 give Keys or use Flower")
		}
		for i, k := range f.Keys {
			if k.Off%4 != 0 || k.Off < -(1<<15) || k.Off >= 1<<15 {
				return c.fail("Keys", "key %d: offset %d is not a multiple of 4 within -32768..32767", i, k.Off)
			}
		}
		if len(f.U32Keys()) > 128 {
			return c.fail("Keys", "%d keys are more than the 128 a selector holds", len(f.U32Keys()))
		}
		return nil
	})
}

// U32Keys returns every key the filter matches: those of Src, Dst,
// IPProto and the ports (for an IPv4 header of 20 bytes), then Keys. The
// spec must be valid.
func (f U32) U32Keys() []U32Key {
	var keys []U32Key
	if f.IPProto != "" {
		keys = append(keys, U32Key{Val: uint32(IPProtos[f.IPProto]) << 16, Mask: 0x00ff0000, Off: 8})
	}
	for _, a := range []struct {
		s   string
		off int
	}{{f.Src, 12}, {f.Dst, 16}} {
		if a.s == "" {
			continue
		}
		p, _ := check{}.prefix("", a.s, false)
		b := p.Addr().As4()
		mask := uint32(0)
		if p.Bits() > 0 {
			mask = ^uint32(0) << (32 - p.Bits())
		}
		keys = append(keys, U32Key{Val: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), Mask: mask, Off: a.off})
	}
	if f.SrcPort != 0 || f.DstPort != 0 {
		k := U32Key{Off: 20}
		if f.SrcPort != 0 {
			k.Val |= uint32(f.SrcPort) << 16
			k.Mask |= 0xffff0000
		}
		if f.DstPort != 0 {
			k.Val |= uint32(f.DstPort)
			k.Mask |= 0x0000ffff
		}
		keys = append(keys, k)
	}
	for _, k := range f.Keys {
		k.Val &= k.Mask
		keys = append(keys, k)
	}
	return keys
}

// Flower matches packets by their parsed header fields.
type Flower struct {
	Parent, Protocol string
	Prio             int
	// ClassID is the class matched packets go to ("1:10"), if any.
	ClassID string
	// Src and Dst are prefixes or addresses of Protocol's family.
	Src, Dst string
	// IPProto is "tcp", "udp", "sctp", "icmp" or "icmpv6".
	IPProto string
	// SrcPort and DstPort need IPProto "tcp", "udp" or "sctp".
	SrcPort, DstPort uint16
	// SrcMAC and DstMAC are Ethernet addresses.
	SrcMAC, DstMAC string
	// VlanID matches the VLAN tag's id, with Protocol "802.1q".
	VlanID int
	// SkipHw keeps the filter out of hardware, SkipSw out of software
	// (the kernel then refuses it unless a driver offloads it, as on a
	// switchdev representor).
	SkipHw, SkipSw bool
	Actions        ActionList
}

// Kind returns "flower".
func (Flower) Kind() string { return "flower" }

// Attrs returns Parent, Protocol and Prio.
func (f Flower) Attrs() FilterAttrs { return FilterAttrs{f.Parent, f.Protocol, f.Prio} }

// Validate checks the attributes, every match field and the actions.
func (f Flower) Validate() error {
	c := check{f.Kind()}
	return c.filter(f.Attrs(), f.ClassID, f.SkipHw, f.SkipSw, f.Actions, func() error {
		if _, err := c.ipFields(f.Protocol, f.IPProto, f.Src, f.Dst, f.SrcPort, f.DstPort); err != nil {
			return err
		}
		for _, m := range []struct{ field, v string }{{"SrcMAC", f.SrcMAC}, {"DstMAC", f.DstMAC}} {
			if m.v == "" {
				continue
			}
			if hw, err := net.ParseMAC(m.v); err != nil || len(hw) != 6 {
				return c.fail(m.field, "%q is not an Ethernet address like 02:00:00:00:00:09", m.v)
			}
		}
		if f.VlanID != 0 {
			if f.Protocol != "802.1q" && f.Protocol != "802.1ad" {
				return c.fail("VlanID", "needs Protocol \"802.1q\" (or \"802.1ad\"), not %q", f.Protocol)
			}
			if f.VlanID < 0 || f.VlanID > 4094 {
				return c.fail("VlanID", "%d is out of range 1..4094", f.VlanID)
			}
		}
		return nil
	})
}

// Prefixes returns Src and Dst parsed; the spec must be valid.
func (f Flower) Prefixes() (src, dst netip.Prefix) {
	v6 := f.Protocol == "ipv6"
	src, _ = check{}.prefix("", f.Src, v6)
	dst, _ = check{}.prefix("", f.Dst, v6)
	return src, dst
}

// MatchAll matches every packet of its Protocol.
type MatchAll struct {
	Parent, Protocol string
	Prio             int
	// ClassID is the class packets go to ("1:10"), if any.
	ClassID string
	// SkipHw keeps the filter out of hardware, SkipSw out of software.
	SkipHw, SkipSw bool
	Actions        ActionList
}

// Kind returns "matchall".
func (MatchAll) Kind() string { return "matchall" }

// Attrs returns Parent, Protocol and Prio.
func (f MatchAll) Attrs() FilterAttrs { return FilterAttrs{f.Parent, f.Protocol, f.Prio} }

// Validate checks the attributes, ClassID and the actions.
func (f MatchAll) Validate() error {
	return check{f.Kind()}.filter(f.Attrs(), f.ClassID, f.SkipHw, f.SkipSw, f.Actions, nil)
}
