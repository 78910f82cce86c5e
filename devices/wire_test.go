package devices

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKinds(t *testing.T) {
	kinds := Kinds()
	assert.True(t, slices.IsSorted(kinds))
	assert.Equal(t, []string{
		"bond", "bridge", "dummy", "geneve", "gre", "gretap", "ifb", "ip6gre", "ip6gretap", "ip6tnl", "ipip", "ipvlan",
		"macsec", "macvlan", "macvtap", "openvswitch", "sit", "team", "tun", "veth", "vlan", "vrf", "vti", "vti6", "vxlan", "wireguard",
		"xfrm",
	}, kinds)
}

func TestMarshalRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range validateCases {
		if c.err != "" {
			continue
		}
		kind, data, err := Marshal(c.spec)
		require.NoError(t, err, "%#v", c.spec)
		assert.Equal(t, c.spec.Kind(), kind)
		got, err := Unmarshal(kind, data)
		require.NoError(t, err, "%s %s", kind, data)
		assert.Equal(t, c.spec, got)
		seen[kind] = true
	}
	for _, k := range Kinds() {
		assert.True(t, seen[k], "no round trip for kind %s", k)
	}
}

func TestMarshalPointer(t *testing.T) {
	kind, data, err := Marshal(&Vlan{Name: "eth0.5", Parent: "eth0", ID: 5})
	require.NoError(t, err)
	assert.Equal(t, "vlan", kind)
	assert.JSONEq(t, `{"Name":"eth0.5","Parent":"eth0","ID":5,"Protocol":""}`, string(data))
	got, err := Unmarshal(kind, data)
	require.NoError(t, err)
	assert.Equal(t, Vlan{Name: "eth0.5", Parent: "eth0", ID: 5}, got)
}

func TestMarshalErrors(t *testing.T) {
	_, _, err := Marshal(nil)
	assert.EqualError(t, err, "marshal device spec: nil spec")
	_, _, err = Marshal((*Bridge)(nil))
	assert.EqualError(t, err, "marshal device spec: nil *devices.Bridge")
	_, _, err = Marshal(foreign{})
	assert.EqualError(t, err, "marshal foo spec: devices.foreign is not a type of package devices")
}

func TestUnmarshalErrors(t *testing.T) {
	for _, c := range []struct{ kind, data, err string }{
		{"ppp", `{}`, `unmarshal device spec: unknown kind "ppp"`},
		{"bridge", `{"Name":"br0","Stp":true,"Color":1}`, `unmarshal bridge spec: unknown fields "Color", "Stp" for Bridge`},
		{"wireguard", `{"Name":"wg0","Peers":[{"PublicKey":"","Key":1}]}`, `unmarshal wireguard spec: json: unknown field "Key"`},
		{"bond", `{"Name":"bond0","Mode":7}`, "unmarshal bond spec: json: cannot unmarshal number into Go struct field Bond.Mode of type string"},
		{"dummy", `{"Name":"d0","name":"d1"}`, `unmarshal dummy spec: unknown field "name" for Dummy`},
		{"dummy", `{"Name":"d0"} {"Name":"d1"}`, "unmarshal dummy spec: data after the JSON object"},
		{"dummy", `{"Name":"d0"`, "unmarshal dummy spec: unexpected EOF"},
		{"vlan", `{"Name":"eth0.5","Parent":"eth0","ID":0}`, "unmarshal vlan spec: vlan eth0.5 ID: 0 is out of range 1..4094"},
	} {
		_, err := Unmarshal(c.kind, []byte(c.data))
		assert.EqualError(t, err, c.err, "%s %s", c.kind, c.data)
	}
}

func TestUnmarshalFromJSON(t *testing.T) {
	// What another client could send: fields left out take their zero value.
	spec, err := Unmarshal("vxlan", json.RawMessage(`{"Name":"vx0","ID":10,"Remote":"198.18.0.2"}`))
	require.NoError(t, err)
	assert.Equal(t, Vxlan{Name: "vx0", ID: 10, Remote: "198.18.0.2"}, spec)
}
