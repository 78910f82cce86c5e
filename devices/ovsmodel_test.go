package devices

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOvsChangeArgv checks the command lines of ports, bonds and flows and
// of their undos, argument by argument.
func TestOvsChangeArgv(t *testing.T) {
	vs := []string{"ovs-vsctl", "--timeout=10"}
	with := func(args ...string) []string { return append(append([]string{}, vs...), args...) }
	for _, c := range []struct {
		c         OvsChange
		add, undo []string
		str       string
	}{
		{OvsPort{Bridge: "br0", Name: "eth0"},
			with("add-port", "br0", "eth0"), with("--if-exists", "del-port", "br0", "eth0"), "port eth0 (system) on br0"},
		{OvsPort{Bridge: "br0", Name: "eth1", Tag: 10},
			with("add-port", "br0", "eth1", "tag=10"), with("--if-exists", "del-port", "br0", "eth1"), "port eth1 (system) on br0"},
		{OvsPort{Bridge: "br0", Name: "eth2", Trunks: []int{10, 20}},
			with("add-port", "br0", "eth2", "trunks=10,20"), with("--if-exists", "del-port", "br0", "eth2"), "port eth2 (system) on br0"},
		{OvsPort{Bridge: "br0", Name: "int0", Type: "internal", OfPort: 5},
			with("add-port", "br0", "int0", "--", "set", "Interface", "int0", "type=internal", "ofport_request=5"),
			with("--if-exists", "del-port", "br0", "int0"), "port int0 (internal) on br0"},
		{OvsPort{Bridge: "br0", Name: "int1", Type: "internal", MTU: 1450},
			with("add-port", "br0", "int1", "--", "set", "Interface", "int1", "type=internal", "mtu_request=1450"),
			with("--if-exists", "del-port", "br0", "int1"), "port int1 (internal) on br0"},
		{OvsPort{Bridge: "br0", Name: "patch-a", Type: "patch", Peer: "patch-b"},
			with("add-port", "br0", "patch-a", "--", "set", "Interface", "patch-a", "type=patch", "options:peer=patch-b"),
			with("--if-exists", "del-port", "br0", "patch-a"), "port patch-a (patch) on br0"},
		{OvsPort{Bridge: "br0", Name: "vx0", Type: "vxlan", Remote: "198.18.1.2", Local: "198.18.1.1", Key: "42", DstPort: 4790},
			with("add-port", "br0", "vx0", "--", "set", "Interface", "vx0", "type=vxlan",
				"options:remote_ip=198.18.1.2", "options:local_ip=198.18.1.1", "options:key=42", "options:dst_port=4790"),
			with("--if-exists", "del-port", "br0", "vx0"), "port vx0 (vxlan) on br0"},
		{OvsPort{Bridge: "br0", Name: "gnv0", Type: "geneve", Remote: "2001:db8::2", Key: "flow"},
			with("add-port", "br0", "gnv0", "--", "set", "Interface", "gnv0", "type=geneve", "options:remote_ip=2001:db8::2", "options:key=flow"),
			with("--if-exists", "del-port", "br0", "gnv0"), "port gnv0 (geneve) on br0"},
		{OvsBond{Bridge: "br0", Name: "bond0", Ifaces: []string{"eth0", "eth1"}, Mode: "balance-slb"},
			with("add-bond", "br0", "bond0", "eth0", "eth1", "bond_mode=balance-slb"),
			with("--if-exists", "del-port", "br0", "bond0"), "bond bond0 (balance-slb) of eth0, eth1 on br0"},
		{OvsBond{Bridge: "br0", Name: "bond1", Ifaces: []string{"eth0", "eth1"}, Mode: "balance-tcp", LACP: "active", Tag: 7},
			with("add-bond", "br0", "bond1", "eth0", "eth1", "bond_mode=balance-tcp", "lacp=active", "tag=7"),
			with("--if-exists", "del-port", "br0", "bond1"), "bond bond1 (balance-tcp, lacp active) of eth0, eth1 on br0"},
		{OvsBond{Bridge: "br0", Name: "bond2", Ifaces: []string{"eth0", "eth1"}, Mode: "balance-tcp", LACP: "active", LACPFallback: true},
			with("add-bond", "br0", "bond2", "eth0", "eth1", "bond_mode=balance-tcp", "lacp=active", "--", "set", "Port", "bond2", "other_config:lacp-fallback-ab=true"),
			with("--if-exists", "del-port", "br0", "bond2"), "bond bond2 (balance-tcp, lacp active) of eth0, eth1 on br0"},
		{OvsFlow{Bridge: "br0", Priority: 100, Match: "ip,nw_dst=198.18.1.2", Actions: "output:2"},
			[]string{"ovs-ofctl", "add-flow", "br0", "table=0,priority=100,ip,nw_dst=198.18.1.2,actions=output:2"},
			[]string{"ovs-ofctl", "--strict", "del-flows", "br0", "table=0,priority=100,ip,nw_dst=198.18.1.2"},
			"flow table=0,priority=100,ip,nw_dst=198.18.1.2 actions=output:2 on br0"},
		{OvsFlow{Bridge: "br0", Table: 1, Cookie: 42, Actions: "normal"},
			[]string{"ovs-ofctl", "add-flow", "br0", "cookie=0x2a,table=1,priority=32768,actions=normal"},
			[]string{"ovs-ofctl", "--strict", "del-flows", "br0", "table=1,priority=32768"},
			"flow table=1,priority=32768 actions=normal on br0"},
	} {
		add, err := c.c.AddArgv()
		require.NoError(t, err, "%s", c.str)
		assert.Equal(t, c.add, add, "%s", c.str)
		assert.Equal(t, c.undo, c.c.UndoArgv(), "%s", c.str)
		assert.Equal(t, c.str, c.c.String())
	}
}

