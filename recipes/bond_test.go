package recipes

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// enrtBondPorts are the ports the bonding recipes aggregate, by the names
// their requirements give them.
var enrtBondPorts = []string{"eth0", "eth1"}

// enrtBondPort is the required name of h's bond port whose real name is
// real (as the bonding driver reports it), "" if none is.
func enrtBondPort(h *lnsttest.Host, real string) string {
	for _, p := range enrtBondPorts {
		if h.Iface(p).Name() == real {
			return p
		}
	}
	return ""
}

// enrtBond makes spec on h with eth0 and eth1 as its ports (each set down
// before it is enslaved, as the bonding driver wants) and brings it up.
func enrtBond(t *testing.T, h *lnsttest.Host, spec devices.Bond) *lnsttest.Device {
	t.Helper()
	bond := h.Create(t, spec)
	for _, p := range enrtBondPorts {
		d := h.Iface(p)
		d.Down(t)
		d.SetMaster(t, bond)
	}
	bond.Up(t)
	for _, p := range enrtBondPorts {
		h.Iface(p).Up(t)
		require.Equal(t, spec.Name, h.Iface(p).Info(t).Master, "%s: master of %s", h.Name(), p)
	}
	require.Equal(t, "bond", bond.Info(t).Type)
	return bond
}

// enrtActiveSlave reads the active port of an active-backup bond and
// returns its required name ("eth0"), or the real name the driver gave if
// it is none of the ports.
func enrtActiveSlave(t *testing.T, h *lnsttest.Host, bond string) string {
	t.Helper()
	real := strings.TrimSpace(h.Iface(bond).ReadSysfs(t, "bonding/active_slave"))
	if p := enrtBondPort(h, real); p != "" {
		return p
	}
	return real
}

// TestBondActiveBackup bonds eth0 (network n1) and eth1 (network n2) in
// active-backup mode with MII monitoring every 100ms on both hosts, pings
// and runs flows over the bonds, then fails the network of the active port
// (its ports go down on both hosts) during a ping: the bonds switch to the
// other port and traffic goes on.
func TestBondActiveBackup(t *testing.T) {
	m := enrtTwoHostsTwoNets(t, "bond")
	h1, h2 := m.Host("h1"), m.Host("h2")
	spec := devices.Bond{Name: "bond0", Mode: "active-backup", Miimon: 100 * time.Millisecond}
	b1, b2 := enrtBond(t, h1, spec), enrtBond(t, h2, spec)
	ends := enrtAddrs(t, 100, [2]*lnsttest.Device{b1, b2})
	enrtOverlay(t, h1, h2, ends, true)

	t.Run("failover", func(t *testing.T) {
		active := enrtActiveSlave(t, h1, "bond0")
		require.Contains(t, enrtBondPorts, active, "active port of h1's bond0")
		dst := enrtAddr(ends["ipv4"][1])
		// ping exits 0 when some replies came: the few lost while the bonds
		// switch ports are allowed.
		sent := func() int {
			n, err := strconv.Atoi(strings.TrimSpace(h1.Iface(active).ReadSysfs(t, "statistics/tx_packets")))
			require.NoError(t, err, "tx_packets of h1's %s", active)
			return n
		}
		before := sent()
		during := h1.Start(t, fmt.Sprintf("ping -4 -c 40 -i 0.05 %s", dst), lnsttest.Desc("ping during failover"))
		// Let the ping run over the first port before it fails.
		lnsttest.WaitFor(t, "the ping to send over h1's "+active, 5*time.Second, func() bool { return sent() >= before+4 })
		for _, h := range []*lnsttest.Host{h1, h2} {
			h.Iface(active).Down(t)
		}
		for _, h := range []*lnsttest.Host{h1, h2} {
			lnsttest.WaitFor(t, h.Name()+"'s bond0 to leave "+active, 2*time.Second, func() bool {
				now := enrtActiveSlave(t, h, "bond0")
				return now != active && slices.Contains(enrtBondPorts, now)
			})
		}
		out := strings.Split(strings.TrimSpace(during.Wait(t).Stdout), "\n")
		t.Logf("ping during failover: %s", strings.Join(out[max(len(out)-2, 0):], "; "))
		enrtOverlay(t, h1, h2, ends, false)
	})
}

