package recipes

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestPing pings over IPv4 and IPv6 between two hosts on one network.
func TestPing(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.1.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.1.2/24")
	h1.Iface("eth0").AddIP(t, "2001:db8:1::1/64")
	h2.Iface("eth0").AddIP(t, "2001:db8:1::2/64")

	for _, dst := range []string{"198.18.1.2", "2001:db8:1::2"} {
		res := modules.Ping{Dst: dst, Count: 5, Interval: 50 * time.Millisecond}.Run(t, h1)
		require.Equal(t, 5, res.Sent, "to %s", dst)
		require.Zero(t, res.Lost, "to %s", dst)
		require.Positive(t, res.RTTAvg, "to %s", dst)
	}
	back := modules.Ping{Dst: "198.18.1.1", Count: 3, Interval: 50 * time.Millisecond}.Run(t, h2)
	require.Zero(t, back.Lost)
}