// TestOvsChangeInvalid checks that a bad spec is refused, naming the field,
// and makes no command line.
func TestOvsChangeInvalid(t *testing.T) {
	for _, c := range []struct {
		c    OvsChange
		want string
	}{
		{OvsPort{Name: "eth0"}, `openvswitch port "eth0": Bridge is required`},
		{OvsPort{Bridge: "br0", Name: "-x"}, `Name "-x" begins with "-"`},
		{OvsPort{Bridge: "br0", Name: "a b"}, `openvswitch port "a b": Name:`},
		{OvsPort{Bridge: "br0", Name: "p0", Type: "stt"}, `Type "stt" is none of`},
		{OvsPort{Bridge: "br0", Name: "p0", Type: "patch"}, "a patch port needs Peer"},
		{OvsPort{Bridge: "br0", Name: "p0", Peer: "p1"}, `Peer "p1" is for a patch port`},
		{OvsPort{Bridge: "br0", Name: "p0", Type: "internal", Remote: "198.18.1.2"}, "Remote, Local, Key and DstPort are for tunnel ports"},
		{OvsPort{Bridge: "br0", Name: "vx0", Type: "vxlan"}, "a vxlan tunnel needs Remote"},
		{OvsPort{Bridge: "br0", Name: "vx0", Type: "vxlan", Remote: "host"}, `Remote "host" is neither an IP address nor "flow"`},
		{OvsPort{Bridge: "br0", Name: "vx0", Type: "vxlan", Remote: "198.18.1.2", Key: "0x2a"}, `Key "0x2a" is neither a number nor "flow"`},
		{OvsPort{Bridge: "br0", Name: "vx0", Type: "gre", Remote: "198.18.1.2", Key: "1,options:x=1"}, `Key "1,options:x=1"`},
		{OvsPort{Bridge: "br0", Name: "int0", Type: "internal", MTU: 67}, "MTU 67 is neither 0"},
		{OvsPort{Bridge: "br0", Name: "int0", Type: "internal", MTU: -1}, "MTU -1 is neither 0"},
		{OvsPort{Bridge: "br0", Name: "eth0", Tag: 4096}, "Tag 4096 is not a VLAN id"},
		{OvsPort{Bridge: "br0", Name: "eth0", Trunks: []int{1, -2}}, "Trunks holds -2"},
		{OvsBond{Bridge: "br0", Name: "bond0", Ifaces: []string{"eth0"}}, "a bond needs two Ifaces or more, not 1"},
		{OvsBond{Bridge: "br0", Name: "bond0", Ifaces: []string{"eth0", "eth0"}}, `Ifaces names "eth0" twice`},
		{OvsBond{Bridge: "br0", Name: "bond0", Ifaces: []string{"eth0", "eth1"}, Mode: "802.3ad"}, `Mode "802.3ad" is none of`},
		{OvsBond{Bridge: "br0", Name: "bond0", Ifaces: []string{"eth0", "eth1"}, Mode: "balance-tcp"}, "balance-tcp needs LACP active or passive"},
		{OvsBond{Bridge: "br0", Name: "bond0", Ifaces: []string{"eth0", "eth1"}, LACP: "fast"}, `LACP "fast" is none of`},
		{OvsBond{Bridge: "br0", Name: "bond0", Ifaces: []string{"eth0", "eth1"}, LACPFallback: true}, "LACPFallback needs LACP active or passive"},
		{OvsFlow{Bridge: "br0"}, "Actions is required"},
		{OvsFlow{Bridge: "br0", Table: 255, Actions: "drop"}, "Table 255 is out of range"},
		{OvsFlow{Bridge: "br0", Priority: 70000, Actions: "drop"}, "Priority 70000 is out of range"},
		{OvsFlow{Bridge: "br0", Match: "ip nw_dst=1", Actions: "drop"}, "white space"},
		{OvsFlow{Bridge: "br0", Match: "ip,actions=normal", Actions: "drop"}, `holds "actions="`},
		{OvsFlow{Bridge: "br0", Match: "priority=5,ip", Actions: "drop"}, "use the fields"},
	} {
		argv, err := c.c.AddArgv()
		require.Error(t, err, "%#v", c.c)
		assert.Contains(t, err.Error(), c.want)
		assert.Nil(t, argv)
	}
}

