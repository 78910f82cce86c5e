package recipes

import (
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// enslaveUpPort makes master on h1 in a subtest and enslaves eth0, which
// is up, and eth1, which is down, to it with SetMaster: no setting down
// by hand, though the bonding and team drivers take only ports that are
// down. Both are the master's, eth0 up again; after the subtest both are
// free again, eth0 up and eth1 down as before.
func enslaveUpPort(t *testing.T, h1 *lnsttest.Host, master devices.Spec) {
	t.Helper()
	eth0, eth1 := h1.Iface("eth0"), h1.Iface("eth1")
	eth0.Up(t)
	eth1.Down(t)
	t.Run("enslave", func(t *testing.T) {
		m := h1.Create(t, master)
		eth0.SetMaster(t, m)
		eth1.SetMaster(t, m)
		for _, p := range []*lnsttest.Device{eth0, eth1} {
			require.Equal(t, master.LinkName(), p.Info(t).Master, "master of %s", p.Name())
		}
		require.Equal(t, "up", eth0.Info(t).State, "eth0, up before, is up again after enslaving")
	})
	for _, c := range []struct {
		d     *lnsttest.Device
		state string
	}{{eth0, "up"}, {eth1, "down"}} {
		info := c.d.Info(t)
		require.Empty(t, info.Master, "master of %s after the subtest", c.d.Name())
		require.Equal(t, c.state, info.State, "state of %s after the subtest", c.d.Name())
	}
}

// TestSetMasterUpPortBond enslaves a port that is up to a bond (see
// enslaveUpPort).
func TestSetMasterUpPortBond(t *testing.T) {
	m := enrtTwoHostsTwoNets(t, "bond")
	enslaveUpPort(t, m.Host("h1"), devices.Bond{Name: "bond9", Mode: "active-backup"})
}

// TestSetMasterUpPortTeam enslaves a port that is up to a team (see
// enslaveUpPort). It needs teamd.
func TestSetMasterUpPortTeam(t *testing.T) {
	m := enrtTwoHostsTwoNets(t, "team")
	h1 := m.Host("h1")
	if !enrtHasTool(t, h1, "teamd") {
		t.Skipf("%s has no teamd: team devices require it (Debian: apt-get install libteam-utils)", h1.Name())
	}
	enslaveUpPort(t, h1, devices.Team{Name: "team9", Runner: "activebackup"})
}
