package devices

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		spec Spec
		err  string
	}{
		{Veth{Name: "v0", PeerName: "v1"}, ""},
		{Veth{Name: "", PeerName: "v1"}, "veth Name: device name is empty"},
		{Veth{Name: "v0", PeerName: "v0"}, "veth v0: PeerName is the same as Name"},
		{Veth{Name: "v0", PeerName: "a/b"}, `veth v0 PeerName: device name "a/b" has a character`},
		{Bridge{Name: "br0"}, ""},
		{Bridge{Name: "averyverylongname"}, `bridge Name: device name "averyverylongname" is longer than 15 bytes`},
		{Bridge{Name: ".."}, `bridge Name: device name ".." is not allowed`},
	}
	for _, c := range cases {
		err := c.spec.Validate()
		if c.err == "" {
			assert.NoError(t, err, "%#v", c.spec)
			continue
		}
		if assert.Error(t, err, "%#v", c.spec) {
			assert.Contains(t, err.Error(), c.err)
		}
	}
}
