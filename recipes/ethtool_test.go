package recipes

import (
	"testing"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// TestRingCoalesce reads the ring sizes and interrupt coalescing of h1's
// eth0, changes its tx-frames coalescing in a subtest, and checks that
// the subtest's end set it back and that h1 still reaches h2. eth0 is
// down for the change: virtio-net (the VM lab's NIC) takes tx-frames 0 or
// 1 (TX NAPI off or on), and only on a device that is down. A driver
// without these settings (a veth: the namespace lab) skips the recipe.
func TestRingCoalesce(t *testing.T) {
	m := enrtTwoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	eth0 := h1.Iface("eth0")
	sizes, max, ringOK := eth0.Ring(t)
	coal, coalOK := eth0.Coalesce(t)
	if ringOK {
		t.Logf("h1 eth0 rings: %v, maximums %v", sizes, max)
		for name, size := range sizes {
			if m, ok := max[name]; ok {
				require.LessOrEqual(t, size, m, "ring %s within its maximum", name)
			}
		}
	}
	if !coalOK {
		t.Skip("h1's eth0 has no coalescing settings: not supported by its driver")
	}
	t.Logf("h1 eth0 coalescing: %v", coal)
	tx, ok := coal["tx-frames"]
	if !ok {
		t.Skipf("h1's eth0 coalescing has no tx-frames (it has %v): not supported by its driver", coal)
	}
	want := tx / 2
	if tx <= 1 {
		want = 1 - tx
	}
	t.Run("change", func(t *testing.T) {
		eth0.Down(t)
		eth0.SetCoalesce(t, map[string]uint32{"tx-frames": want})
		got, _ := eth0.Coalesce(t)
		require.Equal(t, want, got["tx-frames"])
	})
	got, _ := eth0.Coalesce(t)
	require.Equal(t, coal, got, "h1's eth0 coalescing is set back")
	link := enrtAddrs(t, 144, [2]*lnsttest.Device{eth0, h2.Iface("eth0")})
	enrtPing(t, h1, enrtAddr(link["ipv4"][1]))
}
