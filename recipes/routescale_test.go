package recipes

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// enrtScaleRoutes is how many routes TestRouteScale adds per family.
const enrtScaleRoutes = 2000

// enrtCountRoutes counts the routes of a family in h's main table.
func enrtCountRoutes(t *testing.T, h *lnsttest.Host, family string) int {
	t.Helper()
	flag := "-4"
	if family == "ipv6" {
		flag = "-6"
	}
	out := h.Output(t, "ip "+flag+" route show | wc -l", lnsttest.Desc("count "+family+" routes"))
	n, err := strconv.Atoi(strings.TrimSpace(out))
	require.NoError(t, err, "wc -l printed %q", out)
	return n
}

// TestRouteScale adds 2,000 routes per family on h1 through Host.AddRoute
// in a subtest, checks the kernel has them, and that they are all gone
// once the subtest has ended.
func TestRouteScale(t *testing.T) {
	m := enrtTwoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	ends := enrtAddrs(t, 90, [2]*lnsttest.Device{h1.Iface("eth0"), h2.Iface("eth0")})
	dst := map[string]func(i int) string{
		"ipv4": func(i int) string { return fmt.Sprintf("198.19.%d.%d/32", i/256, i%256) },
		"ipv6": func(i int) string { return fmt.Sprintf("2001:db8:1000:%x::/64", i) },
	}
	for _, f := range enrtFamilies {
		before := enrtCountRoutes(t, h1, f.name)
		t.Run(f.name, func(t *testing.T) {
			via := lnsttest.Via(enrtAddr(ends[f.name][1]))
			start := time.Now()
			for i := range enrtScaleRoutes {
				h1.AddRoute(t, dst[f.name](i), via)
			}
			lnsttest.Record(t, f.name+" routes added", fmt.Sprintf("%d in %v", enrtScaleRoutes, time.Since(start).Round(time.Millisecond)))
			require.Equal(t, before+enrtScaleRoutes, enrtCountRoutes(t, h1, f.name))
			enrtPing(t, h1, enrtAddr(ends[f.name][1]))
		})
		require.Equal(t, before, enrtCountRoutes(t, h1, f.name), "routes left after the subtest")
	}
}
