package lnsttest

import (
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/proto"
)

// TestRouteRequest checks AddRoute's options fill in a Route and that a
// Route (as AddRoutes takes it) reaches the agent with every field,
// nexthops included.
func TestRouteRequest(t *testing.T) {
	h := &Host{name: "h1"}
	eth0, eth1 := h.device("eth0"), h.device("eth1")
	var fromOpts Route
	for _, o := range []RouteOpt{Table(100), Metric(10), Nexthop("198.18.10.2", eth0, 1), Nexthop("", eth1, 3)} {
		o(&fromOpts)
	}
	literal := Route{Table: 100, Metric: 10, Nexthops: []Hop{{Via: "198.18.10.2", Dev: eth0, Weight: 1}, {Dev: eth1, Weight: 3}}}
	assert.Equal(t, literal, fromOpts)
	want := &pb.RouteRequest{Dst: "198.18.20.0/24", Table: 100, Metric: 10, Nexthops: []*pb.Nexthop{{Via: "198.18.10.2", Dev: "eth0", Weight: 1}, {Dev: "eth1", Weight: 3}}}
	literal.Dst = "198.18.20.0/24"
	assert.True(t, proto.Equal(want, literal.request()), "request = %v, want %v", literal.request(), want)
	assert.Equal(t, "198.18.20.0/24 table 100 metric 10 nexthop via 198.18.10.2 dev eth0 weight 1 nexthop dev eth1 weight 3", literal.String())

	single := Route{Dst: "default"}
	for _, o := range []RouteOpt{Via("198.18.10.1"), Dev(eth0)} {
		o(&single)
	}
	assert.True(t, proto.Equal(&pb.RouteRequest{Dst: "default", Via: "198.18.10.1", Dev: "eth0"}, single.request()))
	assert.Equal(t, "default via 198.18.10.1 dev eth0", single.String())
}

// TestRuleRequest checks AddRule's options fill in a Rule and that the
// Rule reaches the agent with every field.
func TestRuleRequest(t *testing.T) {
	var r Rule
	for _, o := range []RuleOpt{From("198.18.1.0/24"), To("198.18.2.0/24"), RuleTable(100), Priority(1000), Fwmark(7), IifName("eth0"), OifName("eth1")} {
		o(&r)
	}
	assert.Equal(t, Rule{From: "198.18.1.0/24", To: "198.18.2.0/24", Table: 100, Priority: 1000, Fwmark: 7, Iif: "eth0", Oif: "eth1"}, r)
	want := &pb.RuleRequest{Src: "198.18.1.0/24", Dst: "198.18.2.0/24", Table: 100, Priority: 1000, Fwmark: 7, Iif: "eth0", Oif: "eth1"}
	assert.True(t, proto.Equal(want, r.request()), "request = %v, want %v", r.request(), want)
	assert.Equal(t, "from 198.18.1.0/24 to 198.18.2.0/24 fwmark 0x7 iif eth0 oif eth1 lookup 100 pref 1000", r.String())

	var v6 Rule
	for _, o := range []RuleOpt{RuleIPv6(), RuleTable(7)} {
		o(&v6)
	}
	assert.True(t, proto.Equal(&pb.RuleRequest{Table: 7, Family: 6}, v6.request()))
	assert.Equal(t, "from all lookup 7", v6.String())
}

// TestEncapRouteRequest checks that Encap reaches the agent with every
// field of the encapsulation, and how the route prints.
func TestEncapRouteRequest(t *testing.T) {
	h := &Host{name: "h1"}
	vx := h.device("vx0")
	r := Route{Dst: "198.18.30.0/24"}
	for _, o := range []RouteOpt{Dev(vx), Encap(RouteEncap{ID: 42, Dst: "198.18.1.2", Src: "198.18.1.1", TTL: 64, Tos: 8, Csum: true, Key: true, Seq: true})} {
		o(&r)
	}
	want := &pb.RouteRequest{Dst: "198.18.30.0/24", Dev: "vx0", Encap: &pb.RouteEncap{Id: 42, Dst: "198.18.1.2", Src: "198.18.1.1", Ttl: 64, Tos: 8, Csum: true, Key: true, Seq: true}}
	assert.True(t, proto.Equal(want, r.request()), "request = %v, want %v", r.request(), want)
	assert.Equal(t, "198.18.30.0/24 encap ip id 42 src 198.18.1.1 dst 198.18.1.2 ttl 64 tos 8 csum key seq dev vx0", r.String())
	six := Route{Dst: "2001:db8:30::/64", Dev: vx, Encap: &RouteEncap{ID: 7, Dst: "2001:db8:1::2"}}
	assert.Equal(t, "2001:db8:30::/64 encap ip6 id 7 dst 2001:db8:1::2 dev vx0", six.String())
}
