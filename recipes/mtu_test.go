package recipes

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// enrtDFPing runs ping with the don't-fragment bit set (ping -M do) and a
// payload of size bytes from h to dst; with fail, it must fail. Ping has
// no DF field, so this runs ping itself.
func enrtDFPing(t *testing.T, h *lnsttest.Host, dst string, size int, fail bool) {
	t.Helper()
	fam := "-4"
	if netip.MustParseAddr(dst).Is6() {
		fam = "-6"
	}
	cmd := fmt.Sprintf("ping %s -M do -c 2 -i 0.05 -W 2 -s %d %s", fam, size, dst)
	opts := []lnsttest.RunOpt{lnsttest.Timeout(10 * time.Second)}
	if fail {
		opts = append(opts, lnsttest.ExpectFail())
	}
	h.Run(t, cmd, opts...)
}

// enrtHeaders is the size of the IP and ICMP headers of a ping: the
// largest payload that fits an MTU is the MTU minus this.
var enrtHeaders = map[string]int{"ipv4": 20 + 8, "ipv6": 40 + 8}

// TestMTU checks jumbo frames (MTU 9000 on both ends, a full-size ping with
// DF), IP fragmentation (a 3000-byte ping over MTU 1500) and path MTU over
// a VXLAN tunnel (the overlay keeps its default MTU: DF pings up to it
// pass, bigger ones fail, and a TCP flow passes).
func TestMTU(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "vxlan")
	h1, h2 := m.Host("h1"), m.Host("h2")

	// The lab's network ports have MTU 1500, so the jumbo frames go over a
	// veth pair between h1 and a namespace of h1.
	t.Run("jumbo", func(t *testing.T) {
		inner := h1.Netns(t, "jumbo")
		enrtNoDAD(t, inner)
		a := h1.Create(t, devices.Veth{Name: "vj0", PeerName: "vj1"})
		b := h1.Iface("vj1")
		b.SetNetns(t, inner)
		for _, d := range []*lnsttest.Device{a, b} {
			d.SetMTU(t, 9000)
			d.Up(t)
		}
		require.Equal(t, 9000, b.Info(t).MTU)
		ends := enrtAddrs(t, 80, [2]*lnsttest.Device{a, b})
		for _, f := range enrtFamilies {
			t.Run(f.name, func(t *testing.T) {
				dst := enrtAddr(ends[f.name][1])
				full := 9000 - enrtHeaders[f.name]
				res := modules.Ping{Dst: dst, Count: 2, Interval: 50 * time.Millisecond, Size: full}.Run(t, h1)
				require.Zero(t, res.Lost, "%v", res)
				enrtDFPing(t, h1, dst, full, false)
				enrtDFPing(t, h1, dst, full+1, true)
			})
		}
	})

	t.Run("fragmentation", func(t *testing.T) {
		ends := enrtAddrs(t, 81, [2]*lnsttest.Device{h1.Iface("eth0"), h2.Iface("eth0")})
		require.Equal(t, 1500, h1.Iface("eth0").Info(t).MTU)
		for _, f := range enrtFamilies {
			t.Run(f.name, func(t *testing.T) {
				dst := enrtAddr(ends[f.name][1])
				res := modules.Ping{Dst: dst, Count: 2, Interval: 50 * time.Millisecond, Size: 3000}.Run(t, h1)
				require.Zero(t, res.Lost, "%v", res)
				enrtDFPing(t, h1, dst, 1500-enrtHeaders[f.name], false)
				enrtDFPing(t, h1, dst, 3000, true)
			})
		}
	})

	t.Run("pmtu-vxlan", func(t *testing.T) {
		u1, u2 := "198.18.82.1/24", "198.18.82.2/24"
		h1.Iface("eth0").AddIP(t, u1)
		h2.Iface("eth0").AddIP(t, u2)
		v1 := h1.Create(t, devices.Vxlan{Name: "vxlan0", Parent: h1.Iface("eth0").Name(), ID: 42, Local: enrtAddr(u1), Remote: enrtAddr(u2)})
		v2 := h2.Create(t, devices.Vxlan{Name: "vxlan0", Parent: h2.Iface("eth0").Name(), ID: 42, Local: enrtAddr(u2), Remote: enrtAddr(u1)})
		v1.Up(t)
		v2.Up(t)
		mtu := v1.Info(t).MTU
		require.Equal(t, 1450, mtu, "default overlay MTU: 1500 less the VXLAN/UDP/IPv4/Ethernet headers")
		ends := enrtAddrs(t, 83, [2]*lnsttest.Device{v1, v2})
		for _, f := range enrtFamilies {
			t.Run(f.name, func(t *testing.T) {
				dst := enrtAddr(ends[f.name][1])
				enrtDFPing(t, h1, dst, mtu-enrtHeaders[f.name], false)
				enrtDFPing(t, h1, dst, mtu-enrtHeaders[f.name]+1, true)
				res := modules.Ping{Dst: dst, Count: 2, Interval: 50 * time.Millisecond, Size: 3000}.Run(t, h1)
				require.Zero(t, res.Lost, "fragmented over the overlay: %v", res)
				// TCP finds the path MTU (MSS from the overlay MTU) and
				// carries full-size segments.
				enrtIperf(t, h1, h2, dst, false)
			})
		}
	})
}
