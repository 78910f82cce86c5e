package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// route is a route as requests and undo entries carry it.
type route struct {
	Dst    string
	Via    string `json:",omitempty"`
	Dev    string `json:",omitempty"`
	Table  int    `json:",omitempty"`
	Metric int    `json:",omitempty"`
	Family int    `json:",omitempty"`
	// Nexthops make a multipath route (Via and Dev are then empty).
	Nexthops []nexthop `json:",omitempty"`
	// Encap makes a lightweight-tunnel route (see routes_lwt.go).
	Encap *encap `json:",omitempty"`
}

// nexthop is one path of a multipath route.
type nexthop struct {
	Via, Dev string `json:",omitempty"`
	Weight   int    `json:",omitempty"`
}

func routeOf(r *pb.RouteRequest) route {
	rt := route{Dst: r.Dst, Via: r.Via, Dev: r.Dev, Table: int(r.Table), Metric: int(r.Metric), Family: int(r.Family), Encap: encapOf(r.Encap)}
	for _, nh := range r.Nexthops {
		rt.Nexthops = append(rt.Nexthops, nexthop{Via: nh.Via, Dev: nh.Dev, Weight: int(nh.Weight)})
	}
	return rt
}

func (r route) String() string {
	s := r.Dst
	if r.Encap != nil {
		s += " " + r.Encap.String()
	}
	if r.Via != "" {
		s += " via " + r.Via
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Table != 0 {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	for _, nh := range r.Nexthops {
		s += " nexthop"
		if nh.Via != "" {
			s += " via " + nh.Via
		}
		if nh.Dev != "" {
			s += " dev " + nh.Dev
		}
		if nh.Weight != 0 {
			s += fmt.Sprintf(" weight %d", nh.Weight)
		}
	}
	return s
}

// linkIndex returns the index of device name on h.
func (h *host) linkIndex(name string) (int, error) {
	l, err := h.link(name)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// netlinkRoute checks r and turns it into a netlink route on host h.
func (h *host) netlinkRoute(r route) (*netlink.Route, error) {
	return h.netlinkRouteWith(r, h.linkIndex)
}

// netlinkRouteWith is netlinkRoute with devices found by index (a batch
// looks each device up once).
func (h *host) netlinkRouteWith(r route, index func(string) (int, error)) (*netlink.Route, error) {
	nr := &netlink.Route{Table: r.Table, Priority: r.Metric}
	family := 0
	switch r.Family {
	case 0:
	case 4:
		family = netlink.FAMILY_V4
	case 6:
		family = netlink.FAMILY_V6
	default:
		return nil, badArg(fmt.Errorf("route %s: family %d is neither 4 nor 6", r, r.Family))
	}
	if r.Dst != "default" {
		p, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			return nil, badArg(fmt.Errorf("route destination %q is neither a prefix (198.18.20.0/24, 2001:db8:2::/64) nor \"default\"", r.Dst))
		}
		if p.Masked() != p {
			return nil, badArg(fmt.Errorf("route destination %q has host bits set (did you mean %s?)", r.Dst, p.Masked()))
		}
		if p.Addr().Is4In6() {
			return nil, badArg(fmt.Errorf("route destination %q is an IPv4-mapped IPv6 prefix: give it as IPv4 (198.18.20.0/24)", r.Dst))
		}
		if family != 0 && familyOf(p.Addr()) != family {
			return nil, badArg(fmt.Errorf("route %s: destination is not of family %d", r, r.Family))
		}
		nr.Dst = &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		family = familyOf(p.Addr())
	}
	if r.Via != "" {
		gw, err := netip.ParseAddr(r.Via)
		if err != nil {
			return nil, badArg(fmt.Errorf("route %s: gateway %q is not an address", r, r.Via))
		}
		if family != 0 && familyOf(gw) != family {
			return nil, badArg(fmt.Errorf("route %s: gateway %s is not of the destination's address family", r, r.Via))
		}
		nr.Gw = gw.AsSlice()
		family = familyOf(gw)
	}
	if r.Dev != "" {
		i, err := index(r.Dev)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = i
	}
	if len(r.Nexthops) > 0 {
		if r.Via != "" || r.Dev != "" {
			return nil, badArg(fmt.Errorf("route %s: a multipath route has its gateways and devices in its nexthops only", r))
		}
		mp, err := multipath(r, &family, index)
		if err != nil {
			return nil, err
		}
		nr.MultiPath = mp
	} else if r.Via == "" && r.Dev == "" {
		return nil, badArg(fmt.Errorf("route %s: give a gateway (Via) or a device (Dev)", r))
	}
	if family == 0 {
		family = netlink.FAMILY_V4
	}
	nr.Family = family
	if nr.Dst == nil && nr.Gw == nil {
		// "default" with only a device (or nexthops): netlink needs a
		// destination or a gateway to know the family, so the default
		// route is spelled as the zero-length prefix of its family.
		bits := 8 * net.IPv4len
		if family == netlink.FAMILY_V6 {
			bits = 8 * net.IPv6len
		}
		nr.Dst = &net.IPNet{IP: make(net.IP, bits/8), Mask: net.CIDRMask(0, bits)}
	}
	if r.Encap != nil {
		if len(r.Nexthops) > 0 {
			return nil, badArg(fmt.Errorf("route %s: an encap route has no nexthops", r))
		}
		e, err := r.Encap.lwt(r)
		if err != nil {
			return nil, err
		}
		nr.Encap = e
	}
	if r.Table < 0 || r.Metric < 0 {
		return nil, badArg(fmt.Errorf("route %s: table and metric must not be negative", r))
	}
	return nr, nil
}

// multipath checks the nexthops of r and turns them into netlink's; a
// gateway sets *family when it is still 0.
func multipath(r route, family *int, index func(string) (int, error)) ([]*netlink.NexthopInfo, error) {
	var mp []*netlink.NexthopInfo
	for i, nh := range r.Nexthops {
		if nh.Via == "" && nh.Dev == "" {
			return nil, badArg(fmt.Errorf("route %s: nexthop %d has neither a gateway nor a device", r, i+1))
		}
		if nh.Weight < 0 || nh.Weight > 256 {
			return nil, badArg(fmt.Errorf("route %s: nexthop %d has weight %d, not 1 to 256", r, i+1, nh.Weight))
		}
		info := &netlink.NexthopInfo{}
		if nh.Weight > 0 {
			info.Hops = nh.Weight - 1
		}
		if nh.Via != "" {
			gw, err := netip.ParseAddr(nh.Via)
			if err != nil {
				return nil, badArg(fmt.Errorf("route %s: nexthop %d: gateway %q is not an address", r, i+1, nh.Via))
			}
			if *family != 0 && familyOf(gw) != *family {
				return nil, badArg(fmt.Errorf("route %s: nexthop %d: gateway %s is not of the route's address family", r, i+1, nh.Via))
			}
			info.Gw = gw.AsSlice()
			*family = familyOf(gw)
		}
		if nh.Dev != "" {
			idx, err := index(nh.Dev)
			if err != nil {
				return nil, fmt.Errorf("route %s: nexthop %d: %w", r, i+1, err)
			}
			info.LinkIndex = idx
		}
		mp = append(mp, info)
	}
	return mp, nil
}

func familyOf(a netip.Addr) int {
	if a.Is4() || a.Is4In6() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// addRoute adds a route.
func (h *host) addRoute(r route) error {
	nr, err := h.netlinkRoute(r)
	if err != nil {
		return err
	}
	if err := h.routeAdd(nr); err != nil {
		return fmt.Errorf("add route %s on %s: %w", r, h.label(), err)
	}
	return nil
}

// routeAdd adds nr as h.nl.RouteAdd does, through h's routeSocket.
func (h *host) routeAdd(nr *netlink.Route) error {
	return h.withRouteSocket(func(rs *routeSocket) error { return h.routeVia(rs, nr, false) })
}

// routeDel removes nr as h.nl.RouteDel does, through h's routeSocket.
func (h *host) routeDel(nr *netlink.Route) error {
	return h.withRouteSocket(func(rs *routeSocket) error { return h.routeVia(rs, nr, true) })
}

// routeVia adds (or with del removes) nr through rs, or through h.nl when
// there is no rs or rs does not encode nr.
func (h *host) routeVia(rs *routeSocket, nr *netlink.Route, del bool) error {
	var err error
	switch {
	case del && (rs == nil || !rs.del(nr, &err)):
		err = h.nl.RouteDel(nr)
	case !del && (rs == nil || !rs.add(nr, &err)):
		err = h.nl.RouteAdd(nr)
	}
	return err
}

// undoAddRoute adds a route back; a route already there, or whose device
// is gone, is errNothingToUndo.
func (h *host) undoAddRoute(r route) error {
	err := h.addRoute(r)
	var nf netlink.LinkNotFoundError
	switch {
	case errors.Is(err, unix.EEXIST):
		return nothingToUndo("%s has route %s already", h.label(), r)
	case errors.As(err, &nf):
		return nothingToUndo("route %s on %s: its device is gone", r, h.label())
	}
	return err
}

// delRoute removes a route; with missingOK, a route already gone (or its
// device) is errNothingToUndo.
func (h *host) delRoute(r route, missingOK bool) error {
	nr, err := h.netlinkRoute(r)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if missingOK && errors.As(err, &nf) {
			return nothingToUndo("route %s on %s: its device is gone", r, h.label())
		}
		return err
	}
	err = h.routeDel(nr)
	if missingOK && errors.Is(err, unix.ESRCH) {
		return nothingToUndo("%s has no route %s", h.label(), r)
	}
	if err != nil {
		return fmt.Errorf("remove route %s on %s: %w", r, h.label(), err)
	}
	return nil
}
