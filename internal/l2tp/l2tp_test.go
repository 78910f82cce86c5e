package l2tp

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink/nl"
)

func attrs(t *testing.T, m Message) map[uint16][]byte {
	t.Helper()
	if m.Data[0] != m.Cmd || m.Data[1] != GenlVersion {
		t.Fatalf("genl header %x for command %d", m.Data[:4], m.Cmd)
	}
	as, err := nl.ParseRouteAttr(m.Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint16][]byte{}
	for _, a := range as {
		out[a.Attr.Type] = a.Value
	}
	return out
}

func u32v(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }
func u16v(b []byte) uint16 { return binary.NativeEndian.Uint16(b) }

func TestTunnelCreateUDP4(t *testing.T) {
	m, err := TunnelCreate(devices.L2tpTunnel{TunnelID: 10, PeerTunnelID: 20, Encap: "udp", Local: "198.18.1.1", Remote: "198.18.1.2", SrcPort: 5000, DstPort: 6000, UDPChecksum: true})
	if err != nil {
		t.Fatal(err)
	}
	a := attrs(t, m)
	if m.Cmd != CmdTunnelCreate || u32v(a[AttrConnID]) != 10 || u32v(a[AttrPeerConnID]) != 20 || a[AttrProtoVersion][0] != 3 || u16v(a[AttrEncapType]) != EncapUDP {
		t.Errorf("tunnel attrs %x", a)
	}
	// in_addr in network byte order: the address's bytes.
	if !bytes.Equal(a[AttrIPSaddr], []byte{198, 18, 1, 1}) || !bytes.Equal(a[AttrIPDaddr], []byte{198, 18, 1, 2}) {
		t.Errorf("addresses %x %x", a[AttrIPSaddr], a[AttrIPDaddr])
	}
	if u16v(a[AttrUDPSport]) != 5000 || u16v(a[AttrUDPDport]) != 6000 || a[AttrUDPCsum][0] != 1 {
		t.Errorf("udp %x", a)
	}
}

func TestTunnelCreateIP6(t *testing.T) {
	m, err := TunnelCreate(devices.L2tpTunnel{TunnelID: 1, PeerTunnelID: 2, Encap: "ip", Local: "2001:db8::1", Remote: "2001:db8::2"})
	if err != nil {
		t.Fatal(err)
	}
	a := attrs(t, m)
	if u16v(a[AttrEncapType]) != EncapIP || len(a[AttrIP6Saddr]) != 16 || a[AttrIP6Daddr][15] != 2 {
		t.Errorf("attrs %x", a)
	}
	for _, k := range []uint16{AttrIPSaddr, AttrUDPSport, AttrUDPDport, AttrUDPCsum} {
		if _, ok := a[k]; ok {
			t.Errorf("attribute %d in an IPv6 ip-encap tunnel", k)
		}
	}
}

func TestSession(t *testing.T) {
	m, err := SessionCreate(devices.L2tpSession{TunnelID: 10, SessionID: 30, PeerSessionID: 40, Name: "l2tpeth7", Cookie: []byte{1, 2, 3, 4}, PeerCookie: []byte{5, 6, 7, 8, 9, 10, 11, 12}})
	if err != nil {
		t.Fatal(err)
	}
	a := attrs(t, m)
	if m.Cmd != CmdSessionCreate || u32v(a[AttrConnID]) != 10 || u32v(a[AttrSessionID]) != 30 || u32v(a[AttrPeerSessionID]) != 40 ||
		u16v(a[AttrPwType]) != PwTypeEth || a[AttrL2SpecType][0] != L2SpecDefault || string(a[AttrIfname]) != "l2tpeth7\x00" ||
		len(a[AttrCookie]) != 4 || len(a[AttrPeerCookie]) != 8 {
		t.Errorf("session attrs %x", a)
	}
	d := attrs(t, SessionDelete(10, 30))
	if u32v(d[AttrConnID]) != 10 || u32v(d[AttrSessionID]) != 30 {
		t.Errorf("delete %x", d)
	}
	d = attrs(t, TunnelDelete(10))
	if len(d) != 1 || u32v(d[AttrConnID]) != 10 {
		t.Errorf("tunnel delete %x", d)
	}
}

func TestValidate(t *testing.T) {
	good := devices.L2tpTunnel{TunnelID: 1, PeerTunnelID: 2, Encap: "udp", Local: "198.18.1.1", Remote: "198.18.1.2", SrcPort: 1, DstPort: 2}
	for _, tc := range []struct {
		mod  func(*devices.L2tpTunnel)
		want string
	}{
		{func(x *devices.L2tpTunnel) { x.TunnelID = 0 }, "tunnel ids are 1 or more"},
		{func(x *devices.L2tpTunnel) { x.Encap = "tcp" }, `"tcp" is not "udp" or "ip"`},
		{func(x *devices.L2tpTunnel) { x.DstPort = 0 }, "udp needs SrcPort and DstPort"},
		{func(x *devices.L2tpTunnel) { x.Encap = "ip" }, "ports and UDPChecksum are for udp"},
		{func(x *devices.L2tpTunnel) { x.Remote = "2001:db8::2" }, "not of the family"},
	} {
		x := good
		tc.mod(&x)
		if _, err := TunnelCreate(x); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", x, err, tc.want)
		}
	}
	for _, tc := range []struct {
		s    devices.L2tpSession
		want string
	}{
		{devices.L2tpSession{TunnelID: 1, SessionID: 0, PeerSessionID: 1}, "session ids are 1 or more"},
		{devices.L2tpSession{TunnelID: 1, SessionID: 1, PeerSessionID: 1, Cookie: []byte{1, 2}}, "Cookie: is 2 bytes"},
		{devices.L2tpSession{TunnelID: 1, SessionID: 1, PeerSessionID: 1, Name: "a/b"}, "Name"},
	} {
		if _, err := SessionCreate(tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.s, err, tc.want)
		}
	}
}

// TestCmdNumbers pins the commands to linux/l2tp.h's enum: a dump of
// sessions sent as 7 (L2TP_CMD_SESSION_MODIFY, which has no dump) fails
// with EOPNOTSUPP, as the clean check's did in a VM guest.
func TestCmdNumbers(t *testing.T) {
	for name, c := range map[string][2]int{
		"TUNNEL_CREATE": {CmdTunnelCreate, 1}, "TUNNEL_DELETE": {CmdTunnelDelete, 2}, "TUNNEL_GET": {CmdTunnelGet, 4},
		"SESSION_CREATE": {CmdSessionCreate, 5}, "SESSION_DELETE": {CmdSessionDelete, 6}, "SESSION_GET": {CmdSessionGet, 8},
	} {
		if c[0] != c[1] {
			t.Errorf("L2TP_CMD_%s is %d in linux/l2tp.h, %d here", name, c[1], c[0])
		}
	}
}
