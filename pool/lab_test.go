package pool

import "testing"

func TestTopologyKey(t *testing.T) {
	a := Topology{Hosts: []TopoHost{
		{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}, {Name: "eth1", Net: "n2"}}},
		{Name: "h2", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
	}}
	reordered := Topology{Hosts: []TopoHost{
		{Name: "h2", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
		{Name: "h1", Ifaces: []TopoIface{{Name: "eth1", Net: "n2"}, {Name: "eth0", Net: "n1"}}},
	}}
	if a.key() != reordered.key() {
		t.Errorf("same topology listed in another order has another key:\n%s\n%s", a.key(), reordered.key())
	}
	otherNet := Topology{Hosts: []TopoHost{
		{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}, {Name: "eth1", Net: "n3"}}},
		{Name: "h2", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
	}}
	if a.key() == otherNet.key() {
		t.Errorf("topologies on different networks share the key %s", a.key())
	}
	otherIface := Topology{Hosts: []TopoHost{
		{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
		{Name: "h2", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}, {Name: "eth1", Net: "n2"}}},
	}}
	if a.key() == otherIface.key() {
		t.Errorf("topologies with interfaces on different hosts share the key %s", a.key())
	}
}
