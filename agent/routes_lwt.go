package agent

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Lightweight-tunnel routes: a route with an encap gives the packets it
// routes tunnel metadata (key, outer addresses, TTL, TOS, flags) that an
// external (collect-metadata) vxlan, geneve or gre device out of which it
// goes uses for the outer header, as "ip route add ... encap ip id 42 dst
// 198.18.1.2 dev vxlan0" does. netlink v1.3.1 has no LWTUNNEL_ENCAP_IP
// type and its IP6tnlEncap always sends id 0, so the agent encodes the
// attributes itself (lwtEncap), for netlink.Handle and for the route
// socket alike.

// The uapi's lwtunnel constants (linux/lwtunnel.h, linux/if_tunnel.h).
const (
	lwtEncapIP  = 2 // LWTUNNEL_ENCAP_IP
	lwtEncapIP6 = 4 // LWTUNNEL_ENCAP_IP6

	// LWTUNNEL_IP_* and LWTUNNEL_IP6_* share their numbers: ID, DST,
	// SRC, TTL (HOPLIMIT), TOS (TC), FLAGS.
	lwtIPID    = 1
	lwtIPDst   = 2
	lwtIPSrc   = 3
	lwtIPTTL   = 4
	lwtIPTos   = 5
	lwtIPFlags = 6

	// TUNNEL_CSUM, TUNNEL_KEY, TUNNEL_SEQ: big-endian bits of
	// LWTUNNEL_IP_FLAGS.
	tunnelCsum = 0x01
	tunnelKey  = 0x04
	tunnelSeq  = 0x08
)

// encap is a route's lightweight-tunnel encapsulation as requests and undo
// entries carry it.
type encap struct {
	ID             uint64 `json:",omitempty"`
	Dst            string
	Src            string `json:",omitempty"`
	TTL            int    `json:",omitempty"`
	Tos            int    `json:",omitempty"`
	Csum, Key, Seq bool   `json:",omitempty"`
}

// encapOf is the encap of a request, nil for none.
func encapOf(e *pb.RouteEncap) *encap {
	if e == nil {
		return nil
	}
	return &encap{ID: e.Id, Dst: e.Dst, Src: e.Src, TTL: int(e.Ttl), Tos: int(e.Tos), Csum: e.Csum, Key: e.Key, Seq: e.Seq}
}

// String is e as ip route prints it: "encap ip id 42 src 198.18.1.1 dst
// 198.18.1.2 ttl 64 tos 0 key".
func (e *encap) String() string {
	s := "encap ip"
	if a, err := netip.ParseAddr(e.Dst); err == nil && a.Is6() && !a.Is4In6() {
		s = "encap ip6"
	}
	s += fmt.Sprintf(" id %d", e.ID)
	if e.Src != "" {
		s += " src " + e.Src
	}
	s += " dst " + e.Dst
	if e.TTL != 0 {
		s += fmt.Sprintf(" ttl %d", e.TTL)
	}
	if e.Tos != 0 {
		s += fmt.Sprintf(" tos %d", e.Tos)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{e.Csum, "csum"}, {e.Key, "key"}, {e.Seq, "seq"}} {
		if f.on {
			s += " " + f.name
		}
	}
	return s
}

// lwt checks e and turns it into the netlink.Encap of route r.
func (e *encap) lwt(r route) (*lwtEncap, error) {
	dst, err := netip.ParseAddr(e.Dst)
	if err != nil || dst.Is4In6() || dst.Zone() != "" {
		return nil, badArg(fmt.Errorf("route %s: encap dst %q is not an IPv4 or IPv6 address", r, e.Dst))
	}
	l := &lwtEncap{ID: e.ID, Dst: dst, TTL: uint8(e.TTL), Tos: uint8(e.Tos)}
	if e.Src != "" {
		src, err := netip.ParseAddr(e.Src)
		if err != nil || src.Is4In6() || src.Zone() != "" {
			return nil, badArg(fmt.Errorf("route %s: encap src %q is not an IPv4 or IPv6 address", r, e.Src))
		}
		if src.Is4() != dst.Is4() {
			return nil, badArg(fmt.Errorf("route %s: encap src %s and dst %s are of two address families", r, e.Src, e.Dst))
		}
		l.Src = src
	}
	if e.TTL < 0 || e.TTL > 255 || e.Tos < 0 || e.Tos > 255 {
		return nil, badArg(fmt.Errorf("route %s: encap ttl %d and tos %d must be 0 to 255", r, e.TTL, e.Tos))
	}
	if e.Csum {
		l.Flags |= tunnelCsum
	}
	if e.Key {
		l.Flags |= tunnelKey
	}
	if e.Seq {
		l.Flags |= tunnelSeq
	}
	return l, nil
}

