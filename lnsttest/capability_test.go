package lnsttest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCapability: an unknown capability is a recipe bug; a known one
// is unmet by every lab interface, and the reason names it and how a
// pool file declares it.
func TestCapability(t *testing.T) {
	bad := []Requirement{HostReq("h1", IfaceReq("eth0", Net("n1"), Capability("sriv")))}
	assert.ErrorContains(t, validate(bad), `host "h1": interface "eth0": Capability("sriv"): unknown capability (known: sriov, switchdev)`)

	reqs := []Requirement{HostReq("h1", IfaceReq("eth0", Net("n1"), Capability("sriov"), Capability("switchdev")))}
	assert.NoError(t, validate(reqs))
	assert.Equal(t, `host "h1" interface "eth0" needs capability sriov; local lab interfaces have none (a pool interface declares it: sriov: <number of VFs>)`, labUnmet(reqs))
	i := reqs[0].host.ifaces[0]
	assert.Equal(t, map[string]string{"sriov": "[1-9][0-9]*", "switchdev": "true"}, i.params)
	assert.Equal(t, map[string]bool{"sriov": true, "switchdev": true}, i.regexps)
}
