package recipes

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestDummy gives a dummy device on h2 an address of each family, routes
// h1 to them through h2, and pings them and runs the standard measurement
// set to them (enrtPerf).
func TestDummy(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "dummy")
	h1, h2 := m.Host("h1"), m.Host("h2")
	link := enrtAddrs(t, 140, [2]*lnsttest.Device{h1.Iface("eth0"), h2.Iface("eth0")})
	d := h2.Create(t, devices.Dummy{Name: "dummy0"})
	d.Up(t)
	require.Equal(t, "dummy", d.Info(t).Type)
	targets := map[string]string{"ipv4": "198.18.141.1", "ipv6": "2001:db8:8d::1"}
	d.AddIP(t, targets["ipv4"]+"/32")
	d.AddIP(t, targets["ipv6"]+"/128")
	h1.AddRoute(t, targets["ipv4"]+"/32", lnsttest.Via(enrtAddr(link["ipv4"][1])))
	h1.AddRoute(t, targets["ipv6"]+"/128", lnsttest.Via(enrtAddr(link["ipv6"][1])))
	for _, f := range enrtFamilies {
		t.Run(f.name, func(t *testing.T) {
			enrtPing(t, h1, targets[f.name])
			enrtPerf(t, h1, h2, targets[f.name], f.name == "ipv4")
		})
	}
}

// TestVrf enslaves h1's eth0 to a VRF (table 10), routes in the VRF's
// table to addresses behind h2, and pings them from inside the VRF; the
// main table does not reach them. It does so twice: the kernel adds the
// l3mdev rules that steer a VRF's traffic to its table for a namespace's
// first VRF only, so the second round shows that the agent puts them back
// after the first round's restore took them away, and each restore leaves
// the rules as they were.
func TestVrf(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "vrf")
	h1, h2 := m.Host("h1"), m.Host("h2")
	rules := func(t *testing.T) string {
		return h1.Output(t, "ip rule show; ip -6 rule show", lnsttest.Desc("rules of h1"))
	}
	before := rules(t)
	for _, round := range []string{"first", "again"} {
		t.Run(round, func(t *testing.T) {
			vrfPing(t, h1, h2)
			require.Contains(t, rules(t), "lookup [l3mdev-table]", "h1 has the l3mdev rules while its VRF is there")
		})
		require.Equal(t, before, rules(t), "h1's rules after the %s VRF is gone", round)
	}
}

// vrfPing makes VRF red on h1 with eth0 in it and pings h2 from inside it.
func vrfPing(t *testing.T, h1, h2 *lnsttest.Host) {
	t.Helper()
	vrf := h1.Create(t, devices.Vrf{Name: "red", Table: 10})
	vrf.Up(t)
	h1.Iface("eth0").SetMaster(t, vrf)
	require.Equal(t, "red", h1.Iface("eth0").Info(t).Master)
	link := enrtAddrs(t, 142, [2]*lnsttest.Device{h1.Iface("eth0"), h2.Iface("eth0")})
	targets := map[string]string{"ipv4": "198.18.143.1", "ipv6": "2001:db8:8f::1"}
	h2.Iface("lo").AddIP(t, targets["ipv4"]+"/32")
	h2.Iface("lo").AddIP(t, targets["ipv6"]+"/128")
	for _, f := range enrtFamilies {
		t.Run(f.name, func(t *testing.T) {
			h1.AddRoute(t, targets[f.name]+"/"+map[string]string{"ipv4": "32", "ipv6": "128"}[f.name],
				lnsttest.Via(enrtAddr(link[f.name][1])), lnsttest.Dev(h1.Iface("eth0")), lnsttest.Table(10))
			res := modules.Ping{Dst: targets[f.name], Count: 3, Interval: 50 * time.Millisecond, Iface: "red"}.Run(t, h1)
			require.Zero(t, res.Lost, "in VRF red: %v", res)
			h1.Run(t, "ping -c 1 -W 1 "+targets[f.name], lnsttest.ExpectFail(), lnsttest.Desc("no route outside the VRF"))
		})
	}
}