// lwtEncap is a netlink.Encap of type LWTUNNEL_ENCAP_IP (an IPv4 Dst) or
// LWTUNNEL_ENCAP_IP6 (an IPv6 one).
type lwtEncap struct {
	ID       uint64
	Dst, Src netip.Addr // Src: the zero Addr for none
	TTL, Tos uint8
	Flags    uint16 // tunnelCsum, tunnelKey, tunnelSeq
}

var _ netlink.Encap = (*lwtEncap)(nil)

// Type is LWTUNNEL_ENCAP_IP or LWTUNNEL_ENCAP_IP6, by Dst's family.
func (e *lwtEncap) Type() int {
	if e.Dst.Is4() {
		return lwtEncapIP
	}
	return lwtEncapIP6
}

// Encode returns the attributes inside RTA_ENCAP, in iproute2's order:
// id (big-endian), dst, src (if any), ttl, tos, flags (big-endian, if
// any).
func (e *lwtEncap) Encode() ([]byte, error) {
	return e.append(nil), nil
}

// append appends Encode's attributes to b.
func (e *lwtEncap) append(b []byte) []byte {
	b = appendAttr(b, lwtIPID, binary.BigEndian.AppendUint64(nil, e.ID))
	b = appendAttr(b, lwtIPDst, e.Dst.AsSlice())
	if e.Src.IsValid() {
		b = appendAttr(b, lwtIPSrc, e.Src.AsSlice())
	}
	b = appendAttr(b, lwtIPTTL, []byte{e.TTL})
	b = appendAttr(b, lwtIPTos, []byte{e.Tos})
	if e.Flags != 0 {
		b = appendAttr(b, lwtIPFlags, binary.BigEndian.AppendUint16(nil, e.Flags))
	}
	return b
}

// Decode reads the attributes of an RTA_ENCAP of e's Type.
func (e *lwtEncap) Decode(buf []byte) error {
	*e = lwtEncap{}
	for len(buf) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(buf))
		typ := binary.NativeEndian.Uint16(buf[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < unix.SizeofRtAttr || l > len(buf) {
			return fmt.Errorf("lwtunnel attribute of length %d in %d bytes", l, len(buf))
		}
		v := buf[unix.SizeofRtAttr:l]
		switch {
		case typ == lwtIPID && len(v) == 8:
			e.ID = binary.BigEndian.Uint64(v)
		case typ == lwtIPDst || typ == lwtIPSrc:
			a, ok := netip.AddrFromSlice(v)
			if !ok {
				return fmt.Errorf("lwtunnel address of %d bytes", len(v))
			}
			if typ == lwtIPDst {
				e.Dst = a
			} else {
				e.Src = a
			}
		case typ == lwtIPTTL && len(v) == 1:
			e.TTL = v[0]
		case typ == lwtIPTos && len(v) == 1:
			e.Tos = v[0]
		case typ == lwtIPFlags && len(v) == 2:
			e.Flags = binary.BigEndian.Uint16(v)
		}
		buf = buf[min(nlmAlign(l), len(buf)):]
	}
	return nil
}

// String is e as ip route prints it.
func (e *lwtEncap) String() string {
	s := fmt.Sprintf("id %d", e.ID)
	if e.Src.IsValid() {
		s += " src " + e.Src.String()
	}
	return s + fmt.Sprintf(" dst %s ttl %d tos %d flags %#04x", e.Dst, e.TTL, e.Tos, e.Flags)
}

// Equal reports whether x is an lwtEncap equal to e.
func (e *lwtEncap) Equal(x netlink.Encap) bool {
	o, ok := x.(*lwtEncap)
	return ok && (e == o || e != nil && o != nil && *e == *o)
}

// appendEncap appends e as RTA_ENCAP_TYPE and RTA_ENCAP, as
// netlink.Handle does (RTA_ENCAP without NLA_F_NESTED).
func appendEncap(b []byte, e *lwtEncap) []byte {
	b = appendAttr(b, unix.RTA_ENCAP_TYPE, binary.NativeEndian.AppendUint16(nil, uint16(e.Type())))
	return appendAttr(b, unix.RTA_ENCAP, e.append(nil))
}
