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

func TestInstanceIfname(t *testing.T) {
	topo := Topology{Hosts: []TopoHost{
		{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}, {Name: "eth1", Net: "n2"}}},
		{Name: "h2", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
	}}
	for _, c := range []struct {
		naming                 IfNaming
		h1eth0, h1eth1, h2eth0 string
	}{
		{"", "eth0", "eth1", "eth0"},
		{IfNamesSame, "eth0", "eth1", "eth0"},
		{IfNamesMapped, "lnst1p0", "lnst1p1", "lnst2p0"},
	} {
		in := &Instance{}
		in.nameIfaces(topo, c.naming)
		got := [3]string{in.Ifname("h1", "eth0"), in.Ifname("h1", "eth1"), in.Ifname("h2", "eth0")}
		if want := [3]string{c.h1eth0, c.h1eth1, c.h2eth0}; got != want {
			t.Errorf("naming %q: h1 eth0, h1 eth1, h2 eth0 are %v, want %v", c.naming, got, want)
		}
		if n := in.Ifname("h1", "lo"); n != "lo" {
			t.Errorf("naming %q: a device the topology does not name (lo) is called %q", c.naming, n)
		}
	}
	if err := CheckIfNaming("renamed"); err == nil || err.Error() != `unknown interface naming "renamed" (want same or mapped)` {
		t.Errorf("CheckIfNaming(renamed) = %v", err)
	}
}
