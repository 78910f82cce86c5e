package lnsttest

import (
	"fmt"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// Nexthop adds a path to a multipath route: through gateway via (""
// for none) out of dev (nil for any), with weight 1 to 256 (0 means 1).
// Give it several times to AddRoute; the route then has no Via or Dev of
// its own.
func Nexthop(via string, dev *Device, weight int) RouteOpt {
	return func(r *pb.RouteRequest) {
		nh := &pb.Nexthop{Via: via, Weight: int32(weight)}
		if dev != nil {
			nh.Dev = dev.name
		}
		r.Nexthops = append(r.Nexthops, nh)
	}
}

// Route is one route of Host.AddRoutes. Dst is as AddRoute's dst; Dev
// may be nil.
type Route struct {
	Dst, Via      string
	Dev           *Device
	Table, Metric int
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
			req.Routes[i] = &pb.RouteRequest{Dst: r.Dst, Via: r.Via, Table: int32(r.Table), Metric: int32(r.Metric)}
			if r.Dev != nil {
				req.Routes[i].Dev = r.Dev.name
			}
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

// RuleOpt is an option of Host.AddRule.
type RuleOpt func(*pb.RuleRequest)

// From matches packets from a source prefix ("198.18.1.0/24").
func From(prefix string) RuleOpt { return func(r *pb.RuleRequest) { r.Src = prefix } }

// To matches packets to a destination prefix.
func To(prefix string) RuleOpt { return func(r *pb.RuleRequest) { r.Dst = prefix } }

// RuleTable is the routing table a rule looks up (required).
func RuleTable(id int) RuleOpt { return func(r *pb.RuleRequest) { r.Table = int32(id) } }

// Priority is a rule's preference (lower first); without it the kernel
// chooses one.
func Priority(n int) RuleOpt { return func(r *pb.RuleRequest) { r.Priority = int32(n) } }

// Fwmark matches packets with a firewall mark.
func Fwmark(n uint32) RuleOpt { return func(r *pb.RuleRequest) { r.Fwmark = n } }

// IifName matches packets that came in on a device, by its real name
// (Device.Name()).
func IifName(name string) RuleOpt { return func(r *pb.RuleRequest) { r.Iif = name } }

// OifName matches packets that go out of a device, by its real name.
func OifName(name string) RuleOpt { return func(r *pb.RuleRequest) { r.Oif = name } }

// RuleIPv6 makes a rule without From or To an IPv6 one.
func RuleIPv6() RuleOpt { return func(r *pb.RuleRequest) { r.Family = 6 } }

// AddRule adds a policy routing rule (ip rule add) and removes it when
// the test ends.
func (h *Host) AddRule(t testing.TB, opts ...RuleOpt) {
	t.Helper()
	st := h.s.state(t)
	req := &pb.RuleRequest{Host: h.id, Group: st.group}
	for _, o := range opts {
		o(req)
	}
	r, err := h.client.AddRule(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: add rule %s: %v", h.name, ruleString(req), err)
	}
	st.logger().Debug("added rule", "host", h.name, "rule", ruleString(req))
	st.undoAt(t, h.client, "rule "+ruleString(req)+" on "+h.name, r.Seq)
}

func ruleString(r *pb.RuleRequest) string {
	s := "from all"
	if r.Src != "" {
		s = "from " + r.Src
	}
	if r.Dst != "" {
		s += " to " + r.Dst
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
