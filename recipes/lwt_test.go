package recipes

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/packets"
)

// Lightweight tunnels and the rest of ENRT's tunnel topologies: external
// (collect-metadata) devices driven by encap routes, VXLAN-GPE, tunnels
// over macvlan, VLAN and bond, and a tunnel end in a host's namespace.

// lwtOverlay is the overlay address of host i (1 or 2) in network n of
// family f, as a host prefix ("198.18.N.I/32", "2001:db8:N::I/128"): an
// external device has no connected route; the encap route to the peer's
// address is what sends packets into the tunnel.
func lwtOverlay(f enrtFamily, n, i int) string {
	a := enrtAddr(f.net(n, i))
	return netip.PrefixFrom(netip.MustParseAddr(a), netip.MustParseAddr(a).BitLen()).String()
}

// lwtTunnel makes spec (an External tunnel device) on h1 and h2, over an
// underlay of family under in network n, and gives each end an overlay
// address of each family in network n+1 with an encap route to the
// other's: enc (key, TTL, flags) with the peer's underlay address as the
// outer destination. An
// Ethernet tunnel (l2) gets permanent neighbours for the peer's overlay
// addresses: a neighbour solicitation is not routed, so it has no tunnel
// metadata and an external device drops it. It returns the overlay ends as
// enrtOverlay takes them.
func lwtTunnel(t *testing.T, h1, h2 *lnsttest.Host, under enrtFamily, n int, enc lnsttest.RouteEncap, spec devices.Spec, l2 bool) map[string][2]string {
	t.Helper()
	a1, a2 := enrtUnderlay(t, h1, h2, under, n)
	d := [2]*lnsttest.Device{h1.Create(t, spec), h2.Create(t, spec)}
	for _, e := range d {
		e.Up(t)
	}
	hosts, under2 := [2]*lnsttest.Host{h1, h2}, [2]string{a1, a2}
	ends := map[string][2]string{}
	for _, f := range enrtFamilies {
		o := [2]string{lwtOverlay(f, n+1, 1), lwtOverlay(f, n+1, 2)}
		ends[f.name] = o
		for i := range d {
			d[i].AddIP(t, o[i])
		}
		for i, h := range hosts {
			peer := 1 - i
			e := enc
			e.Dst = under2[peer]
			h.AddRoute(t, o[peer], lnsttest.Dev(d[i]), lnsttest.Encap(e))
			if l2 {
				h.AddNeigh(t, d[i], enrtAddr(o[peer]), d[peer].Info(t).HWAddr.String())
			}
		}
	}
	for _, h := range hosts {
		// Registered last: it runs first at cleanup, before the undos.
		t.Cleanup(func() { lwtDumpOnFailure(t, h) })
	}
	return ends
}

// lwtDiagnostics is what lwtDumpOnFailure prints: the tunnel devices in
// detail with their receive-error breakdown (a GRE device counts a
// checksum-flag mismatch as crc, a sequence-number one as fifo), the
// routes with their encap flags, and the counters that say where packets
// went (devices, IP, UDP, GRE).
const lwtDiagnostics = `ip -s -s -d link show; ip addr
echo "== routes"; ip -d route; ip -d -6 route
echo "== nstat"; nstat -az 2>/dev/null | grep -v ' 0 ' || true
true`

// lwtDumpOnFailure logs h's tunnel state when t has failed, before the
// cleanup takes it away.
func lwtDumpOnFailure(t *testing.T, h *lnsttest.Host) {
	if !t.Failed() {
		return
	}
	t.Logf("tunnel state on %s:\n%s", h.Name(), h.Output(t, lwtDiagnostics, lnsttest.Quiet(), lnsttest.Desc("tunnel state")))
}

// lwtPingBoth pings the overlay ends both ways in each family.
func lwtPingBoth(t *testing.T, h1, h2 *lnsttest.Host, ends map[string][2]string) {
	t.Helper()
	for _, f := range enrtFamilies {
		enrtPing(t, h1, enrtAddr(ends[f.name][1]))
		enrtPing(t, h2, enrtAddr(ends[f.name][0]))
	}
}

