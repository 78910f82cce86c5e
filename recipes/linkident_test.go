package recipes

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestRenameSharedHandles renames devices through one handle and uses
// another handle of each, taken before, which must name it by its new
// name: a created veth end and the required eth0 (whose Iface follows).
// After the subtest every handle names its device by its old name again.
func TestRenameSharedHandles(t *testing.T) {
	m := twoHosts(t)
	h1 := m.Host("h1")
	v := h1.Create(t, devices.Veth{Name: "rn0", PeerName: "rn1"})
	other := h1.Iface("rn0")
	eth0, eth0Other := h1.Iface("eth0"), h1.Iface("eth0")
	eth0Name := eth0.Name()
	t.Run("rename", func(t *testing.T) {
		v.Rename(t, "rn0x")
		require.Equal(t, "rn0x", other.Name())
		other.SetMTU(t, 1400)
		require.Equal(t, 1400, v.Info(t).MTU)

		eth0.Rename(t, "lnstren0")
		require.Equal(t, "lnstren0", eth0Other.Name())
		require.Equal(t, "lnstren0", h1.Iface("eth0").Name(), "Iface of the required name after the rename")
		eth0Other.AddIP(t, "198.18.56.1/24")
		require.Contains(t, eth0.Info(t).IPs, netip.MustParsePrefix("198.18.56.1/24"))
	})
	require.Equal(t, "rn0", other.Name())
	require.Equal(t, eth0Name, eth0Other.Name())
	require.Equal(t, eth0Name, h1.Iface("eth0").Name())
	require.Equal(t, 1500, other.Info(t).MTU)
}

// TestSetNetnsSharedHandles moves a veth end into a namespace through one
// handle and configures it through another taken before, then pings
// across it; after the subtest both are the device on h1 again.
func TestSetNetnsSharedHandles(t *testing.T) {
	m := twoHosts(t)
	h1 := m.Host("h1")
	v0 := h1.Create(t, devices.Veth{Name: "sh0", PeerName: "sh1"})
	v0.Up(t)
	v0.AddIP(t, "198.18.57.1/24")
	v1, v1Other := h1.Iface("sh1"), h1.Iface("sh1")
	t.Run("move", func(t *testing.T) {
		inner := h1.Netns(t, "shinner")
		v1.SetNetns(t, inner)
		v1Other.Up(t)
		v1Other.AddIP(t, "198.18.57.2/24")
		res := modules.Ping{Dst: "198.18.57.1", Count: 3, Interval: 50 * time.Millisecond}.Run(t, inner)
		require.Zero(t, res.Lost)
	})
	info := v1Other.Info(t)
	require.Equal(t, "sh1", info.Name, "sh1 is back on h1 and its other handle reaches it there")
	require.Equal(t, "veth", info.Type)
}
