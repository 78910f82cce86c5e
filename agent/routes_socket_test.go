package agent

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestRouteSocketAsNetlink adds and removes routes through a routeSocket
// and through netlink.Handle, each removing what the other added, and
// checks that the kernel holds the same route either way.
func TestRouteSocketAsNetlink(t *testing.T) {
	h, err := newNamespaceHost("route-socket", false)
	if err != nil {
		t.Fatalf("namespace: %v", err)
	}
	defer h.close()
	if err := h.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "v0"}, PeerName: "v1"}); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, name := range []string{"v0", "v1"} {
		l, err := h.nl.LinkByName(name)
		if err == nil {
			err = h.nl.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("set %s up: %v", name, err)
		}
	}
	l, err := h.nl.LinkByName("v0")
	if err != nil {
		t.Fatalf("find v0: %v", err)
	}
	for _, a := range []string{"198.18.210.1/24", "2001:db8:210::1/64"} {
		addr, _ := netlink.ParseAddr(a)
		addr.Flags = unix.IFA_F_NODAD
		if err := h.nl.AddrAdd(l, addr); err != nil {
			t.Fatalf("address v0 %s: %v", a, err)
		}
	}
	routes := []route{
		{Dst: "198.19.1.0/24", Via: "198.18.210.2"},
		{Dst: "198.19.2.0/24", Dev: "v0"},
		{Dst: "198.19.3.0/24", Via: "198.18.210.2", Dev: "v0", Table: 100, Metric: 50},
		{Dst: "198.19.4.4/32", Via: "198.18.210.2", Table: 1000},
		{Dst: "default", Via: "198.18.210.2", Table: 101},
		{Dst: "default", Dev: "v0", Table: 102},
		{Dst: "default", Dev: "v0", Family: 6, Table: 103},
		{Dst: "2001:db8:20::/48", Via: "2001:db8:210::2", Metric: 7},
		{Dst: "2001:db8:21::/64", Dev: "v0", Table: 300},
	}
	rs, err := h.openRouteSocket()
	if err != nil {
		t.Fatalf("open route socket: %v", err)
	}
	defer rs.close()
	for _, r := range routes {
		nr, err := h.netlinkRoute(r)
		if err != nil {
			t.Fatalf("route %s: %v", r, err)
		}
		var got [2]string
		for i, viaSocket := range []bool{true, false} {
			if viaSocket {
				if !rs.add(nr, &err) {
					t.Fatalf("route %s: the route socket does not encode it", r)
				}
			} else {
				err = h.nl.RouteAdd(nr)
			}
			if err != nil {
				t.Fatalf("add route %s (route socket %v): %v", r, viaSocket, err)
			}
			got[i] = kernelRoute(t, h, nr)
			if viaSocket {
				err = h.nl.RouteDel(nr)
			} else if !rs.del(nr, &err) {
				t.Fatalf("route %s: the route socket does not encode its removal", r)
			}
			if err != nil {
				t.Fatalf("remove route %s (route socket %v): %v", r, !viaSocket, err)
			}
			if s := kernelRoute(t, h, nr); s != "" {
				t.Fatalf("route %s is still there after its removal: %s", r, s)
			}
		}
		t.Logf("route %s: %s", r, got[0])
		if got[0] == "" || got[0] != got[1] {
			t.Errorf("route %s: added through the route socket\n\t%s\nthrough netlink.Handle\n\t%s", r, got[0], got[1])
		}
	}

	// The kernel's errors come back as netlink.Handle gives them.
	nr, err := h.netlinkRoute(routes[0])
	if err != nil {
		t.Fatal(err)
	}
	if rs.add(nr, &err); err != nil {
		t.Fatalf("add route: %v", err)
	}
	if rs.add(nr, &err); !errors.Is(err, unix.EEXIST) {
		t.Errorf("add a route twice: %v, want EEXIST", err)
	}
	if rs.del(nr, &err); err != nil {
		t.Fatalf("remove route: %v", err)
	}
	if rs.del(nr, &err); !errors.Is(err, unix.ESRCH) {
		t.Errorf("remove a route twice: %v, want ESRCH", err)
	}
	gone := &netlink.Route{Dst: nr.Dst, LinkIndex: 999}
	if rs.add(gone, &err); !errors.Is(err, unix.ENODEV) {
		t.Errorf("add a route on a missing device: %v, want ENODEV", err)
	}

	// What the route socket does not encode, it leaves to netlink.Handle.
	for _, nr := range []*netlink.Route{
		{LinkIndex: l.Attrs().Index},
		{Dst: nr.Dst, MultiPath: []*netlink.NexthopInfo{{Gw: net.ParseIP("198.18.210.2")}}},
		{Dst: nr.Dst, Gw: net.ParseIP("2001:db8:210::2")},
	} {
		if rs.add(nr, &err) {
			t.Errorf("the route socket encodes %+v", nr)
		}
	}
}

// kernelRoute describes the route of h's kernel with nr's destination,
// table and metric, "" when there is none.
func kernelRoute(t *testing.T, h *host, nr *netlink.Route) string {
	t.Helper()
	family := netlink.FAMILY_V4
	if nr.Dst != nil && nr.Dst.IP.To4() == nil {
		family = netlink.FAMILY_V6
	}
	filter := &netlink.Route{Table: nr.Table, Priority: nr.Priority}
	mask := netlink.RT_FILTER_TABLE
	if filter.Table == 0 {
		filter.Table = unix.RT_TABLE_MAIN
	}
	if nr.Priority != 0 {
		mask |= netlink.RT_FILTER_PRIORITY
	}
	rs, err := h.nl.RouteListFiltered(family, filter, mask)
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	want := "<nil>"
	if nr.Dst != nil {
		want = nr.Dst.String()
	}
	for _, r := range rs {
		dst := "<nil>"
		if r.Dst != nil {
			dst = r.Dst.String()
		}
		if dst == want || (nr.Dst == nil && dst == "0.0.0.0/0") {
			return fmt.Sprintf("dst %s gw %s dev %d table %d metric %d protocol %d scope %d type %d flags %d",
				dst, r.Gw, r.LinkIndex, r.Table, r.Priority, r.Protocol, r.Scope, r.Type, r.Flags)
		}
	}
	return ""
}
