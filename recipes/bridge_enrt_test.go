package recipes

import (
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// TestBridgeTwoHosts makes a bridge on h1, enslaves h1's eth0 to it, puts
// h1's addresses on the bridge and reaches h2 over it, IPv4 and IPv6.
func TestBridgeTwoHosts(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "bridge")
	h1, h2 := m.Host("h1"), m.Host("h2")
	br := h1.Create(t, devices.Bridge{Name: "br0"})
	h1.Iface("eth0").SetMaster(t, br)
	br.Up(t)
	require.Equal(t, "br0", h1.Iface("eth0").Info(t).Master)
	ends := enrtAddrs(t, 84, [2]*lnsttest.Device{br, h2.Iface("eth0")})
	enrtOverlay(t, h1, h2, ends, true)
}
