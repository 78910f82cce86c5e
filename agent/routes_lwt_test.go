package agent

import (
	"encoding/binary"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// attr is a netlink attribute as the kernel lays it out: length, type,
// value, padded to 4 bytes.
func attr(typ uint16, v ...byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// TestLwtEncapMessage checks the RTA_ENCAP_TYPE and RTA_ENCAP attributes
// of encap routes byte for byte against the layout of linux/lwtunnel.h
// (what iproute2's "encap ip" sends): the id and the flags big-endian,
// addresses of the encap's family, ttl and tos one byte each.
func TestLwtEncapMessage(t *testing.T) {
	r := route{Dst: "198.19.5.0/24", Dev: "vx0"}
	for _, c := range []struct {
		e        encap
		typ      uint16
		inner    []byte
		describe string
	}{
		{encap{ID: 42, Dst: "198.18.1.2", TTL: 64, Key: true}, lwtEncapIP, cat(
			attr(1, 0, 0, 0, 0, 0, 0, 0, 42),
			attr(2, 198, 18, 1, 2),
			attr(4, 64),
			attr(5, 0),
			attr(6, 0x00, 0x04),
		), "encap ip id 42 dst 198.18.1.2 ttl 64 key"},
		{encap{ID: 0x0102030405, Src: "198.18.1.1", Dst: "198.18.1.3", Tos: 16, Csum: true, Seq: true}, lwtEncapIP, cat(
			attr(1, 0, 0, 0, 1, 2, 3, 4, 5),
			attr(2, 198, 18, 1, 3),
			attr(3, 198, 18, 1, 1),
			attr(4, 0),
			attr(5, 16),
			attr(6, 0x00, 0x09),
		), "encap ip id 4328719365 src 198.18.1.1 dst 198.18.1.3 tos 16 csum seq"},
		{encap{ID: 7, Dst: "2001:db8:1::2", TTL: 10}, lwtEncapIP6, cat(
			attr(1, 0, 0, 0, 0, 0, 0, 0, 7),
			attr(2, net.ParseIP("2001:db8:1::2")...),
			attr(4, 10),
			attr(5, 0),
		), "encap ip6 id 7 dst 2001:db8:1::2 ttl 10"},
	} {
		assert.Equal(t, c.describe, c.e.String())
		l, err := c.e.lwt(r)
		require.NoError(t, err, "%s", c.describe)
		assert.Equal(t, int(c.typ), l.Type(), "%s", c.describe)
		got, err := l.Encode()
		require.NoError(t, err)
		assert.Equal(t, c.inner, got, "%s", c.describe)
		want := cat(attr(unix.RTA_ENCAP_TYPE, binary.NativeEndian.AppendUint16(nil, c.typ)...), attr(unix.RTA_ENCAP, c.inner...))
		assert.Equal(t, want, appendEncap(nil, l), "%s", c.describe)
		var back lwtEncap
		require.NoError(t, back.Decode(got))
		assert.True(t, l.Equal(&back), "%s decodes as %s", l, &back)
	}
}

// TestLwtEncapInvalid checks that a bad encap is refused naming the field.
func TestLwtEncapInvalid(t *testing.T) {
	r := route{Dst: "198.19.5.0/24", Dev: "vx0"}
	for _, c := range []struct {
		e    encap
		want string
	}{
		{encap{ID: 1}, `encap dst "" is not`},
		{encap{Dst: "vx0"}, `encap dst "vx0" is not`},
		{encap{Dst: "::ffff:198.18.1.2"}, `encap dst "::ffff:198.18.1.2" is not`},
		{encap{Dst: "198.18.1.2", Src: "2001:db8::1"}, "two address families"},
		{encap{Dst: "198.18.1.2", Src: "x"}, `encap src "x" is not`},
		{encap{Dst: "198.18.1.2", TTL: 256}, "ttl 256 and tos 0 must be 0 to 255"},
		{encap{Dst: "198.18.1.2", Tos: -1}, "must be 0 to 255"},
	} {
		_, err := c.e.lwt(r)
		require.Error(t, err, "%+v", c.e)
		assert.Contains(t, err.Error(), c.want)
	}
	h := &host{name: "h"}
	mp := route{Dst: "198.19.5.0/24", Nexthops: []nexthop{{Via: "198.18.0.1"}}, Encap: &encap{Dst: "198.18.1.2"}}
	_, err := h.netlinkRouteWith(mp, func(string) (int, error) { return 1, nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "an encap route has no nexthops")

	req := &pb.RouteRequest{Dst: "198.19.5.0/24", Dev: "vx0", Encap: &pb.RouteEncap{Id: 9, Dst: "198.18.1.2", Ttl: 3, Tos: 4, Key: true}}
	assert.Equal(t, &encap{ID: 9, Dst: "198.18.1.2", TTL: 3, Tos: 4, Key: true}, routeOf(req).Encap)
	assert.Nil(t, routeOf(&pb.RouteRequest{Dst: "198.19.5.0/24"}).Encap)
}

// TestRouteSocketEncap adds encap routes out of an external vxlan device
// through the route socket and through netlink.Handle, each removing what
// the other added, and checks that the kernel holds the encap asked for
// (as ip route shows it) either way.
func TestRouteSocketEncap(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) to read the routes' encap back")
	}
	h, err := newNamespaceHost("route-lwt", false)
	if err != nil {
		t.Fatalf("namespace: %v", err)
	}
	defer h.close()
	if err := h.nl.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "vx0"}, FlowBased: true, Port: 4789}); err != nil {
		t.Fatalf("add external vxlan: %v", err)
	}
	l, err := h.nl.LinkByName("vx0")
	if err == nil {
		err = h.nl.LinkSetUp(l)
	}
	require.NoError(t, err, "vx0 up")
	show := func(r route) string {
		var out []byte
		err := h.do(func() error {
			var err error
			out, err = exec.Command("ip", "route", "show", "table", "all", r.Dst).CombinedOutput()
			return err
		})
		require.NoError(t, err, "ip route show: %s", out)
		return strings.Join(strings.Fields(string(out)), " ")
	}
	for _, c := range []struct {
		r    route
		want string
	}{
		{route{Dst: "198.19.5.0/24", Dev: "vx0", Encap: &encap{ID: 42, Dst: "198.18.1.2", TTL: 64, Key: true}},
			"198.19.5.0/24 encap ip id 42 src 0.0.0.0 dst 198.18.1.2 ttl 64 tos 0 key dev vx0"},
		{route{Dst: "198.19.6.0/24", Dev: "vx0", Table: 100, Encap: &encap{ID: 1 << 33, Src: "198.18.1.1", Dst: "198.18.1.3", Tos: 16, Csum: true, Seq: true}},
			"198.19.6.0/24 encap ip id 8589934592 src 198.18.1.1 dst 198.18.1.3 ttl 0 tos 16 csum seq dev vx0 table 100"},
		{route{Dst: "2001:db8:77::/64", Dev: "vx0", Encap: &encap{ID: 43, Dst: "198.18.1.2"}},
			"2001:db8:77::/64 encap ip id 43 src 0.0.0.0 dst 198.18.1.2 ttl 0 tos 0 dev vx0"},
		{route{Dst: "2001:db8:78::/64", Dev: "vx0", Metric: 5, Encap: &encap{ID: 44, Dst: "2001:db8:1::2", TTL: 9}},
			"2001:db8:78::/64 encap ip6 id 44 src :: dst 2001:db8:1::2 hoplimit 9 tc 0 dev vx0"},
	} {
		nr, err := h.netlinkRoute(c.r)
		require.NoError(t, err, "%s", c.r)
		var got [2]string
		for i, viaSocket := range []bool{true, false} {
			err := h.withRouteSocket(func(rs *routeSocket) error {
				if rs == nil {
					t.Fatal("no route socket")
				}
				if viaSocket {
					if !rs.add(nr, &err) {
						t.Fatalf("route %s: the route socket does not encode it", c.r)
					}
					return err
				}
				return h.nl.RouteAdd(nr)
			})
			require.NoError(t, err, "add %s (route socket %v)", c.r, viaSocket)
			got[i] = show(c.r)
			err = h.withRouteSocket(func(rs *routeSocket) error {
				if !viaSocket {
					if !rs.del(nr, &err) {
						t.Fatalf("route %s: the route socket does not encode its removal", c.r)
					}
					return err
				}
				return h.nl.RouteDel(nr)
			})
			require.NoError(t, err, "remove %s", c.r)
			require.Empty(t, show(c.r), "%s after its removal", c.r)
		}
		assert.Contains(t, got[0], c.want, "through the route socket")
		assert.Equal(t, got[0], got[1], "through the route socket and through netlink.Handle")
	}
}

