package lnsttest

import (
	"fmt"
	"strings"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// Route is a route of Host.AddRoute (which fills one in from its
// options) and Host.AddRoutes.
type Route struct {
	// Dst is "198.18.20.0/24", "2001:db8:2::/64", "default" for IPv4 or
	// "::/0" for IPv6.
	Dst string
	// Via is the gateway, "" for none.
	Via string
	// Dev is the device the route goes out of, nil for any.
	Dev *Device
	// Table is the routing table, 0 for main.
	Table int
	// Metric is the route's metric (priority), 0 for the kernel's.
	Metric int
	// Nexthops make a multipath route; it then has no Via or Dev of its
	// own.
	Nexthops []Hop
	// Encap makes a lightweight-tunnel route (nil for none): the packets
	// it routes go out of Dev, an External tunnel device, with this
	// tunnel metadata.
	Encap *RouteEncap
}

// RouteEncap is the lightweight-tunnel encapsulation of a Route ("ip
// route add ... encap ip id 42 dst 198.18.1.2 dev vxlan0"): an IPv4 Dst
// makes it an "encap ip", an IPv6 one an "encap ip6". The route's device
// is an external (collect-metadata) vxlan, geneve or gre device, which
// takes the key, addresses, TTL and TOS of each packet from it.
type RouteEncap struct {
	// ID is the tunnel key: the VNI of vxlan and geneve, the GRE key.
	ID uint64
	// Dst is the outer destination (the other tunnel end); Src the outer
	// source, "" for the kernel's choice. Both of one family.
	Dst, Src string
	// TTL (hop limit) and Tos (traffic class) of the outer header, 0 to
	// 255; 0 leaves the device's.
	TTL, Tos int
	// Csum, Key and Seq set the tunnel flags of those names (GRE
	// checksum, key and sequence numbers; Csum is also the outer UDP
	// checksum of vxlan and geneve). A GRE receiver drops a packet whose
	// checksum flag differs from its device's (an external gre device
	// made without icsum counts each as a crc receive error), and one
	// without sequence numbers when its device expects them.
	Csum, Key, Seq bool
}

// String is e as ip route prints it: "encap ip id 42 dst 198.18.1.2".
func (e RouteEncap) String() string {
	s := "encap ip"
	if strings.Contains(e.Dst, ":") {
		s = "encap ip6"
	}
	s += fmt.Sprintf(" id %d", e.ID)
	if e.Src != "" {
		s += " src " + e.Src
	}
	s += " dst " + e.Dst
	if e.TTL != 0 {
		s += fmt.Sprintf(" ttl %d", e.TTL)
	}
	if e.Tos != 0 {
		s += fmt.Sprintf(" tos %d", e.Tos)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{e.Csum, "csum"}, {e.Key, "key"}, {e.Seq, "seq"}} {
		if f.on {
			s += " " + f.name
		}
	}
	return s
}

// Encap makes a lightweight-tunnel route: give it with Dev of an External
// tunnel device.
func Encap(e RouteEncap) RouteOpt { return func(r *Route) { r.Encap = &e } }

// Hop is one path of a multipath Route: through gateway Via ("" for
// none) out of Dev (nil for any), with Weight 1 to 256 (0 means 1).
type Hop struct {
	Via    string
	Dev    *Device
	Weight int
}

// RouteOpt is an option of Host.AddRoute: it sets a field of the Route.
type RouteOpt func(*Route)

// Via routes through a gateway.
func Via(gateway string) RouteOpt { return func(r *Route) { r.Via = gateway } }

// Dev routes out of a device.
func Dev(d *Device) RouteOpt { return func(r *Route) { r.Dev = d } }

// Table puts the route in a routing table (default: main).
func Table(id int) RouteOpt { return func(r *Route) { r.Table = id } }

// Metric sets the route's metric (priority).
func Metric(m int) RouteOpt { return func(r *Route) { r.Metric = m } }

// Nexthop adds a path to a multipath route: through gateway via (""
// for none) out of dev (nil for any), with weight 1 to 256 (0 means 1).
// Give it several times to AddRoute; the route then has no Via or Dev of
// its own.
func Nexthop(via string, dev *Device, weight int) RouteOpt {
	return func(r *Route) { r.Nexthops = append(r.Nexthops, Hop{Via: via, Dev: dev, Weight: weight}) }
}

// request is the agent's form of r; its host and group are left to the
// caller.
func (r Route) request() *pb.RouteRequest {
	req := &pb.RouteRequest{Dst: r.Dst, Via: r.Via, Dev: devName(r.Dev), Table: int32(r.Table), Metric: int32(r.Metric)}
	for _, nh := range r.Nexthops {
		req.Nexthops = append(req.Nexthops, &pb.Nexthop{Via: nh.Via, Dev: devName(nh.Dev), Weight: int32(nh.Weight)})
	}
	if e := r.Encap; e != nil {
		req.Encap = &pb.RouteEncap{Id: e.ID, Dst: e.Dst, Src: e.Src, Ttl: int32(e.TTL), Tos: int32(e.Tos), Csum: e.Csum, Key: e.Key, Seq: e.Seq}
	}
	return req
}

// devName is d's real name, "" for nil.
func devName(d *Device) string {
	if d == nil {
		return ""
	}
	return d.name
}

// String is r as ip route would print it: "198.18.20.0/24 via
// 198.18.10.2 dev eth0 table 100 metric 10".
func (r Route) String() string {
	s := r.Dst
	if r.Encap != nil {
		s += " " + r.Encap.String()
	}
	if r.Via != "" {
		s += " via " + r.Via
	}
	if r.Dev != nil {
		s += " dev " + r.Dev.name
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
		if nh.Dev != nil {
			s += " dev " + nh.Dev.name
		}
		if nh.Weight != 0 {
			s += fmt.Sprintf(" weight %d", nh.Weight)
		}
	}
	return s
}

// AddRoute adds a route to dst ("198.18.20.0/24", "2001:db8:2::/64",
// "default" for IPv4 or "::/0" for IPv6) and removes it when the test
// ends.
func (h *Host) AddRoute(t testing.TB, dst string, opts ...RouteOpt) {
	t.Helper()
	st := h.s.state(t)
	route := Route{Dst: dst}
	for _, o := range opts {
		o(&route)
	}
	req := route.request()
	req.Host, req.Group = h.id, st.group
	r, err := h.client.AddRoute(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: add route %s: %v", h.name, route, err)
	}
	st.logger().Debug("added route", "host", h.name, "route", route.String())
	st.undoAt(t, h.client, "route "+route.String()+" on "+h.name, r.Seq)
}

// maxRoutesCall is how many routes AddRoutes sends in one call.
const maxRoutesCall = 1000

// AddRoutes adds many routes, a thousand per agent call, and removes them
// when the test ends. It is AddRoute for routing tables of thousands of
// routes.
func (h *Host) AddRoutes(t testing.TB, routes []Route) {
	t.Helper()
	if len(routes) == 0 {
		return
	}
	st := h.s.state(t)
	var first uint64
	for start := 0; start < len(routes); start += maxRoutesCall {
		batch := routes[start:min(start+maxRoutesCall, len(routes))]
		req := &pb.RoutesRequest{Host: h.id, Group: st.group, Routes: make([]*pb.RouteRequest, len(batch))}
		for i, r := range batch {
			req.Routes[i] = r.request()
		}
		rep, err := h.client.AddRoutes(rpcCtx(t), req)
		if err != nil {
			st.use(h.client) // the routes before a failed one stay
			t.Fatalf("%s: add routes %d to %d of %d: %v", h.name, start+1, start+len(batch), len(routes), err)
		}
		if first == 0 {
			first = rep.Seq
			st.undoAt(t, h.client, fmt.Sprintf("%d routes on %s", len(routes), h.name), first)
		}
	}
	st.logger().Debug("added routes", "host", h.name, "routes", len(routes))
}

// AddNeigh adds a permanent neighbour entry on dev: ip (IPv4 or IPv6) is
// at hardware address mac ("02:00:00:00:00:09"). It is removed when the
// test ends.
func (h *Host) AddNeigh(t testing.TB, dev *Device, ip, mac string) {
	t.Helper()
	st := h.s.state(t)
	r, err := h.client.AddNeigh(rpcCtx(t), &pb.NeighRequest{Host: h.id, Group: st.group, Dev: dev.name, Ip: ip, Lladdr: mac})
	if err != nil {
		t.Fatalf("%s: add neighbour %s lladdr %s on %s: %v", h.name, ip, mac, dev.name, err)
	}
	st.logger().Debug("added neighbour", "host", h.name, "dev", dev.name, "ip", ip, "lladdr", mac)
	st.undoAt(t, h.client, "neighbour "+ip+" on "+dev.name+" on "+h.name, r.Seq)
}

// Rule is a policy routing rule (ip rule) of Host.AddRule, which fills
// one in from its options.
type Rule struct {
	// From and To match packets from a source and to a destination prefix
	// ("198.18.1.0/24"); "" matches any.
	From, To string
	// Table is the routing table the rule looks up (required).
	Table int
	// Priority is the rule's preference (lower first); 0 lets the kernel
	// choose one.
	Priority int
	// Fwmark matches packets with a firewall mark; 0 matches any.
	Fwmark uint32
	// Iif and Oif match packets that came in on, or go out of, a device,
	// by its real name (Device.Name()); "" matches any.
	Iif, Oif string
	// IPv6 makes a rule without From or To an IPv6 one.
	IPv6 bool
}

// RuleOpt is an option of Host.AddRule: it sets a field of the Rule.
type RuleOpt func(*Rule)

// From matches packets from a source prefix ("198.18.1.0/24").
func From(prefix string) RuleOpt { return func(r *Rule) { r.From = prefix } }

// To matches packets to a destination prefix.
func To(prefix string) RuleOpt { return func(r *Rule) { r.To = prefix } }

// RuleTable is the routing table a rule looks up (required).
func RuleTable(id int) RuleOpt { return func(r *Rule) { r.Table = id } }

// Priority is a rule's preference (lower first); without it the kernel
// chooses one.
func Priority(n int) RuleOpt { return func(r *Rule) { r.Priority = n } }

// Fwmark matches packets with a firewall mark.
func Fwmark(n uint32) RuleOpt { return func(r *Rule) { r.Fwmark = n } }

// IifName matches packets that came in on a device, by its real name
// (Device.Name()).
func IifName(name string) RuleOpt { return func(r *Rule) { r.Iif = name } }

// OifName matches packets that go out of a device, by its real name.
func OifName(name string) RuleOpt { return func(r *Rule) { r.Oif = name } }

// RuleIPv6 makes a rule without From or To an IPv6 one.
func RuleIPv6() RuleOpt { return func(r *Rule) { r.IPv6 = true } }

// request is the agent's form of r; its host and group are left to the
// caller.
func (r Rule) request() *pb.RuleRequest {
	req := &pb.RuleRequest{Src: r.From, Dst: r.To, Table: int32(r.Table), Priority: int32(r.Priority), Fwmark: r.Fwmark, Iif: r.Iif, Oif: r.Oif}
	if r.IPv6 {
		req.Family = 6
	}
	return req
}

// AddRule adds a policy routing rule (ip rule add) and removes it when
// the test ends.
func (h *Host) AddRule(t testing.TB, opts ...RuleOpt) {
	t.Helper()
	st := h.s.state(t)
	var rule Rule
	for _, o := range opts {
		o(&rule)
	}
	req := rule.request()
	req.Host, req.Group = h.id, st.group
	r, err := h.client.AddRule(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: add rule %s: %v", h.name, rule, err)
	}
	st.logger().Debug("added rule", "host", h.name, "rule", rule.String())
	st.undoAt(t, h.client, "rule "+rule.String()+" on "+h.name, r.Seq)
}

// String is r as ip rule would print it: "from 198.18.1.0/24 lookup 100
// pref 1000".
func (r Rule) String() string {
	s := "from all"
	if r.From != "" {
		s = "from " + r.From
	}
	if r.To != "" {
		s += " to " + r.To
	}
	if r.Fwmark != 0 {
		s += fmt.Sprintf(" fwmark %#x", r.Fwmark)
	}
	if r.Iif != "" {
		s += " iif " + r.Iif
	}
	if r.Oif != "" {
		s += " oif " + r.Oif
	}
	s += fmt.Sprintf(" lookup %d", r.Table)
	if r.Priority != 0 {
		s += fmt.Sprintf(" pref %d", r.Priority)
	}
	return s
}
