package devices

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// registry maps every kind the package models to its Spec type. It is
// never written after it is built.
var registry = newRegistry()

func newRegistry() map[string]reflect.Type {
	r := map[string]reflect.Type{}
	for _, s := range []Spec{
		Veth{}, Bridge{}, Dummy{}, Vrf{}, Tuntap{}, Ifb{},
		Bond{}, Team{},
		Vlan{}, Macvlan{}, Macvtap{}, Ipvlan{},
		Vxlan{}, Geneve{}, Gre{}, Ip6gre{}, Gretap{}, Ip6gretap{}, IpIp{}, Sit{}, Ip6Tnl{}, Vti{}, Vti6{}, Xfrm{}, Macsec{},
		Wireguard{}, OvsBridge{},
	} {
		r[s.Kind()] = reflect.TypeOf(s)
	}
	return r
}

// Kinds returns every link kind the package models, sorted ("bond",
// "bridge", ...).
func Kinds() []string {
	kinds := make([]string, 0, len(registry))
	for k := range registry {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// Marshal encodes spec for the wire: its kind and the JSON of the struct.
// spec must be one of the package's types (or a pointer to one).
func Marshal(spec Spec) (kind string, data []byte, err error) {
	if spec == nil {
		return "", nil, errors.New("marshal device spec: nil spec")
	}
	v := reflect.ValueOf(spec)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", nil, fmt.Errorf("marshal device spec: nil %T", spec)
		}
		v = v.Elem()
	}
	kind = spec.Kind()
	if t, ok := registry[kind]; !ok || t != v.Type() {
		return "", nil, fmt.Errorf("marshal %s spec: %T is not a type of package devices", kind, spec)
	}
	data, err = json.Marshal(v.Interface())
	if err != nil {
		return "", nil, fmt.Errorf("marshal %s spec %s: %w", kind, spec.LinkName(), err)
	}
	return kind, data, nil
}

// checkFields reports every top-level field of the JSON object data that t
// lacks, matching names exactly (encoding/json alone ignores case and stops
// at the first).
func checkFields(t reflect.Type, data []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil // the decoder reports it
	}
	var unknown []string
	for name := range obj {
		if f, ok := t.FieldByName(name); !ok || !f.IsExported() {
			unknown = append(unknown, strconv.Quote(name))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	noun := "field"
	if len(unknown) > 1 {
		noun = "fields"
	}
	return fmt.Errorf("unknown %s %s for %s", noun, strings.Join(unknown, ", "), t.Name())
}

// Unmarshal decodes what Marshal encoded and validates it. An unknown kind,
// a field the kind's type lacks or an invalid spec is an error.
func Unmarshal(kind string, data []byte) (Spec, error) {
	t, ok := registry[kind]
	if !ok {
		return nil, fmt.Errorf("unmarshal device spec: unknown kind %q", kind)
	}
	if err := checkFields(t, data); err != nil {
		return nil, fmt.Errorf("unmarshal %s spec: %w", kind, err)
	}
	p := reflect.New(t)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p.Interface()); err != nil {
		return nil, fmt.Errorf("unmarshal %s spec: %w", kind, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unmarshal %s spec: data after the JSON object", kind)
	}
	spec := p.Elem().Interface().(Spec)
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("unmarshal %s spec: %w", kind, err)
	}
	return spec, nil
}
