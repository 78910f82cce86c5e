package lnsttest

import "github.com/lnst-go/lnst/pool"

// labTopology is the topology Require asks its lab for. Under
// -lnst.lab=auto, when the recipe went to the VM lab because some host
// needs kernel kinds this kernel lacks, only those hosts become guests:
// every other host is a namespace host of the VM lab's agent on the same
// networks (pool.TopoHost.Namespace), which costs no boot and no guest
// memory. ns names those hosts.
func (s *session) labTopology(reqs []Requirement, vm bool) (t pool.Topology, ns map[string]bool, err error) {
	t = topology(reqs)
	if !vm || cfg.lab != "auto" {
		return t, nil, nil
	}
	p, err := s.probe()
	if err != nil {
		return t, nil, err
	}
	ns = map[string]bool{}
	for i, r := range reqs {
		if kernelReason(p, r.host.name, "the local lab", s.lab.Hello().Kernel, r.host.kernel) == "" {
			t.Hosts[i].Namespace = true
			ns[r.host.name] = true
		}
	}
	return t, ns, nil
}
