package pool

import "testing"

// TestTopologyKeyNamespace: a topology whose host is a namespace host of
// a mixed VM lab is not the one where it is a guest: their instances are
// not shared.
func TestTopologyKeyNamespace(t *testing.T) {
	guest := Topology{Hosts: []TopoHost{
		{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
		{Name: "h2", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
	}}
	mixed := Topology{Hosts: []TopoHost{
		{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
		{Name: "h2", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}, Namespace: true},
	}}
	if guest.key() == mixed.key() {
		t.Errorf("a guest and a namespace host share the key %s", guest.key())
	}
}
