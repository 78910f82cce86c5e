package tc

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/lnst-go/lnst/devices"
)

// check builds the validation errors of one spec: a *devices.ValidationError
// naming the kind and the field, "tbf Rate: is required".
type check struct{ kind string }

func (c check) fail(field, format string, args ...any) error {
	return &devices.ValidationError{Kind: c.kind, Field: field, Err: fmt.Errorf(format, args...)}
}

// handle checks an optional handle field; minor says whether it may (or,
// with must, has to) name a class.
func (c check) handle(field, s string, allowClass, must bool) (uint32, error) {
	if s == "" {
		if must {
			return 0, c.fail(field, "is required")
		}
		return 0, nil
	}
	h, err := ParseHandle(s)
	if err != nil {
		return 0, c.fail(field, "%w", err)
	}
	if h == HandleRoot || h == HandleIngress || h == HandleClsactEgress {
		return 0, c.fail(field, "%q is not a qdisc or class handle", s)
	}
	switch {
	case h>>16 == 0:
		return 0, c.fail(field, "%q has major 0; give it like \"1:\"", s)
	case h&0xffff != 0 && !allowClass:
		return 0, c.fail(field, "%q names a class; a qdisc handle has no minor (\"1:\")", s)
	case h&0xffff == 0 && must && allowClass:
		return 0, c.fail(field, "%q names a qdisc; a class id has a minor (\"1:10\")", s)
	}
	return h, nil
}

// parent checks a qdisc's Parent: "" (root), "root" or a class "1:10".
func (c check) parent(s string) error {
	if s == "" || s == "root" {
		return nil
	}
	if _, err := c.handle("Parent", s, true, false); err != nil {
		return err
	}
	return nil
}

func (c check) percent(field string, v float64) error {
	if math.IsNaN(v) || v < 0 || v > 100 {
		return c.fail(field, "%v is not a percentage 0..100", v)
	}
	return nil
}

func (c check) nonNegative(field string, v int, max int64) error {
	if v < 0 || int64(v) > max {
		return c.fail(field, "%d is out of range 0..%d", v, max)
	}
	return nil
}

// duration checks that d is 0..max and a whole number of unit.
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

func (c check) oneOf(field, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	var want []string
	for _, a := range allowed {
		if a != "" {
			want = append(want, fmt.Sprintf("%q", a))
		}
	}
	return c.fail(field, "%q is not one of %s", v, strings.Join(want, ", "))
}

// prefix parses an optional address or prefix ("198.18.0.0/15",
// "198.18.1.1") of family v6 or v4.
func (c check) prefix(field, s string, v6 bool) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || a.Zone() != "" {
			return netip.Prefix{}, c.fail(field, "%q is not an address or prefix like 198.18.1.0/24", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is6() != v6 {
		want := "IPv4"
		if v6 {
			want = "IPv6"
		}
		return netip.Prefix{}, c.fail(field, "%s is not an %s prefix (Protocol decides the family)", s, want)
	}
	return p.Masked(), nil
}

// maxBytesRate is the highest rate a 32-bit bytes-per-second field holds.
const maxBytesRate = Rate(math.MaxUint32) * 8
