package devices

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// check builds the ValidationErrors of one spec.
type check struct{ kind, name string }

// newCheck checks the device name and returns a check for the other fields.
func newCheck(kind, name string) (check, error) {
	if err := CheckName(name); err != nil {
		return check{}, &ValidationError{Kind: kind, Field: "Name", Err: err}
	}
	return check{kind: kind, name: name}, nil
}

func (c check) fail(field, format string, args ...any) error {
	return &ValidationError{Kind: c.kind, Name: c.name, Field: field, Err: fmt.Errorf(format, args...)}
}

// device checks a field naming another device; "" passes unless required.
func (c check) device(field, v string, required bool) error {
	if v == "" {
		if required {
			return c.fail(field, "is required")
		}
		return nil
	}
	if err := CheckName(v); err != nil {
		return c.fail(field, "%w", err)
	}
	if v == c.name {
		return c.fail(field, "is the device itself")
	}
	return nil
}

// oneOf checks that v is one of allowed; "" is allowed only if listed.
func (c check) oneOf(field, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	var want []string
	for _, a := range allowed {
		if a != "" {
			want = append(want, fmt.Sprintf("%q", a))
		}
	}
	return c.fail(field, "%q is not one of %s", v, strings.Join(want, ", "))
}

// intRange checks lo <= v <= hi.
func (c check) intRange(field string, v, lo, hi int) error {
	if v < lo || v > hi {
		return c.fail(field, "%d is out of range %d..%d", v, lo, hi)
	}
	return nil
}

// duration checks that d is not negative, not above max and a whole number
// of unit (the kernel's resolution for the field).
func (c check) duration(field string, d, unit, max time.Duration) error {
	switch {
	case d < 0:
		return c.fail(field, "%v is negative", d)
	case d > max:
		return c.fail(field, "%v is above the maximum %v", d, max)
	case d%unit != 0:
		return c.fail(field, "%v is not a whole number of %v", d, unit)
	}
	return nil
}

// family is the IP version a field or kind accepts.
type family int

const (
	anyFamily family = iota
	ipv4
	ipv6
)

func (f family) String() string {
	switch f {
	case ipv4:
		return "IPv4"
	case ipv6:
		return "IPv6"
	}
	return "IPv4 or IPv6"
}

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return ipv4
	}
	return ipv6
}

// addr parses an optional address of family f; "" gives the zero Addr.
// hint, if not "", is added when the family does not fit.
func (c check) addr(field, s string, f family, hint string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, c.fail(field, "%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, c.fail(field, "%q has a zone; give the device in Parent instead", s)
	}
	if f != anyFamily && familyOf(a) != f {
		msg := fmt.Sprintf("%s is an %s address; %s needs %s", a, familyOf(a), c.kind, f)
		if hint != "" {
			msg += " (" + hint + ")"
		}
		return netip.Addr{}, c.fail(field, "%s", msg)
	}
	return a, nil
}

// endpoints parses Local and Remote of family f (anyFamily: either, but the
// same for both).
func (c check) endpoints(local, remote string, f family, hint string) (l, r netip.Addr, err error) {
	if l, err = c.addr("Local", local, f, hint); err != nil {
		return l, r, err
	}
	if r, err = c.addr("Remote", remote, f, hint); err != nil {
		return l, r, err
	}
	if l.IsValid() && r.IsValid() && familyOf(l) != familyOf(r) {
		return l, r, c.fail("Remote", "%s is an %s address but Local %s is %s", r, familyOf(r), l, familyOf(l))
	}
	return l, r, nil
}
