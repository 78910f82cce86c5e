package recipes

import (
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// TestMacvlan puts a macvlan in bridge mode on h1's eth0, with its own MAC
// and addresses, and reaches it from h2; then two macvlans on one eth0
// (one moved into a namespace of h1, so that traffic between them is not
// delivered locally) reach each other through the macvlan bridge.
func TestMacvlan(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "macvlan")
	h1, h2 := m.Host("h1"), m.Host("h2")

	t.Run("from-other-host", func(t *testing.T) {
		mv := h1.Create(t, devices.Macvlan{Name: "mv0", Parent: h1.Iface("eth0").Name(), Mode: "bridge"})
		mv.Up(t)
		info := mv.Info(t)
		require.Equal(t, "macvlan", info.Type)
		require.NotEqual(t, h1.Iface("eth0").Info(t).HWAddr.String(), info.HWAddr.String(), "a macvlan has its own MAC")
		ends := enrtAddrs(t, 70, [2]*lnsttest.Device{mv, h2.Iface("eth0")})
		enrtOverlay(t, h1, h2, ends, true)
	})

	t.Run("bridge-mode-same-parent", func(t *testing.T) {
		inner := h1.Netns(t, "mvns")
		enrtNoDAD(t, inner)
		mv1 := h1.Create(t, devices.Macvlan{Name: "mv1", Parent: h1.Iface("eth0").Name(), Mode: "bridge"})
		// Moved back before it is deleted at cleanup: a macvlan left to die
		// with its namespace is destroyed later, by the kernel, and keeps
		// eth0 busy for the next recipe given this host.
		mv2 := h1.Create(t, devices.Macvlan{Name: "mv2", Parent: h1.Iface("eth0").Name(), Mode: "bridge"})
		mv2.SetNetns(t, inner)
		mv1.Up(t)
		mv2.Up(t)
		ends := enrtAddrs(t, 71, [2]*lnsttest.Device{mv1, mv2})
		enrtOverlay(t, h1, inner, ends, false)
	})
}
