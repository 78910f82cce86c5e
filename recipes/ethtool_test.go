package recipes

import (
	"testing"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// TestRingCoalesce changes the ring sizes and the tx-frames interrupt
// coalescing of h1's eth0 in subtests, and checks that each subtest's end
// set them back and that h1 still reaches h2. The rings shrink to half
// their size (virtio-net, the VM lab's NIC, resizes them on a kernel and
// QEMU with virtqueue reset). eth0 is down for the coalescing change:
// virtio-net takes tx-frames 0 or 1 (TX NAPI off or on), and only on a
// device that is down. A driver without these settings (a veth: the
// namespace lab) skips the subtest.
func TestRingCoalesce(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	eth0 := h1.Iface("eth0")
	sizes, max, ringOK := eth0.Ring(t)
	coal, coalOK := eth0.Coalesce(t)
	if !ringOK && !coalOK {
		t.Skip("h1's eth0 has neither ring sizes nor coalescing settings: not supported by its driver")
	}
	t.Run("ring", func(t *testing.T) {
		if !ringOK {
			t.Skip("h1's eth0 has no ring sizes: not supported by its driver")
		}
		t.Logf("h1 eth0 rings: %v, maximums %v", sizes, max)
		want := map[string]uint32{}
		for _, name := range []string{"rx", "tx"} {
			require.LessOrEqual(t, sizes[name], max[name], "ring %s within its maximum", name)
			if sizes[name] >= 128 {
				want[name] = sizes[name] / 2
			}
		}
		if len(want) == 0 {
			t.Skipf("h1's eth0 rings (%v) are too short to halve", sizes)
		}
		eth0.SetRing(t, want)
		got, _, _ := eth0.Ring(t)
		for name, size := range want {
			require.Equal(t, size, got[name], "ring %s", name)
		}
	})
	if ringOK {
		got, _, _ := eth0.Ring(t)
		require.Equal(t, sizes, got, "h1's eth0 ring sizes are set back")
	}
	t.Run("coalesce", func(t *testing.T) {
		tx, ok := coal["tx-frames"]
		if !ok {
			t.Skipf("h1's eth0 coalescing has no tx-frames (it has %v): not supported by its driver", coal)
		}
		t.Logf("h1 eth0 coalescing: %v", coal)
		want := tx / 2
		if tx <= 1 {
			want = 1 - tx
		}
		eth0.Down(t)
		eth0.SetCoalesce(t, map[string]uint32{"tx-frames": want})
		got, _ := eth0.Coalesce(t)
		require.Equal(t, want, got["tx-frames"])
	})
	if coalOK {
		got, _ := eth0.Coalesce(t)
		require.Equal(t, coal, got, "h1's eth0 coalescing is set back")
	}
	link := enrtAddrs(t, 144, [2]*lnsttest.Device{eth0, h2.Iface("eth0")})
	enrtPing(t, h1, enrtAddr(link["ipv4"][1]))
}