// TestVxlanLwtTunnel makes an external (collect-metadata) vxlan device on
// h1 and h2 and reaches the other end through encap routes ("encap ip id
// 1234 dst PEER"), over an IPv4 and an IPv6 underlay, IPv4 and IPv6
// inside; on h1's underlay device every echo request crosses inside VXLAN
// with the route's VNI.
func TestVxlanLwtTunnel(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "vxlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	for i, under := range enrtFamilies {
		t.Run("underlay="+under.name, func(t *testing.T) {
			const vni = 1234
			n := 186 + 2*i
			ends := lwtTunnel(t, h1, h2, under, n, udpLwtEncap(vni), devices.Vxlan{Name: "vxlan0", External: true}, true)
			c := h1.Iface("eth0").Capture(t, "udp port 4789")
			lwtPingBoth(t, h1, h2, ends)
			for _, f := range enrtFamilies {
				dst := netip.MustParsePrefix(ends[f.name][1]).Addr()
				echo := map[string]string{"ipv4": "icmp-echo", "ipv6": "icmp6-echo"}[f.name]
				c.Expect(t, packets.Match{VNI: vni, Proto: echo, Dst: dst}, lnsttest.AtLeast(3))
			}
			enrtOverlay(t, h1, h2, ends, under.name == "ipv4")
		})
	}
}

// TestGeneveLwtTunnel is TestVxlanLwtTunnel with an external Geneve
// device (VNI from the route) over an IPv4 underlay.
func TestGeneveLwtTunnel(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "geneve")
	h1, h2 := m.Host("h1"), m.Host("h2")
	ends := lwtTunnel(t, h1, h2, enrtFamilies[0], 190, udpLwtEncap(4321), devices.Geneve{Name: "gnv0", External: true}, true)
	c := h1.Iface("eth0").Capture(t, "udp port 6081")
	lwtPingBoth(t, h1, h2, ends)
	geneve := packets.Func("geneve vni 4321", func(p *packets.Packet) bool {
		g, _ := p.Decode().Layer(layers.LayerTypeGeneve).(*layers.Geneve)
		return g != nil && g.VNI == 4321
	})
	c.Expect(t, geneve, lnsttest.AtLeast(6))
	enrtOverlay(t, h1, h2, ends, true)
}

// udpLwtEncap is the encap of the UDP tunnels' (vxlan, geneve) routes:
// VNI id, TTL 64, and Csum, the outer UDP checksum, which a receiver over
// IPv6 requires (a zero one it drops as a checksum error). Key is what
// "ip route ... encap ip id N ... key" sets; vxlan and geneve send their
// VNI with or without it.
func udpLwtEncap(id uint64) lnsttest.RouteEncap {
	return lnsttest.RouteEncap{ID: id, TTL: 64, Csum: true, Key: true}
}

// TestGreLwtTunnel is TestVxlanLwtTunnel with an external GRE device (IP
// in GRE, the route's id as the GRE key) over an IPv4 underlay.
//
// The routes set Key (GRE sends the id as its key only with the flag)
// and not Csum: an external gre device made without "icsum" (as "ip link
// add ... type gre external" makes it) drops every packet whose GRE
// checksum flag differs from its own, counting it as a crc receive error
// (ip_tunnel_rcv), so a checksummed GRE packet never reaches it. On the
// wire every echo request carries key 77 and no checksum.
func TestGreLwtTunnel(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "gre")
	h1, h2 := m.Host("h1"), m.Host("h2")
	ends := lwtTunnel(t, h1, h2, enrtFamilies[0], 192, lnsttest.RouteEncap{ID: 77, TTL: 64, Key: true}, devices.Gre{Name: "gre1", External: true}, false)
	c := h1.Iface("eth0").Capture(t, "proto gre")
	lwtPingBoth(t, h1, h2, ends)
	keyed := packets.Func("gre key 77 without checksum", func(p *packets.Packet) bool {
		g, _ := p.Decode().Layer(layers.LayerTypeGRE).(*layers.GRE)
		return g != nil && g.KeyPresent && g.Key == 77 && !g.ChecksumPresent
	})
	c.Expect(t, keyed, lnsttest.AtLeast(6))
	enrtOverlay(t, h1, h2, ends, true)
}