// TestEncapRoutesRestored makes an external vxlan and a VXLAN-GPE device
// through CreateLink (the GPE one by the agent's own RTM_NEWLINK), adds
// encap routes out of them with AddRoute and AddRoutes, and checks that
// the kernel holds them and that Restore takes every one back.
func TestEncapRoutesRestored(t *testing.T) {
	_, c := testServerOpts(t, Options{Lab: true})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	for _, spec := range []devices.Spec{
		devices.Vxlan{Name: "vx0", External: true},
		devices.Vxlan{Name: "gpe0", External: true, GPE: true},
	} {
		kind, data, err := devices.Marshal(spec)
		require.NoError(t, err)
		_, err = c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: "base", Spec: &pb.CreateLinkRequest_Generic{Generic: &pb.GenericSpec{Kind: kind, Json: data}}})
		require.NoError(t, err, "%s", spec.LinkName())
		_, err = c.SetLink(ctx, &pb.SetLinkRequest{Host: "h1", Group: "base", Name: spec.LinkName(), Up: proto.Bool(true)})
		require.NoError(t, err)
	}
	assert.Contains(t, testSh(t, c, "h1", "ip -d link show gpe0"), " gpe ", "the device is VXLAN-GPE")
	assert.Contains(t, testSh(t, c, "h1", "ip -d link show vx0"), "vxlan external ")

	_, err := c.AddRoute(ctx, &pb.RouteRequest{Host: "h1", Group: "g", Dst: "198.18.44.2/32", Dev: "vx0", Encap: &pb.RouteEncap{Id: 1234, Dst: "198.18.45.2", Csum: true}})
	require.NoError(t, err)
	_, err = c.AddRoutes(ctx, &pb.RoutesRequest{Host: "h1", Group: "g", Routes: []*pb.RouteRequest{
		{Dst: "2001:db8:44::2/128", Dev: "vx0", Encap: &pb.RouteEncap{Id: 1234, Dst: "2001:db8:45::2", Ttl: 7}},
		{Dst: "198.18.46.0/24", Dev: "gpe0", Encap: &pb.RouteEncap{Id: 99, Dst: "198.18.45.3"}},
	}})
	require.NoError(t, err)
	_, err = c.AddRoute(ctx, &pb.RouteRequest{Host: "h1", Group: "g", Dst: "198.18.47.0/24", Dev: "vx0", Encap: &pb.RouteEncap{Dst: "vx0"}})
	testCode(t, err, codes.InvalidArgument, `encap dst "vx0" is not`)
	routes := strings.Join(strings.Fields(testSh(t, c, "h1", "ip route; ip -6 route")), " ")
	for _, want := range []string{
		"198.18.44.2 encap ip id 1234 src 0.0.0.0 dst 198.18.45.2 ttl 0 tos 0 csum dev vx0",
		"2001:db8:44::2 encap ip6 id 1234 src :: dst 2001:db8:45::2 hoplimit 7 tc 0 dev vx0",
		"198.18.46.0/24 encap ip id 99 src 0.0.0.0 dst 198.18.45.3 ttl 0 tos 0 dev gpe0",
	} {
		assert.Contains(t, routes, want)
	}
	assert.Equal(t, int32(3), testRestoreCount(t, c, "g"))
	assert.NotContains(t, testSh(t, c, "h1", "ip route; ip -6 route"), "encap", "Restore took the encap routes back")
}
