package recipes

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestOffloads switches offloads on both ends in every combination of
// gro, gso and tso and pings over each, IPv4 and IPv6; the features are
// back as they were after each combination.
func TestOffloads(t *testing.T) {
	t.Parallel()
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.12.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.12.2/24")
	h1.Iface("eth0").AddIP(t, "2001:db8:12::1/64")
	h2.Iface("eth0").AddIP(t, "2001:db8:12::2/64")
	before := h1.Iface("eth0").Features(t)

	for _, gro := range []bool{false, true} {
		for _, tso := range []bool{false, true} {
			for _, gso := range []bool{false, true} {
				f := map[string]bool{"gro": gro, "tso": tso, "gso": gso}
				t.Run(featureString(f), func(t *testing.T) {
					for _, h := range []string{"h1", "h2"} {
						m.Host(h).Iface("eth0").SetFeatures(t, f)
					}
					got := h1.Iface("eth0").Features(t)
					require.Equal(t, gro, got["rx-gro"])
					require.Equal(t, tso, got["tx-tcp-segmentation"])
					require.Equal(t, gso, got["tx-generic-segmentation"])
					for _, dst := range []string{"198.18.12.2", "2001:db8:12::2"} {
						res := modules.Ping{Dst: dst, Count: 2, Interval: 50 * time.Millisecond, Size: 4000}.Run(t, h1)
						require.Zero(t, res.Lost, "to %s", dst)
					}
				})
				require.Equal(t, before, h1.Iface("eth0").Features(t), "features restored")
			}
		}
	}
}

func featureString(f map[string]bool) string {
	s := ""
	for _, k := range sortedKeys(map[string]string{"gro": "", "tso": "", "gso": ""}) {
		v := "off"
		if f[k] {
			v = "on"
		}
		s += k + "-" + v + "_"
	}
	return s[:len(s)-1]
}