// gpeHeader reads the VXLAN-GPE header of a packet to UDP port 4790: its
// next protocol (1 IPv4, 2 IPv6, 3 Ethernet) and VNI; ok is false for
// any other packet.
func gpeHeader(p *packets.Packet) (next byte, vni uint32, ok bool) {
	udp, _ := p.Decode().Layer(layers.LayerTypeUDP).(*layers.UDP)
	if udp == nil || udp.DstPort != 4790 || len(udp.Payload) < 8 {
		return 0, 0, false
	}
	h := udp.Payload
	const flagI, flagP = 0x08, 0x04 // VNI valid, next protocol present
	if h[0]&(flagI|flagP) != flagI|flagP {
		return 0, 0, false
	}
	return h[3], uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6]), true
}

// TestVxlanGpeTunnel makes a VXLAN-GPE device (external, IP with no
// Ethernet header) on h1 and h2, reaches the other end through encap
// routes over an IPv4 underlay, and checks the GPE header on h1's
// underlay device: next protocol IPv4 for the IPv4 pings, IPv6 for the
// IPv6 ones, with the route's VNI. A kernel without GPE fails the probe
// of creating one, and the recipe skips saying so.
func TestVxlanGpeTunnel(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "vxlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	probe := h1.Run(t, "ip link add lnstgpe0 type vxlan external gpe dstport 4799 && ip link del lnstgpe0",
		lnsttest.ExitCodes(0, 1, 2, 127), lnsttest.Quiet(), lnsttest.Desc("probe VXLAN-GPE"))
	if r := probe.Result(); r.ExitCode != 0 {
		t.Skipf("%s: the kernel (or ip) has no VXLAN-GPE: %s", h1.Name(), strings.TrimSpace(r.Stderr))
	}
	const vni = 4242
	ends := lwtTunnel(t, h1, h2, enrtFamilies[0], 194, udpLwtEncap(vni), devices.Vxlan{Name: "gpe0", External: true, GPE: true}, false)
	c := h1.Iface("eth0").Capture(t, "udp port 4790")
	lwtPingBoth(t, h1, h2, ends)
	for next, family := range map[byte]string{1: "IPv4", 2: "IPv6"} {
		c.Expect(t, packets.Func(fmt.Sprintf("vxlan-gpe vni %d next protocol %s", vni, family), func(p *packets.Packet) bool {
			nx, v, ok := gpeHeader(p)
			return ok && nx == next && v == vni
		}), lnsttest.AtLeast(6))
	}
	c.Expect(t, packets.Func("vxlan-gpe carrying Ethernet", func(p *packets.Packet) bool {
		nx, _, ok := gpeHeader(p)
		return ok && nx == 3
	}), lnsttest.NoPackets())
	enrtOverlay(t, h1, h2, ends, true)
}

// TestVxlanNetnsTunnel puts one end of a VXLAN (VNI 42) in a namespace of
// h1, on a macvlan of h1's eth0 moved there, and the other on h2, and
// pings and runs flows over it, IPv4 and IPv6 inside; the VNI is checked
// on h2's underlay device.
func TestVxlanNetnsTunnel(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "vxlan", "macvlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	inner := h1.Netns(t, "vxns")
	enrtNoDAD(t, inner)
	// Moved back before it is deleted at cleanup (see TestMacvlan).
	mv := h1.Create(t, devices.Macvlan{Name: "mvx0", Parent: h1.Iface("eth0").Name(), Mode: "bridge"})
	mv.SetNetns(t, inner)
	mv.Up(t)
	u1, u2 := enrtFamilies[0].net(196, 1), enrtFamilies[0].net(196, 2)
	mv.AddIP(t, u1)
	h2.Iface("eth0").AddIP(t, u2)
	v1 := inner.Create(t, devices.Vxlan{Name: "vxlan0", Parent: "mvx0", ID: 42, Local: enrtAddr(u1), Remote: enrtAddr(u2)})
	v2 := h2.Create(t, devices.Vxlan{Name: "vxlan0", Parent: h2.Iface("eth0").Name(), ID: 42, Local: enrtAddr(u2), Remote: enrtAddr(u1)})
	v1.Up(t)
	v2.Up(t)
	ends := enrtAddrs(t, 197, [2]*lnsttest.Device{v1, v2})
	c := h2.Iface("eth0").Capture(t, "udp port 4789")
	enrtPing(t, inner, enrtAddr(ends["ipv4"][1]))
	c.Expect(t, packets.Match{VNI: 42, Proto: "icmp-echo", Src: netip.MustParsePrefix(ends["ipv4"][0]).Addr()}, lnsttest.AtLeast(3))
	enrtOverlay(t, inner, h2, ends, true)
}

