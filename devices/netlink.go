package devices

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"
)

// ErrNotNetlink is the error, wrapped with the kind and device, that
// NetlinkLink returns for kinds netlink cannot create: Team (teamd makes it)
// and OvsBridge (ovs-vsctl makes it).
var ErrNotNetlink = errors.New("the kind has no netlink create")

// netlinker is implemented by the specs NetlinkLink can map.
type netlinker interface {
	netlinkLink(r resolver) (netlink.Link, error)
}

// NetlinkLink validates spec and builds the netlink.Link to pass to
// Handle.LinkAdd. index resolves the names of other devices (Parent, Bond
// Primary) to their ifindex on the host where the link is made.
//
// Durations become the units netlink wants, kernel mode names become
// netlink's constants, and defaults are made explicit (Vxlan port 4789 and
// learning on, Geneve port 6081). A Tuntap maps to a *netlink.Tuntap, which
// LinkAdd makes in the calling thread's namespace and whose Fds the caller
// closes (see Tuntap). Bridge
// options netlink cannot carry are in SysfsSettings. Kinds without a
// netlink create give an error wrapping ErrNotNetlink.
func NetlinkLink(spec Spec, index func(name string) (int, error)) (netlink.Link, error) {
	if spec == nil {
		return nil, errors.New("netlink link: nil spec")
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	n, ok := spec.(netlinker)
	if !ok {
		return nil, fmt.Errorf("%s %s: %T has no netlink mapping", spec.Kind(), spec.LinkName(), spec)
	}
	return n.netlinkLink(resolver{kind: spec.Kind(), name: spec.LinkName(), index: index})
}

// resolver resolves device names for one spec, naming it in errors.
type resolver struct {
	kind, name string
	index      func(string) (int, error)
}

// ifindex resolves dev, the value of field; "" gives 0.
func (r resolver) ifindex(field, dev string) (int, error) {
	if dev == "" {
		return 0, nil
	}
	if r.index == nil {
		return 0, fmt.Errorf("%s %s %s: no index function to resolve %q", r.kind, r.name, field, dev)
	}
	i, err := r.index(dev)
	if err != nil {
		return 0, fmt.Errorf("%s %s %s: resolve %q: %w", r.kind, r.name, field, dev, err)
	}
	if i <= 0 {
		return 0, fmt.Errorf("%s %s %s: resolve %q: bad ifindex %d", r.kind, r.name, field, dev, i)
	}
	return i, nil
}

// attrs returns LinkAttrs with the name and the parent's index.
func (r resolver) attrs(parent string) (netlink.LinkAttrs, error) {
	la := netlink.LinkAttrs{Name: r.name}
	i, err := r.ifindex("Parent", parent)
	la.ParentIndex = i
	return la, err
}

// ip converts a validated address string; "" gives nil. If zero4 is set,
// "" gives 0.0.0.0 instead: netlink picks the IPv6 variant of gre, gretap
// and vti when Local is nil.
func ip(s string, zero4 bool) net.IP {
	if s == "" {
		if zero4 {
			return net.IPv4zero.To4()
		}
		return nil
	}
	return net.IP(netip.MustParseAddr(s).AsSlice())
}

func ptrTo[T any](v T) *T { return &v }

// SysfsSetting is a value written to a file under /sys/class/net/NAME/ after
// the link is made, for an option netlink v1.3.1 cannot set at creation.
type SysfsSetting struct {
	Path  string // relative to /sys/class/net/NAME/, "bridge/stp_state"
	Value string
}

// SysfsSettings returns what the agent writes to sysfs, in order, after
// LinkAdd of spec: for a Bridge, ForwardDelay and STP (netlink's Bridge has
// no fields for them). Other kinds have none.
func SysfsSettings(spec Spec) []SysfsSetting {
	var b Bridge
	switch s := spec.(type) {
	case Bridge:
		b = s
	case *Bridge:
		b = *s
	default:
		return nil
	}
	var out []SysfsSetting
	if b.ForwardDelay != 0 {
		out = append(out, SysfsSetting{"bridge/forward_delay", strconv.FormatInt(centis(b.ForwardDelay), 10)})
	}
	if b.STP {
		out = append(out, SysfsSetting{"bridge/stp_state", "1"})
	}
	return out
}
