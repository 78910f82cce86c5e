package pool

// benchTopo is two hosts, each with eth0 on one network: the topology of
// BenchmarkVMLabTwoHosts. The namespace lab's BenchmarkLabTwoHosts (RATIO
// lab2/netlink2) is in lnsttest, where it times Require as a recipe calls
// it, with the clean check's snapshot.
var benchTopo = Topology{Hosts: []TopoHost{
	{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
	{Name: "h2", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
}}
