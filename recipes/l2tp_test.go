package recipes

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/packets"
)

// l2tpSession matches an L2TPv3 data packet of session id sid: over IP
// (protocol 115) the session id is the first 4 bytes of the payload;
// over UDP (port dport) it follows a 4-byte header of flags and version.
func l2tpSession(encap string, dport int, sid uint32) packets.Matcher {
	return packets.Func(fmt.Sprintf("l2tp %s session %d", encap, sid), func(p *packets.Packet) bool {
		d := p.Data
		if len(d) < 14 {
			return false
		}
		et := binary.BigEndian.Uint16(d[12:14])
		var proto byte
		var payload []byte
		switch {
		case et == 0x0800 && len(d) >= 34:
			ihl := int(d[14]&0x0f) * 4
			proto, payload = d[23], d[14+ihl:]
		case et == 0x86dd && len(d) >= 54:
			proto, payload = d[20], d[54:]
		default:
			return false
		}
		switch {
		case encap == "ip" && proto == 115 && len(payload) >= 4:
			return binary.BigEndian.Uint32(payload) == sid
		case encap == "udp" && proto == 17 && len(payload) >= 16:
			return int(binary.BigEndian.Uint16(payload[2:4])) == dport && binary.BigEndian.Uint32(payload[12:16]) == sid
		}
		return false
	})
}

// TestL2TPTunnel (LNST's L2TPTunnelRecipe) builds an L2TPv3 tunnel with
// an Ethernet pseudowire session between h1 and h2, over IP and over
// UDP, on IPv4 and IPv6 underlays, pings both families through the
// session's devices and finds the session id on the wire.
func TestL2TPTunnel(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "l2tp_eth", "l2tp_ip")
	h1, h2 := m.Host("h1"), m.Host("h2")
	n := 0
	for _, encap := range []string{"ip", "udp"} {
		for _, f := range enrtFamilies {
			n++
			t.Run(encap+"/"+f.name, func(t *testing.T) {
				a1, a2 := enrtUnderlay(t, h1, h2, f, 210+2*n)
				ends := [2]string{a1, a2}
				hosts := [2]*lnsttest.Host{h1, h2}
				sid := [2]uint32{uint32(100 + n), uint32(200 + n)}
				var devs [2]*lnsttest.Device
				for k, h := range hosts {
					tun := devices.L2tpTunnel{TunnelID: uint32(10*n + k + 1), PeerTunnelID: uint32(10*n + 2 - k), Encap: encap, Local: ends[k], Remote: ends[1-k]}
					if encap == "udp" {
						tun.SrcPort, tun.DstPort = 5000+k, 5001-k
					}
					h.AddL2tpTunnel(t, tun)
					devs[k] = h.AddL2tpSession(t, devices.L2tpSession{TunnelID: tun.TunnelID, SessionID: sid[k], PeerSessionID: sid[1-k], Name: "l2tpeth0"})
					devs[k].Up(t)
				}
				inner := enrtAddrs(t, 211+2*n, devs)
				for _, g := range enrtFamilies {
					enrtPing(t, h1, enrtAddr(inner[g.name][1]))
					enrtPing(t, h2, enrtAddr(inner[g.name][0]))
				}
				// h1 sends to h2's session id.
				lnsttest.ExpectPackets(t, h1.Iface("eth0"), l2tpSession(encap, 5001, sid[1]),
					func() { enrtPing(t, h1, enrtAddr(inner["ipv4"][1])) }, lnsttest.AtLeast(3))
			})
		}
	}
}
