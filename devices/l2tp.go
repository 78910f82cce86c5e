package devices

import "fmt"

// L2tpTunnel is an L2TPv3 tunnel (ip l2tp add tunnel) between Local and
// Remote, over UDP or directly over IP (protocol 115). Its sessions
// (L2tpSession) carry Ethernet pseudowires.
type L2tpTunnel struct {
	// TunnelID is this end's tunnel id, PeerTunnelID the other end's;
	// both 1..4294967295.
	TunnelID, PeerTunnelID uint32
	// Encap is "udp" or "ip".
	Encap string
	// Local and Remote are the ends, both IPv4 or both IPv6.
	Local, Remote string
	// SrcPort and DstPort are the UDP ports (udp only; 1..65535).
	SrcPort, DstPort int `json:",omitempty"`
	// UDPChecksum turns UDP checksums on (IPv4; IPv6 always has them).
	UDPChecksum bool `json:",omitempty"`
}

// String names the tunnel: "l2tp tunnel 10 udp 198.18.1.1->198.18.1.2".
func (t L2tpTunnel) String() string {
	return fmt.Sprintf("l2tp tunnel %d %s %s->%s", t.TunnelID, t.Encap, t.Local, t.Remote)
}

// Family is 4 or 6, after Remote (0 if it is not an address).
func (t L2tpTunnel) Family() int { return addrFamily(t.Remote) }

// Validate checks the ids, Encap, the ends and the ports.
func (t L2tpTunnel) Validate() error {
	c := xfrmCheck{what: t.String()}
	if t.TunnelID == 0 || t.PeerTunnelID == 0 {
		return c.fail("TunnelID", "tunnel ids are 1 or more (TunnelID %d, PeerTunnelID %d)", t.TunnelID, t.PeerTunnelID)
	}
	if _, _, err := c.endpoints(t.Local, t.Remote); err != nil {
		return err
	}
	switch t.Encap {
	case "udp":
		if t.SrcPort < 1 || t.SrcPort > 65535 || t.DstPort < 1 || t.DstPort > 65535 {
			return c.fail("SrcPort", "udp needs SrcPort and DstPort in 1..65535 (%d, %d)", t.SrcPort, t.DstPort)
		}
	case "ip":
		if t.SrcPort != 0 || t.DstPort != 0 || t.UDPChecksum {
			return c.fail("SrcPort", "ports and UDPChecksum are for udp encapsulation")
		}
	default:
		return c.fail("Encap", "%q is not \"udp\" or \"ip\"", t.Encap)
	}
	return nil
}

// L2tpSession is an Ethernet pseudowire session (ip l2tp add session)
// of tunnel TunnelID: its device Name carries Ethernet frames to the
// other end's session PeerSessionID.
type L2tpSession struct {
	TunnelID, SessionID, PeerSessionID uint32
	// Name is the session's Ethernet device ("" lets the kernel name it
	// l2tpethN).
	Name string `json:",omitempty"`
	// Cookie and PeerCookie are 0, 4 or 8 bytes.
	Cookie, PeerCookie []byte `json:",omitempty"`
	// NoL2Spec leaves out the default L2-specific sublayer (ip l2tp
	// l2spec_type none); both ends must agree.
	NoL2Spec bool `json:",omitempty"`
}

// String names the session: "l2tp session 10/20".
func (s L2tpSession) String() string {
	return fmt.Sprintf("l2tp session %d/%d", s.TunnelID, s.SessionID)
}

// Validate checks the ids, Name and the cookies' lengths.
func (s L2tpSession) Validate() error {
	c := xfrmCheck{what: s.String()}
	if s.TunnelID == 0 || s.SessionID == 0 || s.PeerSessionID == 0 {
		return c.fail("SessionID", "tunnel and session ids are 1 or more (%d, %d, peer %d)", s.TunnelID, s.SessionID, s.PeerSessionID)
	}
	if s.Name != "" {
		if err := CheckName(s.Name); err != nil {
			return c.fail("Name", "%v", err)
		}
	}
	for _, k := range []struct {
		f string
		v []byte
	}{{"Cookie", s.Cookie}, {"PeerCookie", s.PeerCookie}} {
		if n := len(k.v); n != 0 && n != 4 && n != 8 {
			return c.fail(k.f, "is %d bytes; a cookie is 0, 4 or 8", n)
		}
	}
	return nil
}
