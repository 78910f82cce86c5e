package recipes

import (
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/packets"
	"github.com/stretchr/testify/require"
)

// TestVlan puts VLAN 10 on eth0 of both hosts and pings and runs flows over
// it; a host on another VLAN id (20) does not hear it.
func TestVlan(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "vlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	var vl [2]*lnsttest.Device
	for i, h := range []*lnsttest.Host{h1, h2} {
		vl[i] = h.Create(t, devices.Vlan{Name: "vlan10", Parent: h.Iface("eth0").Name(), ID: 10})
		vl[i].Up(t)
	}
	info := vl[0].Info(t)
	require.Equal(t, "vlan", info.Type)
	ends := enrtAddrs(t, 110, vl)
	enrtOverlay(t, h1, h2, ends, true)
	// On eth0 the pings carry tag 10 (the capture puts back the tag the
	// kernel keeps in the packet's metadata).
	lnsttest.ExpectPackets(t, h1.Iface("eth0"), packets.Match{VLAN: 10, Proto: "icmp-echo"},
		func() { enrtPing(t, h1, enrtAddr(ends["ipv4"][1])) }, lnsttest.AtLeast(3))

	t.Run("other-vlan-isolated", func(t *testing.T) {
		v20 := h2.Create(t, devices.Vlan{Name: "vlan20", Parent: h2.Iface("eth0").Name(), ID: 20})
		v20.Up(t)
		v20.AddIP(t, "198.18.111.2/24")
		vl[0].AddIP(t, "198.18.111.1/24")
		h1.Run(t, "ping -4 -c 2 -i 0.05 -W 1 198.18.111.2", lnsttest.ExpectFail())
	})
}
