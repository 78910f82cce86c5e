package pool

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const nicPoolYAML = `hosts:
  - name: m1
    agent: unix:///run/a.sock
    interfaces:
      - {name: enp1s0, network: lan, driver: ixgbe}
      - {name: enp2s0f0, network: lan, driver: mlx5_core, sriov: 8, switchdev: true}
  - name: m2
    agent: unix:///run/b.sock
    interfaces:
      - {name: enp3s0f0, network: lan, driver: ice, sriov: 64}
`

// TestPoolCapabilities: sriov and switchdev are read from the pool file
// and seen by requirements as the params "sriov" and "switchdev", so a
// requirement of either maps only onto an interface that declares it.
func TestPoolCapabilities(t *testing.T) {
	p, err := Parse("lab.yaml", []byte(nicPoolYAML))
	require.NoError(t, err)
	require.Len(t, p.Hosts, 2)
	assert.Equal(t, 0, p.Hosts[0].Ifaces[0].SRIOV)
	assert.Equal(t, 8, p.Hosts[0].Ifaces[1].SRIOV)
	assert.True(t, p.Hosts[0].Ifaces[1].Switchdev)
	assert.Equal(t, 64, p.Hosts[1].Ifaces[0].SRIOV)
	assert.False(t, p.Hosts[1].Ifaces[0].Switchdev)

	sriov := map[string]Pattern{"sriov": {Value: "[1-9][0-9]*", Regexp: true}}
	m, err := Map(p, []HostReq{{Name: "h1", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1", Params: sriov}}}}, nil)
	require.NoError(t, err)
	h := m.Hosts["h1"]
	assert.Contains(t, []string{"enp2s0f0", "enp3s0f0"}, h.Ifaces["eth0"], "an SR-IOV interface")

	both := map[string]Pattern{"sriov": sriov["sriov"], "switchdev": {Value: "true"}}
	m, err = Map(p, []HostReq{{Name: "h1", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1", Params: both}}}}, nil)
	require.NoError(t, err)
	assert.Equal(t, "m1", m.Hosts["h1"].Pool)
	assert.Equal(t, "enp2s0f0", m.Hosts["h1"].Ifaces["eth0"])

	_, err = Map(p, []HostReq{
		{Name: "h1", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1", Params: both}}},
		{Name: "h2", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1", Params: both}}},
	}, nil)
	assert.ErrorContains(t, err, "switchdev", "only m1 has a switchdev interface")

	// An older pool file's params: {sriov: "yes"} still matches a
	// requirement of that param, but is no VF count for Capability.
	old, err := Parse("lab.yaml", []byte(hostsYAML+"    interfaces:\n      - {name: eth0, network: lan, params: {sriov: \"yes\"}}\n"))
	require.NoError(t, err)
	_, err = Map(old, []HostReq{{Name: "h1", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1", Params: map[string]Pattern{"sriov": {Value: "yes"}}}}}}, nil)
	assert.NoError(t, err)
	_, err = Map(old, []HostReq{{Name: "h1", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1", Params: sriov}}}}, nil)
	assert.Error(t, err)
}

func TestPoolCapabilityErrors(t *testing.T) {
	iface := func(fields string) string {
		return hostsYAML + "    interfaces:\n      - name: eth0\n" + fields
	}
	for _, tc := range []struct{ name, data, want string }{
		{"sriov not a number", iface("        sriov: eight\n"), `lab.yaml:6: host "m1": interface "eth0": sriov: want the number of VFs the NIC may have, not "eight"`},
		{"sriov negative", iface("        sriov: -1\n"), `lab.yaml:6: host "m1": interface "eth0": sriov -1: want 0 to 65535 VFs`},
		{"sriov too many", iface("        sriov: 70000\n"), `lab.yaml:6: host "m1": interface "eth0": sriov 70000: want 0 to 65535 VFs`},
		{"sriov quoted", iface("        sriov: \"8\"\n"), `lab.yaml:6: host "m1": interface "eth0": sriov: want the number of VFs`},
		{"switchdev not a bool", iface("        switchdev: yes please\n"), `lab.yaml:6: host "m1": interface "eth0": switchdev: want true or false, not "yes please"`},
		{"sriov twice", iface("        sriov: 8\n        params: {sriov: \"8\"}\n"), `lab.yaml:7: host "m1": interface "eth0": params: "sriov" is also the sriov field: give one`},
	} {
		_, err := Parse("lab.yaml", []byte(tc.data))
		if assert.Error(t, err, tc.name) {
			assert.True(t, strings.Contains(err.Error(), tc.want), "%s: %v\nwant %s", tc.name, err, tc.want)
		}
	}
}
