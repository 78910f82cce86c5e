// Package nlspec maps the device model's specs (package devices) to the
// netlink.Link values the agent passes to netlink's LinkAdd, with the
// options netlink cannot set at creation as sysfs writes. It lives with the
// agent so that the device model, which the controller and recipes import,
// does not link netlink.
package nlspec

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strconv"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink"
)

// ErrNotNetlink is the error, wrapped with the kind and device, that
// Link returns for kinds netlink cannot create: Team (teamd makes it),
// OvsBridge (ovs-vsctl makes it) and Macsec (netlink has no type for it:
// internal/macsec builds its request).
var ErrNotNetlink = errors.New("the kind has no netlink create")

// Link validates spec and builds the netlink.Link to pass to
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
func Link(spec devices.Spec, index func(name string) (int, error)) (netlink.Link, error) {
	if spec == nil {
		return nil, errors.New("netlink link: nil spec")
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	r := resolver{kind: spec.Kind(), name: spec.LinkName(), index: index}
	if v := reflect.ValueOf(spec); v.Kind() == reflect.Pointer && !v.IsNil() {
		if s, ok := v.Elem().Interface().(devices.Spec); ok {
			spec = s // a *Bridge maps as its Bridge
		}
	}
	switch s := spec.(type) {
	case devices.Veth:
		return vethLink(s, r)
	case devices.Bridge:
		return bridgeLink(s, r)
	case devices.Dummy:
		return dummyLink(s, r)
	case devices.Ifb:
		return &netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: s.Name}}, nil
	case devices.Vrf:
		return vrfLink(s, r)
	case devices.Tuntap:
		return tuntapLink(s, r)
	case devices.Bond:
		return bondLink(s, r)
	case devices.Team:
		return teamLink(s, r)
	case devices.OvsBridge:
		return ovsBridgeLink(s, r)
	case devices.Vlan:
		return vlanLink(s, r)
	case devices.Macvlan:
		return macvlanLink(s, r)
	case devices.Macvtap:
		return macvtapLink(s, r)
	case devices.Ipvlan:
		return ipvlanLink(s, r)
	case devices.Vxlan:
		return vxlanLink(s, r)
	case devices.Geneve:
		return geneveLink(s, r)
	case devices.Gre:
		return greLink(s, r)
	case devices.Ip6gre:
		return ip6greLink(s, r)
	case devices.Gretap:
		return gretapLink(s, r)
	case devices.Ip6gretap:
		return ip6gretapLink(s, r)
	case devices.IpIp:
		return ipIpLink(s, r)
	case devices.Sit:
		return sitLink(s, r)
	case devices.Ip6Tnl:
		return ip6TnlLink(s, r)
	case devices.Vti:
		return vtiLink(s, r)
	case devices.Vti6:
		return vti6Link(s, r)
	case devices.Wireguard:
		return wireguardLink(s, r)
	case devices.Xfrm:
		return xfrmLink(s, r)
	case devices.Macsec:
		return nil, fmt.Errorf("macsec %s: %w (internal/macsec builds its RTM_NEWLINK)", s.Name, ErrNotNetlink)
	}
	return nil, fmt.Errorf("%s %s: %T has no netlink mapping", spec.Kind(), spec.LinkName(), spec)
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
func SysfsSettings(spec devices.Spec) []SysfsSetting {
	var b devices.Bridge
	switch s := spec.(type) {
	case devices.Bridge:
		b = s
	case *devices.Bridge:
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