// TestIp6GreNetnsTunnel is TestVxlanNetnsTunnel with an ip6gre tunnel
// over an IPv6 underlay.
func TestIp6GreNetnsTunnel(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "ip6gre", "macvlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	inner := h1.Netns(t, "gre6ns")
	enrtNoDAD(t, inner)
	mv := h1.Create(t, devices.Macvlan{Name: "mvg0", Parent: h1.Iface("eth0").Name(), Mode: "bridge"})
	mv.SetNetns(t, inner)
	mv.Up(t)
	u1, u2 := enrtFamilies[1].net(198, 1), enrtFamilies[1].net(198, 2)
	mv.AddIP(t, u1)
	h2.Iface("eth0").AddIP(t, u2)
	g1 := inner.Create(t, devices.Ip6gre{Name: "gre6", Parent: "mvg0", Local: enrtAddr(u1), Remote: enrtAddr(u2)})
	g2 := h2.Create(t, devices.Ip6gre{Name: "gre6", Parent: h2.Iface("eth0").Name(), Local: enrtAddr(u2), Remote: enrtAddr(u1)})
	g1.Up(t)
	g2.Up(t)
	enrtOverlay(t, inner, h2, enrtAddrs(t, 199, [2]*lnsttest.Device{g1, g2}), false)
}

// overMacvlan makes a macvlan (bridge mode) on eth0 of h1 and h2, puts
// the underlay of family under in network n on them and returns them with
// the two underlay addresses.
func overMacvlan(t *testing.T, h1, h2 *lnsttest.Host, under enrtFamily, n int) ([2]*lnsttest.Device, string, string) {
	t.Helper()
	var mv [2]*lnsttest.Device
	for i, h := range []*lnsttest.Host{h1, h2} {
		mv[i] = h.Create(t, devices.Macvlan{Name: "mvu0", Parent: h.Iface("eth0").Name(), Mode: "bridge"})
		mv[i].Up(t)
		mv[i].AddIP(t, under.net(n, i+1))
	}
	return mv, enrtAddr(under.net(n, 1)), enrtAddr(under.net(n, 2))
}

// TestVxlanOverMacvlan runs a VXLAN (VNI 77) whose underlay is a macvlan
// of eth0 on each host, pings and runs flows over it, IPv4 and IPv6
// inside, and checks the VNI on h1's eth0 under the macvlan.
func TestVxlanOverMacvlan(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "vxlan", "macvlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	mv, a1, a2 := overMacvlan(t, h1, h2, enrtFamilies[0], 200)
	v1 := h1.Create(t, devices.Vxlan{Name: "vxlan0", Parent: mv[0].Name(), ID: 77, Local: a1, Remote: a2})
	v2 := h2.Create(t, devices.Vxlan{Name: "vxlan0", Parent: mv[1].Name(), ID: 77, Local: a2, Remote: a1})
	v1.Up(t)
	v2.Up(t)
	ends := enrtAddrs(t, 201, [2]*lnsttest.Device{v1, v2})
	c := h1.Iface("eth0").Capture(t, "udp port 4789")
	enrtPing(t, h1, enrtAddr(ends["ipv4"][1]))
	enrtPing(t, h1, enrtAddr(ends["ipv6"][1]))
	c.Expect(t, packets.Match{VNI: 77, Proto: "icmp-echo", Dst: netip.MustParsePrefix(ends["ipv4"][1]).Addr()}, lnsttest.AtLeast(3))
	c.Expect(t, packets.Match{VNI: 77, Proto: "icmp6-echo", Dst: netip.MustParsePrefix(ends["ipv6"][1]).Addr()}, lnsttest.AtLeast(3))
	enrtOverlay(t, h1, h2, ends, true)
}

