package recipes

import (
	"strings"
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

func devicesBridge(name string) devices.Bridge   { return devices.Bridge{Name: name} }
func devicesVeth(name, peer string) devices.Veth { return devices.Veth{Name: name, PeerName: peer} }

// restoreSysctls are the sysctls TestSysctlRestored changes.
var restoreSysctls = map[string]string{
	"net.ipv4.ip_forward":             "1",
	"net.ipv6.conf.all.forwarding":    "1",
	"net.ipv4.conf.all.rp_filter":     "2",
	"net.ipv4.tcp_congestion_control": "reno",
}

// snapshot is a host's state as the recipe sees it: links, addresses,
// routes and the sysctls it changes.
func snapshot(t *testing.T, h *lnsttest.Host) string {
	t.Helper()
	var b strings.Builder
	for _, cmd := range []string{
		"ip -br link",
		"ip -br addr",
		"ip route show table all",
		"ip -6 route show table all",
	} {
		b.WriteString("$ " + cmd + "\n" + h.Output(t, cmd, lnsttest.Desc("snapshot: "+cmd)))
	}
	for _, k := range sortedKeys(restoreSysctls) {
		b.WriteString(k + " = " + h.ReadSysctl(t, k) + "\n")
	}
	// eth0's own values, through its device: on a pool machine (and
	// under -lnst.lab.ifnames=mapped) its real name is another.
	eth0 := h.Iface("eth0")
	b.WriteString("sysfs eth0 mtu = " + eth0.ReadSysfs(t, "mtu") + "\n")
	b.WriteString("eth0 ipv6.accept_dad = " + eth0.ReadSysctl(t, "ipv6.accept_dad") + "\n")
	b.WriteString("eth0 ipv4.arp_ignore = " + eth0.ReadSysctl(t, "ipv4.arp_ignore") + "\n")
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sortStrings(k)
	return k
}

// TestSysctlRestored changes sysctls, sysfs, MTU, addresses, link state and
// devices in a subtest, and checks that once the subtest's cleanup ran the
// hosts are exactly as before.
func TestSysctlRestored(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	before1, before2 := snapshot(t, h1), snapshot(t, h2)

	t.Run("change", func(t *testing.T) {
		for k, v := range restoreSysctls {
			h1.Sysctl(t, k, v)
			require.Equal(t, v, h1.ReadSysctl(t, k))
		}
		h2.Iface("eth0").WriteSysfs(t, "mtu", "1280")
		eth0 := h1.Iface("eth0")
		eth0.Sysctl(t, "ipv6.accept_dad", "0")
		require.Equal(t, "0", h1.ReadSysctl(t, "net.ipv6.conf."+eth0.Name()+".accept_dad"), "Device.Sysctl sets the device's own key")
		h2.Iface("eth0").Sysctl(t, "ipv4.arp_ignore", "1")
		eth0.SetMTU(t, 9000)
		eth0.AddIP(t, "198.18.4.1/24")
		eth0.AddIP(t, "2001:db8:4::1/64")
		h2.Iface("eth0").AddIP(t, "198.18.4.2/24")
		// Through the agent, so that its restore removes them. The
		// kernel flushes every IPv4 route through eth0 when its last IPv4
		// address goes, restore or not; it keeps the IPv6 ones, which
		// only the restore of AddRoute removes.
		h1.AddRoute(t, "198.18.40.0/24", lnsttest.Via("198.18.4.2"))
		h1.AddRoute(t, "2001:db8:40::/64", lnsttest.Via("2001:db8:4::2"))
		h1.AddRoute(t, "2001:db8:41::/64", lnsttest.Dev(eth0), lnsttest.Table(140))
		require.Contains(t, h1.Output(t, "ip -6 route show table all"), "2001:db8:41::/64 dev "+eth0.Name()+" table 140")
		h2.Iface("eth0").Down(t)
		br := h1.Create(t, devices.Bridge{Name: "br9"})
		h1.Create(t, devices.Veth{Name: "v9a", PeerName: "v9b"}).SetMaster(t, br)
		h1.Iface("lo").DelIP(t, "127.0.0.1/8")

		require.NotEqual(t, before1, snapshot(t, h1))
		require.NotEqual(t, before2, snapshot(t, h2))
	})

	require.Equal(t, before1, snapshot(t, h1), "h1 after restore")
	routes := h1.Output(t, "ip route show table all") + h1.Output(t, "ip -6 route show table all")
	for _, dst := range []string{"198.18.40.0/24", "2001:db8:40::/64", "2001:db8:41::/64"} {
		require.NotContains(t, routes, dst, "the route AddRoute added is gone after restore")
	}
	require.Equal(t, before2, snapshot(t, h2), "h2 after restore")
}
