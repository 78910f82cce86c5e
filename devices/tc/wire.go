package tc

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

// registry maps a kind to its spec type; never written after init.
type registry map[string]reflect.Type

func newRegistry[T any](specs ...T) registry {
	r := registry{}
	for _, s := range specs {
		k := reflect.ValueOf(s).MethodByName("Kind").Call(nil)[0].String()
		r[k] = reflect.TypeOf(s)
	}
	return r
}

var (
	qdiscKinds  = newRegistry[Qdisc](Tbf{}, Htb{}, Netem{}, Fq{}, FqCodel{}, Prio{}, Ingress{}, Clsact{})
	classKinds  = newRegistry[Class](HtbClass{})
	filterKinds = newRegistry[Filter](U32{}, Flower{}, MatchAll{})
	actionKinds = newRegistry[Action](Gact{}, Mirred{}, Police{}, SkbEdit{})
)

// Kinds returns every qdisc, classifier and action kind the package
// models, sorted.
func Kinds() (qdiscs, filters, actions []string) {
	keys := func(r registry) []string {
		var k []string
		for kind := range r {
			k = append(k, kind)
		}
		slices.Sort(k)
		return k
	}
	return keys(qdiscKinds), keys(filterKinds), keys(actionKinds)
}

type kinded interface{ Kind() string }

func marshal(r registry, spec kinded) (string, []byte, error) {
	if spec == nil {
		return "", nil, errors.New("marshal tc spec: nil spec")
	}
	v := reflect.ValueOf(spec)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", nil, fmt.Errorf("marshal tc spec: nil %T", spec)
		}
		v = v.Elem()
	}
	kind := spec.Kind()
	if t, ok := r[kind]; !ok || t != v.Type() {
		return "", nil, fmt.Errorf("marshal %s spec: %T is not a type of package tc", kind, spec)
	}
	data, err := json.Marshal(v.Interface())
	if err != nil {
		return "", nil, fmt.Errorf("marshal %s spec: %w", kind, err)
	}
	return kind, data, nil
}

func unmarshal(r registry, kind string, data []byte) (any, error) {
	t, ok := r[kind]
	if !ok {
		return nil, fmt.Errorf("unmarshal tc spec: unknown kind %q", kind)
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
	v := p.Elem().Interface()
	if err := v.(interface{ Validate() error }).Validate(); err != nil {
		return nil, fmt.Errorf("unmarshal %s spec: %w", kind, err)
	}
	return v, nil
}

// checkFields reports every top-level field of the JSON object data that t
// lacks, matching names exactly (encoding/json alone ignores case).
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
	return fmt.Errorf("unknown fields %s for %s", strings.Join(unknown, ", "), t.Name())
}

// MarshalQdisc encodes a qdisc spec for the wire: its kind and JSON.
func MarshalQdisc(q Qdisc) (kind string, data []byte, err error) { return marshal(qdiscKinds, q) }

// UnmarshalQdisc decodes what MarshalQdisc encoded and validates it.
func UnmarshalQdisc(kind string, data []byte) (Qdisc, error) {
	v, err := unmarshal(qdiscKinds, kind, data)
	if err != nil {
		return nil, err
	}
	return v.(Qdisc), nil
}

// MarshalClass encodes a class spec for the wire: its kind and JSON.
func MarshalClass(c Class) (kind string, data []byte, err error) { return marshal(classKinds, c) }

// UnmarshalClass decodes what MarshalClass encoded and validates it.
func UnmarshalClass(kind string, data []byte) (Class, error) {
	v, err := unmarshal(classKinds, kind, data)
	if err != nil {
		return nil, err
	}
	return v.(Class), nil
}

// MarshalFilter encodes a filter spec for the wire: its kind and JSON
// (with its actions' kinds).
func MarshalFilter(f Filter) (kind string, data []byte, err error) { return marshal(filterKinds, f) }

// UnmarshalFilter decodes what MarshalFilter encoded and validates it.
func UnmarshalFilter(kind string, data []byte) (Filter, error) {
	v, err := unmarshal(filterKinds, kind, data)
	if err != nil {
		return nil, err
	}
	return v.(Filter), nil
}
