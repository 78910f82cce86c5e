package devices

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// FuzzUnmarshal checks that Unmarshal does not panic on any JSON for any
// kind, and that a spec it accepts is of that kind, validates, has a name
// the kernel accepts, and survives Marshal and Unmarshal unchanged (the
// agent's nlspec.FuzzLink checks that such a spec maps to a netlink link).
func FuzzUnmarshal(f *testing.F) {
	kinds := Kinds()
	index := map[string]uint8{}
	for i, k := range kinds {
		index[k] = uint8(i)
	}
	for _, c := range validateCases {
		kind, data, err := Marshal(c.spec)
		if err != nil {
			f.Fatalf("marshal %#v: %v", c.spec, err)
		}
		f.Add(index[kind], data)
	}
	f.Add(index["veth"], []byte(`{"Name":"v0","PeerName":"v1","name":"x"}`))
	f.Add(index["veth"], []byte(`{"Name":"v0","PeerName":"v1"} {}`))
	f.Add(index["bridge"], []byte(`{"Name":"br0","AgeingTime":1e400}`))
	f.Add(index["wireguard"], []byte(`{"Name":"wg0","Peers":[{"publickey":"x","PublicKey":"y"}]}`))
	f.Add(index["vlan"], []byte(`{"Name":"a\rb","Parent":"eth0","ID":5}`))
	f.Add(uint8(200), []byte(`null`))
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		kind := "no-such-kind"
		if int(k) < len(kinds) {
			kind = kinds[k]
		}
		spec, err := Unmarshal(kind, data)
		if err != nil {
			if spec != nil || !strings.HasPrefix(err.Error(), "unmarshal ") {
				t.Fatalf("Unmarshal(%s, %q) = %#v, %v", kind, data, spec, err)
			}
			return
		}
		if int(k) >= len(kinds) || spec.Kind() != kind {
			t.Fatalf("Unmarshal(%s, %q) gave a %s spec", kind, data, spec.Kind())
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("Unmarshal(%s, %q) = %#v, which does not validate: %v", kind, data, spec, err)
		}
		if !fuzzKernelName(spec.LinkName()) {
			t.Fatalf("Unmarshal(%s, %q): name %q is not one the kernel accepts", kind, data, spec.LinkName())
		}
		kind2, data2, err := Marshal(spec)
		if err != nil || kind2 != kind {
			t.Fatalf("Marshal(%#v) = %s, %v", spec, kind2, err)
		}
		spec2, err := Unmarshal(kind2, data2)
		if err != nil {
			t.Fatalf("Unmarshal(%s, %s) of Marshal(%#v): %v", kind2, data2, spec, err)
		}
		if !reflect.DeepEqual(spec, spec2) {
			t.Fatalf("round trip changed the spec:\n%#v\n%#v\n%s", spec, spec2, data2)
		}
		if _, data3, _ := Marshal(spec2); !bytes.Equal(data2, data3) {
			t.Fatalf("Marshal is not stable:\n%s\n%s", data2, data3)
		}
	})
}

// fuzzKernelName is the kernel's dev_valid_name (net/core/dev.c): 1 to
// 15 bytes, not "." or "..", no '/', ':' or byte for which the kernel's
// isspace holds (lib/ctype.c: ' ', \t, \n, \v, \f, \r and 0xa0), and no
// NUL, which would end the name early.
func fuzzKernelName(name string) bool {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '/', ':', ' ', '\t', '\n', '\v', '\f', '\r', 0xa0, 0:
			return false
		}
	}
	return true
}
