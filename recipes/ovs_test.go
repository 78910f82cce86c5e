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
// agent starts ovsdb-server and ovs-vswitchd for it); eth0 goes in with
// ovs-vsctl add-port, and out again by its Undo, del-port. Where Open
// vSwitch is not running the probe does not report the kind openvswitch,
// and the recipe skips.
//
// On the VM lab it needs an image with Open vSwitch (-lnst.vm.ovs=true).
func TestOvsBridge(t *testing.T) {
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1")), lnsttest.Kernel("openvswitch")),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
	h1, h2 := m.Host("h1"), m.Host("h2")
	br := h1.Create(t, devices.OvsBridge{Name: "ovsbr0"})
	t.Cleanup(func() { dumpOvsOnFailure(t, h1) })
	require.Equal(t, "openvswitch", br.Info(t).Type)
	// The port goes with its Undo, newest first: before the bridge's own
	// undo, at cleanup, on lease expiry and after an agent crash.
	eth0 := h1.Iface("eth0").Name()
	h1.RunArgv(t, []string{"ovs-vsctl", "--timeout=10", "add-port", "ovsbr0", eth0}, lnsttest.Desc("eth0 into ovsbr0"),
		lnsttest.Undo("ovs-vsctl --timeout=10 --if-exists del-port ovsbr0 "+eth0))
	ports := h1.OutputArgv(t, []string{"ovs-vsctl", "--timeout=10", "list-ports", "ovsbr0"})
	require.Equal(t, []string{eth0}, strings.Fields(ports), "ports of ovsbr0")
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

// ovsDiagnostics is what dumpOvsOnFailure prints: the datapath's ports
// and counters (lost upcalls among them), the upcall handlers, the kernel
// flows, each bridge's MAC table and OpenFlow flows, the neighbours, and
// the tails of ovs-vswitchd's log and of the kernel's.
const ovsDiagnostics = `for c in "dpctl/show -s" "upcall/show" "dpctl/dump-flows" "coverage/show"; do
	echo "== ovs-appctl $c"; ovs-appctl -t ovs-vswitchd --timeout=5 $c 2>&1
done
for b in $(ovs-vsctl --timeout=5 list-br); do
	echo "== ovs-appctl fdb/show $b"; ovs-appctl -t ovs-vswitchd --timeout=5 fdb/show $b 2>&1
	echo "== ovs-ofctl dump-flows $b"; ovs-ofctl --timeout=5 dump-flows $b 2>&1
done
echo "== ip neigh"; ip neigh
echo "== ip -s link"; ip -s link
echo "== ovs-vswitchd.log"; tail -n 40 /var/log/openvswitch/ovs-vswitchd.log 2>&1
echo "== dmesg"; dmesg 2>&1 | tail -n 20
true`

// dumpOvsOnFailure logs Open vSwitch's state on h when t has failed, before
// the bridge's undo takes it away.
func dumpOvsOnFailure(t *testing.T, h *lnsttest.Host) {
	if !t.Failed() {
		return
	}
	t.Logf("Open vSwitch on %s:\n%s", h.Name(), h.Output(t, ovsDiagnostics, lnsttest.Quiet(), lnsttest.Desc("Open vSwitch state")))
}
