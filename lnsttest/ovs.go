package lnsttest

import (
	"testing"

	"github.com/lnst-go/lnst/devices"
)

// OvsAdd makes an Open vSwitch change on the host (a devices.OvsPort,
// OvsBond or OvsFlow on a bridge made with Create(devices.OvsBridge{})),
// running its ovs-vsctl or ovs-ofctl command line with no shell, and
// journals its undo command on the agent (UndoArgv): it is taken back at
// the test's cleanup, newest first with the test's other undos (so before
// its bridge is deleted), when the lease of a controller that died
// expires, and after a crashed agent starts again.
func (h *Host) OvsAdd(t testing.TB, c devices.OvsChange) {
	t.Helper()
	argv, err := c.AddArgv()
	if err != nil {
		t.Fatalf("%s: openvswitch: %v", h.name, err)
	}
	h.RunArgv(t, argv, Desc("openvswitch "+c.String()), UndoArgv(c.UndoArgv()...))
}

// OvsInterfaces reads Open vSwitch's interfaces on the host (every
// bridge's), with their options, OpenFlow port numbers and counters.
func (h *Host) OvsInterfaces(t testing.TB) []devices.OvsInterface {
	t.Helper()
	out := h.OutputArgv(t, devices.OvsInterfacesArgv(), Quiet(), Desc("openvswitch interfaces"))
	ifs, err := devices.ParseOvsInterfaces([]byte(out))
	if err != nil {
		t.Fatalf("%s: %v", h.name, err)
	}
	return ifs
}

// OvsPorts reads Open vSwitch's ports on the host (every bridge's), with
// their VLAN tags, trunks and bond modes.
func (h *Host) OvsPorts(t testing.TB) []devices.OvsPortRow {
	t.Helper()
	out := h.OutputArgv(t, devices.OvsPortsArgv(), Quiet(), Desc("openvswitch ports"))
	ports, err := devices.ParseOvsPorts([]byte(out))
	if err != nil {
		t.Fatalf("%s: %v", h.name, err)
	}
	return ports
}

// OvsFlows reads the OpenFlow flows of bridge with their packet and byte
// counters (ovs-ofctl dump-flows).
func (h *Host) OvsFlows(t testing.TB, bridge string) []devices.OvsFlowStats {
	t.Helper()
	out := h.OutputArgv(t, devices.OvsDumpFlowsArgv(bridge), Quiet(), Desc("openvswitch flows of "+bridge))
	flows, err := devices.ParseOvsFlows([]byte(out))
	if err != nil {
		t.Fatalf("%s: flows of %s: %v", h.name, bridge, err)
	}
	return flows
}
