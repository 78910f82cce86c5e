package recipes

import (
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestRoutes routes h1 to a network behind h2, over IPv4 and IPv6, and
// puts a route in another table with a metric.
func TestRoutes(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.10.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.10.2/24")
	h1.Iface("eth0").AddIP(t, "2001:db8:10::1/64")
	h2.Iface("eth0").AddIP(t, "2001:db8:10::2/64")
	h2.Iface("lo").AddIP(t, "198.18.20.1/32")
	h2.Iface("lo").AddIP(t, "2001:db8:20::1/128")

	h1.AddRoute(t, "198.18.20.0/24", lnsttest.Via("198.18.10.2"))
	h1.AddRoute(t, "2001:db8:20::/64", lnsttest.Via("2001:db8:10::2"), lnsttest.Dev(h1.Iface("eth0")))
	for _, dst := range []string{"198.18.20.1", "2001:db8:20::1"} {
		res := modules.Ping{Dst: dst, Count: 3, Interval: 50 * time.Millisecond}.Run(t, h1)
		require.Zero(t, res.Lost, "to %s", dst)
	}

	h1.AddRoute(t, "198.18.30.0/24", lnsttest.Dev(h1.Iface("eth0")), lnsttest.Table(100), lnsttest.Metric(10))
	out := h1.Output(t, "ip route show table 100")
	require.Contains(t, out, "198.18.30.0/24 dev "+h1.Iface("eth0").Name())
	require.Contains(t, out, "metric 10")
}

// TestRoutesRestored adds routes in a subtest and checks they are gone
// after it.
func TestRoutesRestored(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1 := m.Host("h1")
	before := h1.Output(t, "ip route show table all")
	t.Run("add", func(t *testing.T) {
		h1.Iface("eth0").AddIP(t, "198.18.11.1/24")
		h1.AddRoute(t, "198.18.21.0/24", lnsttest.Via("198.18.11.2"))
		h1.AddRoute(t, "default", lnsttest.Via("198.18.11.254"), lnsttest.Table(7))
		require.NotEqual(t, before, h1.Output(t, "ip route show table all"))
	})
	require.Equal(t, before, h1.Output(t, "ip route show table all"))
}

// TestNetns runs jobs in a namespace made inside a host.
func TestNetns(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	inner := m.Host("h1").Netns(t, "inner")
	out := inner.Output(t, "ip -o link show")
	// A kernel with tunnel modules loaded (gre, ipip, sit...) gives every
	// new namespace their fallback devices (gre0@NONE, tunl0@NONE...).
	var links []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, "@NONE:") {
			links = append(links, l)
		}
	}
	require.Len(t, links, 1, "only lo (and fallback tunnels) in a new namespace:\n%s", out)
	require.Contains(t, links[0], "lo:")
	inner.Sysctl(t, "net.ipv4.ip_forward", "1")
	require.Equal(t, "1", inner.ReadSysctl(t, "net.ipv4.ip_forward"))
	require.Equal(t, "0", m.Host("h1").ReadSysctl(t, "net.ipv4.ip_forward"), "the host's own value is untouched")
}

// TestHWAddr changes a MAC address, restored after the subtest.
func TestHWAddr(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	eth0 := m.Host("h1").Iface("eth0")
	old := eth0.Info(t).HWAddr.String()
	t.Run("set", func(t *testing.T) {
		eth0.SetHWAddr(t, "02:00:00:00:00:01")
		require.Equal(t, "02:00:00:00:00:01", eth0.Info(t).HWAddr.String())
	})
	require.Equal(t, old, eth0.Info(t).HWAddr.String())
}

// TestAddRoutesMultipath adds multipath routes with Host.AddRoutes (as
// Route values with Nexthops), checks the kernel has their paths and
// weights, and that they are gone after the subtest.
func TestAddRoutesMultipath(t *testing.T) {
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	eth0 := h1.Iface("eth0")
	eth0.AddIP(t, "198.18.58.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.58.2/24")
	h2.Iface("eth0").AddIP(t, "198.18.58.3/24")
	h2.Iface("lo").AddIP(t, "198.18.59.1/32")
	show := func() string { return h1.Run(t, "ip route show table 102").Result().Stdout }
	t.Run("add", func(t *testing.T) {
		hops := []lnsttest.Hop{{Via: "198.18.58.2", Dev: eth0, Weight: 2}, {Via: "198.18.58.3", Dev: eth0, Weight: 5}}
		h1.AddRoutes(t, []lnsttest.Route{
			{Dst: "198.18.59.0/24", Table: 102, Nexthops: hops},
			{Dst: "198.18.60.0/24", Table: 102, Via: "198.18.58.2"},
		})
		out := show()
		require.Contains(t, out, "198.18.59.0/24")
		require.Contains(t, out, "nexthop via 198.18.58.2 dev "+eth0.Name()+" weight 2")
		require.Contains(t, out, "nexthop via 198.18.58.3 dev "+eth0.Name()+" weight 5")
		require.Contains(t, out, "198.18.60.0/24 via 198.18.58.2 dev "+eth0.Name())
	})
	require.Empty(t, show())
}
