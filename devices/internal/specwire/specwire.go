// Package specwire puts the spec types of packages devices and devices/tc
// on the wire: a spec travels as its kind and the JSON of its struct, and
// comes back only as a type its package models, with no field that type
// lacks, and valid.
package specwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Spec is what every spec type has: its kind and a check of its fields.
type Spec interface {
	Kind() string
	Validate() error
}

// Registry maps each kind a package models to its spec type. It is never
// written after New builds it.
type Registry struct {
	// Noun is what the errors call a spec of the package ("device" in
	// "marshal device spec: nil spec").
	Noun string
	// Pkg is the package's name, as the errors give it.
	Pkg string
	// Types maps a kind to its spec type.
	Types map[string]reflect.Type
}

// New builds the registry of specs, one value of each type, which the
// errors name by noun and package pkg.
func New[T Spec](noun, pkg string, specs ...T) Registry {
	r := Registry{Noun: noun, Pkg: pkg, Types: map[string]reflect.Type{}}
	for _, s := range specs {
		r.Types[s.Kind()] = reflect.TypeOf(s)
	}
	return r
}

// Kinds returns every kind of r, sorted.
func (r Registry) Kinds() []string {
	kinds := make([]string, 0, len(r.Types))
	for k := range r.Types {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// Marshal encodes spec, one of r's types or a pointer to one, as its kind
// and the JSON of the struct.
func (r Registry) Marshal(spec Spec) (kind string, data []byte, err error) {
	if spec == nil {
		return "", nil, fmt.Errorf("marshal %s spec: nil spec", r.Noun)
	}
	v := reflect.ValueOf(spec)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", nil, fmt.Errorf("marshal %s spec: nil %T", r.Noun, spec)
		}
		v = v.Elem()
	}
	kind = spec.Kind()
	if t, ok := r.Types[kind]; !ok || t != v.Type() {
		return "", nil, fmt.Errorf("marshal %s spec: %T is not a type of package %s", kind, spec, r.Pkg)
	}
	data, err = json.Marshal(v.Interface())
	if err != nil {
		what := kind + " spec"
		if n, ok := spec.(interface{ LinkName() string }); ok {
			what += " " + n.LinkName()
		}
		return "", nil, fmt.Errorf("marshal %s: %w", what, err)
	}
	return kind, data, nil
}

// Unmarshal decodes what Marshal encoded and validates it. An unknown
// kind, a field the kind's type lacks, data after the JSON object or an
// invalid spec is an error. T is the interface all of r's types
// implement.
func Unmarshal[T Spec](r Registry, kind string, data []byte) (T, error) {
	var zero T
	t, ok := r.Types[kind]
	if !ok {
		return zero, fmt.Errorf("unmarshal %s spec: unknown kind %q", r.Noun, kind)
	}
	if err := checkFields(t, data); err != nil {
		return zero, fmt.Errorf("unmarshal %s spec: %w", kind, err)
	}
	p := reflect.New(t)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p.Interface()); err != nil {
		return zero, fmt.Errorf("unmarshal %s spec: %w", kind, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return zero, fmt.Errorf("unmarshal %s spec: data after the JSON object", kind)
	}
	spec, ok := p.Elem().Interface().(T)
	if !ok {
		return zero, fmt.Errorf("unmarshal %s spec: %s is not a %s", kind, t, reflect.TypeFor[T]())
	}
	if err := spec.Validate(); err != nil {
		return zero, fmt.Errorf("unmarshal %s spec: %w", kind, err)
	}
	return spec, nil
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