// TestParseOvsInterfaces parses "ovs-vsctl --format=json list Interface"
// (testdata): types, options maps, ofport (an empty set for an interface
// that failed), statistics.
func TestParseOvsInterfaces(t *testing.T) {
	out, err := os.ReadFile("testdata/ovs/list-interface.json")
	require.NoError(t, err)
	ifs, err := ParseOvsInterfaces(out)
	require.NoError(t, err)
	require.Len(t, ifs, 5)
	byName := map[string]OvsInterface{}
	for _, i := range ifs {
		byName[i.Name] = i
	}
	assert.Equal(t, []string{"br0", "broken0", "eth0", "patch-a", "vx0"}, []string{ifs[0].Name, ifs[1].Name, ifs[2].Name, ifs[3].Name, ifs[4].Name})
	vx := byName["vx0"]
	assert.Equal(t, "vxlan", vx.Type)
	assert.Equal(t, map[string]string{"key": "42", "local_ip": "198.18.1.1", "remote_ip": "198.18.1.2"}, vx.Options)
	assert.Equal(t, 2, vx.OfPort)
	assert.Equal(t, int64(21), vx.Statistics["tx_packets"])
	assert.Equal(t, "", byName["eth0"].Type)
	assert.Equal(t, int64(123456), byName["eth0"].Statistics["rx_bytes"])
	assert.Equal(t, 65534, byName["br0"].OfPort)
	assert.Equal(t, "patch-b", byName["patch-a"].Options["peer"])
	assert.Equal(t, -1, byName["broken0"].OfPort)

	_, err = ParseOvsInterfaces([]byte(`{"data":[["a"]],"headings":["name","type"]}`))
	assert.ErrorContains(t, err, "row 1 has 1 cells for 2 headings")
	_, err = ParseOvsInterfaces([]byte(`{"data":[["a","x",["map",[]],["weird",1],["map",[]]]],"headings":["name","type","options","ofport","statistics"]}`))
	assert.ErrorContains(t, err, `unknown tag "weird"`)
}

// TestParseOvsPorts parses "ovs-vsctl --format=json list Port" (testdata):
// a tag, trunks as a set and as one atom, a bond's mode.
func TestParseOvsPorts(t *testing.T) {
	out, err := os.ReadFile("testdata/ovs/list-port.json")
	require.NoError(t, err)
	ports, err := ParseOvsPorts(out)
	require.NoError(t, err)
	assert.Equal(t, []OvsPortRow{
		{Name: "bond0", Trunks: []int{10, 20, 30}, BondMode: "balance-slb"},
		{Name: "br0"},
		{Name: "eth1", Tag: 10},
		{Name: "trunk1", Trunks: []int{100}},
	}, ports)
}

// TestParseOvsFlows parses "ovs-ofctl dump-flows" (testdata): counters,
// cookie, table, priority (the default one omitted), match and actions.
func TestParseOvsFlows(t *testing.T) {
	out, err := os.ReadFile("testdata/ovs/dump-flows.txt")
	require.NoError(t, err)
	flows, err := ParseOvsFlows(out)
	require.NoError(t, err)
	assert.Equal(t, []OvsFlowStats{
		{Table: 0, Priority: 100, Packets: 3, Bytes: 294, Match: "ip,nw_dst=198.18.1.2", Actions: "output:2"},
		{Cookie: 42, Table: 1, Priority: 10, Match: "in_port=1,dl_vlan=10", Actions: "strip_vlan,output:3"},
		{Priority: 0, Packets: 42, Bytes: 4200, Actions: "NORMAL"},
		{Priority: 32768, Packets: 7, Bytes: 700, Match: "arp", Actions: "drop"},
	}, flows)
	_, err = ParseOvsFlows([]byte(" cookie=0x0, table=0, priority=1,ip\n"))
	assert.ErrorContains(t, err, "no actions")
	_, err = ParseOvsFlows([]byte(" cookie=0x0, table=0, n_packets=x, priority=1 actions=drop\n"))
	assert.ErrorContains(t, err, "n_packets=x")
}