// TestBondBalanceRR bonds eth0 and eth1 in balance-rr mode on both hosts
// (packets go round-robin over both networks) and pings and runs flows
// over the bonds.
func TestBondBalanceRR(t *testing.T) {
	t.Parallel()
	m := enrtTwoHostsTwoNets(t, "bond")
	h1, h2 := m.Host("h1"), m.Host("h2")
	spec := devices.Bond{Name: "bond0", Mode: "balance-rr", Miimon: 100 * time.Millisecond}
	b1, b2 := enrtBond(t, h1, spec), enrtBond(t, h2, spec)
	ends := enrtAddrs(t, 101, [2]*lnsttest.Device{b1, b2})
	enrtOverlay(t, h1, h2, ends, true)
	for _, p := range enrtBondPorts {
		require.Positive(t, h1.Iface(p).Info(t).Stats.TxPackets, "h1 sent over %s too", p)
	}
}

// TestVlanOverBond puts VLAN 10 on an active-backup bond of eth0 and eth1
// on both hosts and pings and runs flows over it.
func TestVlanOverBond(t *testing.T) {
	t.Parallel()
	m := enrtTwoHostsTwoNets(t, "bond", "vlan")
	h1, h2 := m.Host("h1"), m.Host("h2")
	spec := devices.Bond{Name: "bond0", Mode: "active-backup", Miimon: 100 * time.Millisecond}
	enrtBond(t, h1, spec)
	enrtBond(t, h2, spec)
	var vl [2]*lnsttest.Device
	for i, h := range []*lnsttest.Host{h1, h2} {
		vl[i] = h.Create(t, devices.Vlan{Name: "bond0.10", Parent: "bond0", ID: 10})
		vl[i].Up(t)
	}
	ends := enrtAddrs(t, 102, vl)
	enrtOverlay(t, h1, h2, ends, false)
}

// TestBridgeOverBond enslaves an active-backup bond of eth0 and eth1 to a
// bridge on h1, addresses the bridge, and reaches h2's bond over it.
func TestBridgeOverBond(t *testing.T) {
	t.Parallel()
	m := enrtTwoHostsTwoNets(t, "bond", "bridge")
	h1, h2 := m.Host("h1"), m.Host("h2")
	spec := devices.Bond{Name: "bond0", Mode: "active-backup", Miimon: 100 * time.Millisecond}
	bond1 := enrtBond(t, h1, spec)
	bond2 := enrtBond(t, h2, spec)
	br := h1.Create(t, devices.Bridge{Name: "br0"})
	bond1.SetMaster(t, br)
	br.Up(t)
	require.Equal(t, "br0", bond1.Info(t).Master)
	ends := enrtAddrs(t, 103, [2]*lnsttest.Device{br, bond2})
	enrtOverlay(t, h1, h2, ends, false)
}

// TestTeam aggregates eth0 and eth1 in a team (activebackup runner) on both
// hosts and pings and runs flows over it. It needs the team driver and
// teamd (the agent starts teamd for each team device).
func TestTeam(t *testing.T) {
	t.Parallel()
	m := enrtTwoHostsTwoNets(t, "team")
	h1, h2 := m.Host("h1"), m.Host("h2")
	for _, h := range []*lnsttest.Host{h1, h2} {
		if !enrtHasTool(t, h, "teamd") {
			t.Skipf("%s has no teamd: team devices require it (Debian: apt-get install libteam-utils)", h.Name())
		}
	}
	var teams [2]*lnsttest.Device
	for i, h := range []*lnsttest.Host{h1, h2} {
		teams[i] = h.Create(t, devices.Team{Name: "team0", Runner: "activebackup"})
		for _, p := range enrtBondPorts {
			h.Iface(p).Down(t)
			h.Iface(p).SetMaster(t, teams[i])
			h.Iface(p).Up(t)
		}
		teams[i].Up(t)
	}
	ends := enrtAddrs(t, 104, teams)
	enrtOverlay(t, h1, h2, ends, false)
}
