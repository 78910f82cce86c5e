package recipes

import (
	"flag"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestMixedLabBond: h1 needs the bonding driver, h2 and h3 do not. Under
// -lnst.lab=auto on a kernel without bonding only h1 is a VM guest; h2 and
// h3 stay namespace hosts, on the same network as the guest. h1 bonds its
// two ports (active-backup) and all three ping each other over network n1.
// On a kernel with bonding all three are namespace hosts; under
// -lnst.lab=vm all three are guests.
func TestMixedLabBond(t *testing.T) {
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.Kernel("bond"),
			lnsttest.IfaceReq("eth0", lnsttest.Net("n1")), lnsttest.IfaceReq("eth1", lnsttest.Net("n1"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("h3", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
	h1, h2, h3 := m.Host("h1"), m.Host("h2"), m.Host("h3")
	if f := flag.Lookup("lnst.lab"); f != nil && f.Value.String() == "auto" && h1.Lab() == "vm" {
		require.Equal(t, "netns", h2.Lab(), "h2 needs no other kernel: a namespace host")
		require.Equal(t, "netns", h3.Lab(), "h3 needs no other kernel: a namespace host")
	}
	t.Logf("h1 is in the %s lab, h2 in the %s lab, h3 in the %s lab", h1.Lab(), h2.Lab(), h3.Lab())
	bond := enrtBond(t, h1, devices.Bond{Name: "bond0", Mode: "active-backup", Miimon: 100 * time.Millisecond})
	bond.AddIP(t, "198.18.25.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.25.2/24")
	h3.Iface("eth0").AddIP(t, "198.18.25.3/24")
	for _, c := range []struct {
		from *lnsttest.Host
		dst  string
	}{{h2, "198.18.25.1"}, {h3, "198.18.25.1"}, {h1, "198.18.25.2"}, {h1, "198.18.25.3"}, {h2, "198.18.25.3"}} {
		res := modules.Ping{Dst: c.dst, Count: 3, Interval: 200 * time.Millisecond}.Run(t, c.from)
		require.Zero(t, res.Lost, "%s to %s", c.from.Name(), c.dst)
	}
}
