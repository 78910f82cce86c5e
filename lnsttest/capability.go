package lnsttest

import (
	"maps"
	"slices"
	"strings"
)

// capabilities are the interface capabilities a pool file may declare
// and Capability requires: the pool interface parameter each stands for
// and the pattern its value must match.
var capabilities = map[string]struct{ param, re, declare string }{
	// An SR-IOV NIC: its pool interface declares how many VFs it may
	// have (sriov: 8).
	"sriov": {"sriov", "[1-9][0-9]*", "sriov: <number of VFs>"},
	// An eswitch that has a switchdev mode (switchdev: true).
	"switchdev": {"switchdev", "true", "switchdev: true"},
}

// Capability requires an interface that can do name: "sriov" (a pool
// interface declaring sriov: N, N > 0) or "switchdev" (switchdev: true).
// No lab interface has one: on a lab the recipe skips naming the
// capability; a pool file declares it on the interfaces that have it.
func Capability(name string) IfaceOpt {
	return ifaceOptFunc(func(i *ifaceReq) {
		i.caps = append(i.caps, name)
		if c, ok := capabilities[name]; ok {
			setParam(&i.params, &i.regexps, Opt{key: c.param, value: c.re, regexp: true})
		}
	})
}

// capabilityNames lists the names Capability knows, for messages.
func capabilityNames() string {
	return strings.Join(slices.Sorted(maps.Keys(capabilities)), ", ")
}
