// Package l2tp builds the requests of the "l2tp" generic netlink family
// (include/uapi/linux/l2tp.h): L2TPv3 tunnels and Ethernet pseudowire
// sessions, as ip l2tp makes them. It only encodes; the caller sends the
// messages in the host's namespace.
package l2tp

import (
	"net/netip"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink/nl"
)

// The family's name and version.
const (
	GenlName    = "l2tp"
	GenlVersion = 1
)

// Commands.
const (
	CmdTunnelCreate  = 1
	CmdTunnelDelete  = 2
	CmdSessionCreate = 5
	CmdSessionDelete = 6
	// CmdTunnelGet and CmdSessionGet read (dump) tunnels and sessions.
	CmdTunnelGet  = 4
	CmdSessionGet = 8
)

// Attributes.
const (
	AttrPwType        = 1  // u16
	AttrEncapType     = 2  // u16
	AttrL2SpecType    = 5  // u8
	AttrProtoVersion  = 7  // u8
	AttrIfname        = 8  // string
	AttrConnID        = 9  // u32
	AttrPeerConnID    = 10 // u32
	AttrSessionID     = 11 // u32
	AttrPeerSessionID = 12 // u32
	AttrUDPCsum       = 13 // u8
	AttrCookie        = 15 // 0, 4 or 8 bytes
	AttrPeerCookie    = 16
	AttrIPSaddr       = 24 // be32
	AttrIPDaddr       = 25
	AttrUDPSport      = 26 // u16
	AttrUDPDport      = 27
	AttrIP6Saddr      = 31 // in6_addr
	AttrIP6Daddr      = 32
)

// Values.
const (
	EncapUDP        = 0
	EncapIP         = 1
	PwTypeEth       = 5
	L2SpecNone      = 0
	L2SpecDefault   = 1
	protocolVersion = 3
)

// Message is one request: its command and payload (genlmsghdr and
// attributes).
type Message struct {
	Cmd  uint8
	Data []byte
}

func genl(cmd uint8, attrs ...*nl.RtAttr) Message {
	b := (&nl.Genlmsg{Command: cmd, Version: GenlVersion}).Serialize()
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return Message{Cmd: cmd, Data: b}
}

func u32(typ int, v uint32) *nl.RtAttr { return nl.NewRtAttr(typ, nl.Uint32Attr(v)) }
func u16(typ int, v uint16) *nl.RtAttr { return nl.NewRtAttr(typ, nl.Uint16Attr(v)) }
func u8(typ int, v uint8) *nl.RtAttr   { return nl.NewRtAttr(typ, []byte{v}) }

// TunnelCreate validates t and returns its L2TP_CMD_TUNNEL_CREATE.
func TunnelCreate(t devices.L2tpTunnel) (Message, error) {
	if err := t.Validate(); err != nil {
		return Message{}, err
	}
	local, remote := netip.MustParseAddr(t.Local), netip.MustParseAddr(t.Remote)
	attrs := []*nl.RtAttr{
		u32(AttrConnID, t.TunnelID), u32(AttrPeerConnID, t.PeerTunnelID),
		u8(AttrProtoVersion, protocolVersion),
	}
	if t.Encap == "udp" {
		attrs = append(attrs, u16(AttrEncapType, EncapUDP))
	} else {
		attrs = append(attrs, u16(AttrEncapType, EncapIP))
	}
	if local.Is4() {
		// in_addr: network byte order, as the address's bytes.
		l, r := local.As4(), remote.As4()
		attrs = append(attrs, nl.NewRtAttr(AttrIPSaddr, l[:]), nl.NewRtAttr(AttrIPDaddr, r[:]))
	} else {
		l, r := local.As16(), remote.As16()
		attrs = append(attrs, nl.NewRtAttr(AttrIP6Saddr, l[:]), nl.NewRtAttr(AttrIP6Daddr, r[:]))
	}
	if t.Encap == "udp" {
		attrs = append(attrs, u16(AttrUDPSport, uint16(t.SrcPort)), u16(AttrUDPDport, uint16(t.DstPort)))
		if t.UDPChecksum {
			attrs = append(attrs, u8(AttrUDPCsum, 1))
		}
	}
	return genl(CmdTunnelCreate, attrs...), nil
}

// TunnelDelete is the L2TP_CMD_TUNNEL_DELETE of tunnel id (its sessions
// go with it).
func TunnelDelete(id uint32) Message { return genl(CmdTunnelDelete, u32(AttrConnID, id)) }

// SessionCreate validates s and returns its L2TP_CMD_SESSION_CREATE.
func SessionCreate(s devices.L2tpSession) (Message, error) {
	if err := s.Validate(); err != nil {
		return Message{}, err
	}
	attrs := []*nl.RtAttr{
		u32(AttrConnID, s.TunnelID), u32(AttrSessionID, s.SessionID), u32(AttrPeerSessionID, s.PeerSessionID),
		u16(AttrPwType, PwTypeEth),
	}
	if s.NoL2Spec {
		attrs = append(attrs, u8(AttrL2SpecType, L2SpecNone))
	} else {
		attrs = append(attrs, u8(AttrL2SpecType, L2SpecDefault))
	}
	if s.Name != "" {
		attrs = append(attrs, nl.NewRtAttr(AttrIfname, nl.ZeroTerminated(s.Name)))
	}
	if len(s.Cookie) > 0 {
		attrs = append(attrs, nl.NewRtAttr(AttrCookie, s.Cookie))
	}
	if len(s.PeerCookie) > 0 {
		attrs = append(attrs, nl.NewRtAttr(AttrPeerCookie, s.PeerCookie))
	}
	return genl(CmdSessionCreate, attrs...), nil
}

// SessionDelete is the L2TP_CMD_SESSION_DELETE of session sid of tunnel
// tid.
func SessionDelete(tid, sid uint32) Message {
	return genl(CmdSessionDelete, u32(AttrConnID, tid), u32(AttrSessionID, sid))
}
