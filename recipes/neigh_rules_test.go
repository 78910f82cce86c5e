package recipes

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestNeighbours adds permanent IPv4 and IPv6 neighbour entries and checks
// they are gone after the subtest.
func TestNeighbours(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1 := m.Host("h1")
	eth0 := h1.Iface("eth0")
	show := func() string { return h1.Output(t, "ip neigh show dev "+eth0.Name()+" nud permanent") }
	t.Run("add", func(t *testing.T) {
		h1.AddNeigh(t, eth0, "198.18.50.9", "02:00:00:00:50:09")
		h1.AddNeigh(t, eth0, "2001:db8:50::9", "02:00:00:00:50:0a")
		out := show()
		require.Contains(t, out, "198.18.50.9 lladdr 02:00:00:00:50:09 PERMANENT")
		require.Contains(t, out, "2001:db8:50::9 lladdr 02:00:00:00:50:0a PERMANENT")
	})
	require.Empty(t, show())
}

// TestPolicyRouting sends traffic from one source address through table
// 100, which alone has the route to a network behind h2.
func TestPolicyRouting(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.51.1/24")
	h1.Iface("eth0").AddIP(t, "198.18.51.11/24")
	h2.Iface("eth0").AddIP(t, "198.18.51.2/24")
	h2.Iface("lo").AddIP(t, "198.18.52.1/32")

	h1.AddRoute(t, "198.18.52.0/24", lnsttest.Via("198.18.51.2"), lnsttest.Table(100))
	h1.AddRule(t, lnsttest.From("198.18.51.11/32"), lnsttest.RuleTable(100), lnsttest.Priority(1000))

	out := h1.Output(t, "ip route get 198.18.52.1 from 198.18.51.11")
	require.Contains(t, out, "table 100")
	res := modules.Ping{Dst: "198.18.52.1", Iface: "198.18.51.11", Count: 3, Interval: 50 * time.Millisecond}.Run(t, h1)
	require.Zero(t, res.Lost, "from the source the rule matches")
	h1.Run(t, "ip route get 198.18.52.1 from 198.18.51.1", lnsttest.ExpectFail())
}

// TestMultipath spreads a route over two gateways on h2, one with three
// times the weight of the other.
func TestMultipath(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	eth0 := h1.Iface("eth0")
	eth0.AddIP(t, "198.18.53.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.53.2/24")
	h2.Iface("eth0").AddIP(t, "198.18.53.3/24")
	h2.Iface("lo").AddIP(t, "198.18.54.1/32")

	h1.AddRoute(t, "198.18.54.0/24", lnsttest.Nexthop("198.18.53.2", eth0, 1), lnsttest.Nexthop("198.18.53.3", eth0, 3))
	out := h1.Output(t, "ip route show 198.18.54.0/24")
	require.Contains(t, out, "nexthop via 198.18.53.2 dev "+eth0.Name()+" weight 1")
	require.Contains(t, out, "nexthop via 198.18.53.3 dev "+eth0.Name()+" weight 3")
	res := modules.Ping{Dst: "198.18.54.1", Count: 3, Interval: 50 * time.Millisecond}.Run(t, h1)
	require.Zero(t, res.Lost)
}

// TestSetNetns moves one end of a veth into a namespace of h1, pings
// across it, and checks it is back on h1 after the subtest.
func TestSetNetns(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1 := m.Host("h1")
	v0 := h1.Create(t, devices.Veth{Name: "ns0", PeerName: "ns1"})
	v0.Up(t)
	v0.AddIP(t, "198.18.55.1/24")
	t.Run("move", func(t *testing.T) {
		inner := h1.Netns(t, "inner")
		v1 := h1.Iface("ns1")
		v1.SetNetns(t, inner)
		require.NotContains(t, h1.Output(t, "ip -o link show"), "ns1@")
		v1.Up(t)
		v1.AddIP(t, "198.18.55.2/24")
		res := modules.Ping{Dst: "198.18.55.1", Count: 3, Interval: 50 * time.Millisecond}.Run(t, inner)
		require.Zero(t, res.Lost)
	})
	out := h1.Output(t, "ip -o link show ns1")
	require.Contains(t, out, "ns1@ns0", "ns1 is back on h1:\n%s", out)
}

// TestWaitState waits for the carrier and operational state of a veth as
// its peer goes down and up.
func TestWaitState(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1 := m.Host("h1")
	v0 := h1.Create(t, devices.Veth{Name: "ws0", PeerName: "ws1"})
	v1 := h1.Iface("ws1")
	v0.Up(t)
	v1.Up(t)
	v0.WaitCarrier(t, true, 5*time.Second)
	v0.WaitState(t, "up", 5*time.Second)
	v1.Down(t)
	v0.WaitCarrier(t, false, 5*time.Second)
	v0.WaitState(t, "down", 5*time.Second)
	v1.Up(t)
	v0.WaitCarrier(t, true, 5*time.Second)
	v0.WaitState(t, "up", 5*time.Second)
}