// TestGreTunnelOverMacvlan runs a GRE tunnel whose underlay is a macvlan
// of eth0 on each host, and pings and runs flows over it.
func TestGreTunnelOverMacvlan(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "gre", "macvlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	mv, a1, a2 := overMacvlan(t, h1, h2, enrtFamilies[0], 202)
	g1 := h1.Create(t, devices.Gre{Name: "gre1", Parent: mv[0].Name(), Local: a1, Remote: a2})
	g2 := h2.Create(t, devices.Gre{Name: "gre1", Parent: mv[1].Name(), Local: a2, Remote: a1})
	g1.Up(t)
	g2.Up(t)
	enrtOverlay(t, h1, h2, enrtAddrs(t, 203, [2]*lnsttest.Device{g1, g2}), true)
}

// TestGreTunnelOverVlan runs a GRE tunnel whose underlay is VLAN 10 on
// eth0 of each host, and pings and runs flows over it.
func TestGreTunnelOverVlan(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "gre", "vlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	var vl [2]*lnsttest.Device
	for i, h := range []*lnsttest.Host{h1, h2} {
		vl[i] = h.Create(t, devices.Vlan{Name: "vlan10", Parent: h.Iface("eth0").Name(), ID: 10})
		vl[i].Up(t)
		vl[i].AddIP(t, enrtFamilies[0].net(204, i+1))
	}
	a1, a2 := enrtAddr(enrtFamilies[0].net(204, 1)), enrtAddr(enrtFamilies[0].net(204, 2))
	g1 := h1.Create(t, devices.Gre{Name: "gre1", Parent: "vlan10", Local: a1, Remote: a2})
	g2 := h2.Create(t, devices.Gre{Name: "gre1", Parent: "vlan10", Local: a2, Remote: a1})
	g1.Up(t)
	g2.Up(t)
	ends := enrtAddrs(t, 205, [2]*lnsttest.Device{g1, g2})
	c := h1.Iface("eth0").Capture(t, "vlan 10 and proto gre")
	enrtPing(t, h1, enrtAddr(ends["ipv4"][1]))
	c.Expect(t, packets.Match{VLAN: 10}, lnsttest.AtLeast(3))
	enrtOverlay(t, h1, h2, ends, true)
}

// TestGreTunnelOverBond runs a GRE tunnel whose underlay is an
// active-backup bond of eth0 and eth1 on each host, and pings and runs
// flows over it.
func TestGreTunnelOverBond(t *testing.T) {
	t.Parallel()
	m := enrtTwoHostsTwoNets(t, "gre", "bond")
	h1, h2 := m.Host("h1"), m.Host("h2")
	var addrs [2]string
	for i, h := range []*lnsttest.Host{h1, h2} {
		b := enrtBond(t, h, devices.Bond{Name: "bond0", Mode: "active-backup", Miimon: 100 * time.Millisecond})
		b.AddIP(t, enrtFamilies[0].net(206, i+1))
		addrs[i] = enrtAddr(enrtFamilies[0].net(206, i+1))
	}
	g1 := h1.Create(t, devices.Gre{Name: "gre1", Parent: "bond0", Local: addrs[0], Remote: addrs[1]})
	g2 := h2.Create(t, devices.Gre{Name: "gre1", Parent: "bond0", Local: addrs[1], Remote: addrs[0]})
	g1.Up(t)
	g2.Up(t)
	enrtOverlay(t, h1, h2, enrtAddrs(t, 207, [2]*lnsttest.Device{g1, g2}), true)
}
