package recipes

import (
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestOvsBridge puts h1's eth0 into an Open vSwitch bridge, with h1's
// addresses on the bridge, and pings h2 over IPv4 and IPv6 through it.
// The agent makes the bridge with ovs-vsctl (on the VM lab, the guest's
// agent starts ovsdb-server and ovs-vswitchd for it); its undo, del-br,
// takes eth0 out of it. Where Open vSwitch is not running the probe does
// not report the kind openvswitch, and the recipe skips.
//
// On the VM lab it needs an image with Open vSwitch and guests of two
// vCPUs or more: Open vSwitch 3.1 (Debian 12) dispatches upcalls per CPU
// and, on a guest of one vCPU, starts no handler thread ("Overriding
// n-handler-threads to 0"), so every upcall is lost and nothing is
// switched. The recipe skips on such a host: make recipes-vm runs it
// with -lnst.vm.cpus=2.
func TestOvsBridge(t *testing.T) {
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1")), lnsttest.Kernel("openvswitch")),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
	h1, h2 := m.Host("h1"), m.Host("h2")
	if n := h1.NumCPU(t); n < 2 {
		t.Skipf("Open vSwitch 3.1 requires two CPUs or more (it handles no upcall on one); h1 has %d: on the VM lab give -lnst.vm.cpus=2", n)
	}
	br := h1.Create(t, devices.OvsBridge{Name: "ovsbr0"})
	require.Equal(t, "openvswitch", br.Info(t).Type)
	h1.RunArgv(t, []string{"ovs-vsctl", "--timeout=10", "add-port", "ovsbr0", h1.Iface("eth0").Name()}, lnsttest.Desc("eth0 into ovsbr0"))
	ports := h1.RunArgv(t, []string{"ovs-vsctl", "--timeout=10", "list-ports", "ovsbr0"}).Result().Stdout
	require.Equal(t, []string{h1.Iface("eth0").Name()}, strings.Fields(ports), "ports of ovsbr0")
	h1.Iface("eth0").Up(t)
	br.Up(t)
	br.AddIP(t, "198.18.9.1/24")
	br.AddIP(t, "2001:db8:9::1/64")
	h2.Iface("eth0").AddIP(t, "198.18.9.2/24")
	h2.Iface("eth0").AddIP(t, "2001:db8:9::2/64")

	for _, dst := range []string{"198.18.9.2", "2001:db8:9::2"} {
		res := modules.Ping{Dst: dst, Count: 5, Interval: 50 * time.Millisecond}.Run(t, h1)
		require.Equal(t, 5, res.Sent, "to %s", dst)
		require.Zero(t, res.Lost, "to %s", dst)
	}
	back := modules.Ping{Dst: "198.18.9.1", Count: 3, Interval: 50 * time.Millisecond}.Run(t, h2)
	require.Zero(t, back.Lost, "h2 to the bridge's address")
}
