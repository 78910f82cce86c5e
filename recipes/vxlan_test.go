package recipes

import (
	"net/netip"
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/packets"
	"github.com/stretchr/testify/require"
)

// TestVxlanUnicast builds a point-to-point VXLAN (VNI 42) between h1 and h2
// over an IPv4 underlay and over an IPv6 one, and pings and runs TCP and
// UDP flows over the overlay in both families.
func TestVxlanUnicast(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "vxlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	for i, under := range enrtFamilies {
		t.Run("underlay="+under.name, func(t *testing.T) {
			u1, u2 := under.net(60+i, 1), under.net(60+i, 2)
			h1.Iface("eth0").AddIP(t, u1)
			h2.Iface("eth0").AddIP(t, u2)
			v1 := h1.Create(t, devices.Vxlan{Name: "vxlan0", Parent: h1.Iface("eth0").Name(), ID: 42, Local: enrtAddr(u1), Remote: enrtAddr(u2)})
			v2 := h2.Create(t, devices.Vxlan{Name: "vxlan0", Parent: h2.Iface("eth0").Name(), ID: 42, Local: enrtAddr(u2), Remote: enrtAddr(u1)})
			v1.Up(t)
			v2.Up(t)
			info := v1.Info(t)
			require.Equal(t, "vxlan", info.Type)
			// The kernel leaves room for the outer headers: 50 bytes
			// over IPv4, 70 over IPv6.
			require.Equal(t, map[string]int{"ipv4": 1450, "ipv6": 1430}[under.name], info.MTU)
			ends := enrtAddrs(t, 62+i, [2]*lnsttest.Device{v1, v2})
			enrtOverlay(t, h1, h2, ends, under.name == "ipv4")
			// On the underlay, the pings travel inside VNI 42.
			dst := enrtAddr(ends["ipv4"][1])
			lnsttest.ExpectPackets(t, h1.Iface("eth0"), packets.Match{VNI: 42, Proto: "icmp-echo", Dst: netip.MustParseAddr(dst)},
				func() { enrtPing(t, h1, dst) }, lnsttest.AtLeast(3))
		})
	}
}

// TestVxlanMulticast builds a VXLAN (VNI 42) whose ends find each other
// through a multicast group on eth0, IPv4 (239.1.1.1) and IPv6 (ff05::42),
// pings over it and runs the standard measurement set over IPv4 (enrtPerf).
func TestVxlanMulticast(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "vxlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	groups := map[string]string{"ipv4": "239.1.1.1", "ipv6": "ff05::42"}
	for i, under := range enrtFamilies {
		t.Run("underlay="+under.name, func(t *testing.T) {
			h1.Iface("eth0").AddIP(t, under.net(64+i, 1))
			h2.Iface("eth0").AddIP(t, under.net(64+i, 2))
			spec := func(h *lnsttest.Host) devices.Vxlan {
				return devices.Vxlan{Name: "vxlan0", Parent: h.Iface("eth0").Name(), ID: 42, Group: groups[under.name]}
			}
			v1, v2 := h1.Create(t, spec(h1)), h2.Create(t, spec(h2))
			v1.Up(t)
			v2.Up(t)
			ends := enrtAddrs(t, 66+i, [2]*lnsttest.Device{v1, v2})
			for _, f := range enrtFamilies {
				enrtPing(t, h1, enrtAddr(ends[f.name][1]))
				enrtPing(t, h2, enrtAddr(ends[f.name][0]))
			}
			enrtPerf(t, h1, h2, enrtAddr(ends["ipv4"][1]), true)
			// The multicast VXLAN's unicast pings go inside VNI 42 too.
			lnsttest.ExpectPackets(t, h2.Iface("eth0"), packets.Match{VNI: 42, Proto: "icmp-reply", Incoming: true},
				func() { enrtPing(t, h2, enrtAddr(ends["ipv4"][0])) }, lnsttest.AtLeast(3))
		})
	}
}
