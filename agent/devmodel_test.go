package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// testVeth makes an up veth pair v0/v1 on host h in group g.
func testVeth(t *testing.T, c pb.AgentClient, h, g string) {
	t.Helper()
	ctx := testCtx(t)
	_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: h, Group: g, Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "v0", PeerName: "v1"}}})
	require.NoError(t, err)
	for _, n := range []string{"v0", "v1"} {
		_, err := c.SetLink(ctx, &pb.SetLinkRequest{Host: h, Group: g, Name: n, Up: proto.Bool(true)})
		require.NoError(t, err)
	}
}

func TestNeighRestored(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	_, err := c.AddNeigh(ctx, &pb.NeighRequest{Host: "h1", Group: "g", Dev: "v0", Ip: "198.18.30.9", Lladdr: "02:00:00:00:30:09"})
	require.NoError(t, err)
	_, err = c.AddNeigh(ctx, &pb.NeighRequest{Host: "h1", Group: "g", Dev: "v0", Ip: "2001:db8:30::9", Lladdr: "02:00:00:00:30:0a"})
	require.NoError(t, err)
	out := testSh(t, c, "h1", "ip neigh show dev v0 nud permanent")
	assert.Contains(t, out, "198.18.30.9 lladdr 02:00:00:00:30:09 PERMANENT")
	assert.Contains(t, out, "2001:db8:30::9 lladdr 02:00:00:00:30:0a PERMANENT")

	_, err = c.AddNeigh(ctx, &pb.NeighRequest{Host: "h1", Group: "g", Dev: "v0", Ip: "198.18.30.9", Lladdr: "02:00:00:00:30:09"})
	testCode(t, err, codes.Aborted, "198.18.30.9")

	testSh(t, c, "h1", "ip neigh del 2001:db8:30::9 dev v0")
	testRestoreClean(t, c, &log, "g", 2, "2001:db8:30::9")
	assert.Empty(t, testSh(t, c, "h1", "ip neigh show dev v0 nud permanent"))

	// DelNeigh's undo adds the entry back with its hardware address.
	testSh(t, c, "h1", "ip neigh add 198.18.30.10 lladdr 02:00:00:00:30:10 dev v0 nud permanent")
	_, err = c.DelNeigh(ctx, &pb.NeighRequest{Host: "h1", Group: "g2", Dev: "v0", Ip: "198.18.30.10"})
	require.NoError(t, err)
	assert.Empty(t, testSh(t, c, "h1", "ip neigh show dev v0 nud permanent"))
	testRestoreClean(t, c, &log, "g2", 1)
	assert.Contains(t, testSh(t, c, "h1", "ip neigh show dev v0 nud permanent"), "198.18.30.10 lladdr 02:00:00:00:30:10 PERMANENT")
}

func TestNeighRuleBadArguments(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	for _, tc := range []struct {
		req  *pb.NeighRequest
		want string
	}{
		{&pb.NeighRequest{Host: "h1", Group: "g", Dev: "lo", Ip: "198.18.0.300", Lladdr: "02:00:00:00:00:01"}, `"198.18.0.300"`},
		{&pb.NeighRequest{Host: "h1", Group: "g", Dev: "lo", Ip: "198.18.0.3", Lladdr: "nope"}, `"nope"`},
		{&pb.NeighRequest{Host: "h1", Group: "g", Dev: "a/b", Ip: "198.18.0.3", Lladdr: "02:00:00:00:00:01"}, `"a/b"`},
		{&pb.NeighRequest{Host: "h1", Group: "g", Dev: "nodev", Ip: "198.18.0.3", Lladdr: "02:00:00:00:00:01"}, `"nodev"`},
	} {
		_, err := c.AddNeigh(ctx, tc.req)
		code := codes.InvalidArgument
		if tc.req.Dev == "nodev" {
			code = codes.Aborted
		}
		testCode(t, err, code, tc.want)
	}
	for _, tc := range []struct {
		req  *pb.RuleRequest
		want string
	}{
		{&pb.RuleRequest{Host: "h1", Group: "g", Src: "198.18.0.1/24", Table: 100}, `"198.18.0.1/24" has host bits`},
		{&pb.RuleRequest{Host: "h1", Group: "g", Src: "198.18.0.0/24"}, "table 0"},
		{&pb.RuleRequest{Host: "h1", Group: "g", Src: "198.18.0.0/24", Dst: "2001:db8::/64", Table: 100}, "2001:db8::/64 is not of the rule's address family"},
		{&pb.RuleRequest{Host: "h1", Group: "g", Dst: "bogus", Table: 100}, `"bogus"`},
		{&pb.RuleRequest{Host: "h1", Group: "g", Table: 100, Family: 5}, "family 5"},
		{&pb.RuleRequest{Host: "h1", Group: "g", Table: 100, Iif: "a b"}, `"a b"`},
	} {
		_, err := c.AddRule(ctx, tc.req)
		testCode(t, err, codes.InvalidArgument, tc.want)
	}
	assert.Zero(t, testRestoreCount(t, c, "g"), "nothing journaled")
}

func TestRulesRestored(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	before := testSh(t, c, "h1", "ip rule show; ip -6 rule show")
	_, err := c.AddRule(ctx, &pb.RuleRequest{Host: "h1", Group: "g", Src: "198.18.31.0/24", Table: 100, Priority: 1000})
	require.NoError(t, err)
	_, err = c.AddRule(ctx, &pb.RuleRequest{Host: "h1", Group: "g", Dst: "2001:db8:31::/64", Table: 101, Fwmark: 7, Iif: "lo"})
	require.NoError(t, err)
	_, err = c.AddRule(ctx, &pb.RuleRequest{Host: "h1", Group: "g", Table: 102, Oif: "lo", Priority: 1002})
	require.NoError(t, err)
	out := testSh(t, c, "h1", "ip rule show; ip -6 rule show")
	assert.Contains(t, out, "1000:\tfrom 198.18.31.0/24 lookup 100")
	assert.Contains(t, out, "to 2001:db8:31::/64 fwmark 0x7 iif lo lookup 101")
	assert.Contains(t, out, "1002:\tfrom all oif lo lookup 102")

	testSh(t, c, "h1", "ip rule del pref 1002")
	testRestoreClean(t, c, &log, "g", 3, "lookup 102")
	assert.Equal(t, before, testSh(t, c, "h1", "ip rule show; ip -6 rule show"))

	// DelRule's undo adds the rule back.
	testSh(t, c, "h1", "ip rule add from 198.18.32.0/24 lookup 103 pref 1003")
	_, err = c.DelRule(ctx, &pb.RuleRequest{Host: "h1", Group: "g2", Src: "198.18.32.0/24", Table: 103, Priority: 1003})
	require.NoError(t, err)
	assert.NotContains(t, testSh(t, c, "h1", "ip rule show"), "lookup 103")
	testRestoreClean(t, c, &log, "g2", 1)
	assert.Contains(t, testSh(t, c, "h1", "ip rule show"), "1003:\tfrom 198.18.32.0/24 lookup 103")
}

func TestMultipathRoute(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "base", Name: "v0", Cidr: "198.18.33.1/24"})
	require.NoError(t, err)
	mp := &pb.RouteRequest{Host: "h1", Group: "g", Dst: "198.18.34.0/24", Nexthops: []*pb.Nexthop{
		{Via: "198.18.33.2", Dev: "v0", Weight: 1}, {Via: "198.18.33.3", Dev: "v0", Weight: 3},
	}}
	_, err = c.AddRoute(ctx, mp)
	require.NoError(t, err)
	out := testSh(t, c, "h1", "ip route show 198.18.34.0/24")
	assert.Contains(t, out, "nexthop via 198.18.33.2 dev v0 weight 1")
	assert.Contains(t, out, "nexthop via 198.18.33.3 dev v0 weight 3")
	assert.Equal(t, int32(1), testRestoreCount(t, c, "g"))
	assert.Empty(t, testSh(t, c, "h1", "ip route show 198.18.34.0/24"))

	for _, tc := range []struct {
		nh   []*pb.Nexthop
		via  string
		want string
	}{
		{[]*pb.Nexthop{{Via: "198.18.33.2", Weight: 0}, {}}, "", "route 198.18.34.0/24 nexthop via 198.18.33.2 nexthop: nexthop 2 has neither"},
		{[]*pb.Nexthop{{Via: "198.18.33.2", Weight: 300}}, "", "nexthop 1 has weight 300"},
		{[]*pb.Nexthop{{Via: "2001:db8::1"}}, "", "nexthop 1: gateway 2001:db8::1 is not of the route's address family"},
		{[]*pb.Nexthop{{Via: "198.18.33.2"}}, "198.18.33.3", "route 198.18.34.0/24 via 198.18.33.3 nexthop via 198.18.33.2: a multipath route"},
		{[]*pb.Nexthop{{Via: "x"}}, "", `gateway "x"`},
	} {
		_, err := c.AddRoute(ctx, &pb.RouteRequest{Host: "h1", Group: "g", Dst: "198.18.34.0/24", Via: tc.via, Nexthops: tc.nh})
		testCode(t, err, codes.InvalidArgument, tc.want)
	}
}

func TestAddRoutesBatch(t *testing.T) {
	dir := t.TempDir()
	// The agent's own host is not used; the journal only checks that a
	// batch of namespace routes keeps off the disk.
	_, c := testServerOpts(t, Options{Lab: true, JournalPath: filepath.Join(dir, "journal")})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "base", Name: "v0", Cidr: "198.18.35.1/24"})
	require.NoError(t, err)
	req := &pb.RoutesRequest{Host: "h1", Group: "g"}
	for i := range 300 {
		r := &pb.RouteRequest{Dst: fmt.Sprintf("198.19.%d.%d/32", i/256, i%256), Via: "198.18.35.2"}
		if i%2 == 0 {
			r.Dev = "v0"
		}
		req.Routes = append(req.Routes, r)
	}
	rep, err := c.AddRoutes(ctx, req)
	require.NoError(t, err)
	assert.NotZero(t, rep.Seq)
	out := testSh(t, c, "h1", "ip route show | grep -c '^198.19.'")
	assert.Equal(t, "300\n", out)
	st, err := os.Stat(filepath.Join(dir, "journal"))
	require.NoError(t, err)
	assert.Equal(t, int64(journalHeaderLen), st.Size(), "namespace routes do not go to disk")

	// A bad route stops the batch; the ones before it stay, journaled.
	bad := &pb.RoutesRequest{Host: "h1", Group: "g", Routes: []*pb.RouteRequest{
		{Dst: "198.18.36.0/24", Via: "198.18.35.2"}, {Dst: "198.18.37.1/24", Via: "198.18.35.2"},
	}}
	_, err = c.AddRoutes(ctx, bad)
	testCode(t, err, codes.InvalidArgument, "route 2 of 2", `"198.18.37.1/24" has host bits`)
	_, err = c.AddRoutes(ctx, &pb.RoutesRequest{Host: "h1", Group: "g"})
	testCode(t, err, codes.InvalidArgument, "no routes")
	_, err = c.AddRoutes(ctx, &pb.RoutesRequest{Host: "h1", Group: "g", Routes: []*pb.RouteRequest{{Dst: "198.18.38.0/24", Dev: "nodev"}}})
	testCode(t, err, codes.Aborted, `"nodev"`)

	assert.Equal(t, int32(301), testRestoreCount(t, c, "g"))
	assert.Equal(t, "0\n", testSh(t, c, "h1", "ip route show | grep -c '^198.1[89].3[678]\\|^198.19.' || true"))
}

func TestAddRoutesBatchJournalOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	srv, err := NewServer(Options{JournalPath: path})
	require.NoError(t, err)
	defer srv.Shutdown()
	us := []undo{
		{Group: "g", Op: opDelRoute, Route: route{Dst: "198.18.39.0/24", Dev: "lo"}},
		{Group: "g", Op: opDelRoute, Route: route{Dst: "198.18.40.0/24", Nexthops: []nexthop{{Via: "198.18.39.1", Weight: 2}}}},
		{Group: "g", Op: opDelRoute, Route: route{Dst: "198.18.41.0/24", Dev: "vx0", Encap: &encap{ID: 7, Dst: "198.18.39.2", TTL: 3, Key: true}}},
	}
	first, err := srv.journal.addBatch(us)
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	d, err := decodeJournal(path, b, false)
	require.NoError(t, err)
	left := pendingEntries(d.records)
	require.Len(t, left, 3)
	assert.Equal(t, first, left[0].Seq)
	assert.Equal(t, us[1].Route, left[1].Route, "a multipath route survives the journal file")
	assert.Equal(t, us[2].Route, left[2].Route, "an encap route survives the journal file")
	for _, u := range srv.journal.take("g", 0, false) {
		require.NoError(t, srv.journal.done(u.Seq))
	}
}

func TestSetLinkNetnsRestored(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	n, err := c.CreateNetns(ctx, &pb.CreateNetnsRequest{Host: "h1", Name: "inner", Group: "base"})
	require.NoError(t, err)

	_, err = c.SetLinkNetns(ctx, &pb.SetLinkNetnsRequest{Host: "h1", Group: "g", Name: "v1", Target: n.Host})
	require.NoError(t, err)
	assert.Equal(t, []string{"lo", "v0"}, testLinkNames(t, c, "h1"))
	assert.Equal(t, []string{"lo", "v1"}, testLinkNames(t, c, n.Host))
	assert.Equal(t, int32(1), testRestoreCount(t, c, "g"))
	assert.Equal(t, []string{"lo", "v0", "v1"}, testLinkNames(t, c, "h1"))
	assert.Equal(t, "up", testLinkInfo(t, c, "h1", "v1").State, "up again, as it was")

	// The target gone: the veth went with it.
	_, err = c.SetLinkNetns(ctx, &pb.SetLinkNetnsRequest{Host: "h1", Group: "g", Name: "v1", Target: n.Host})
	require.NoError(t, err)
	_, err = c.DestroyHost(ctx, &pb.HostRef{Host: n.Host})
	require.NoError(t, err)
	testRestoreClean(t, c, &log, "g", 1, "move link v1")

	_, err = c.SetLinkNetns(ctx, &pb.SetLinkNetnsRequest{Host: "h1", Group: "g", Name: "v0", Target: "h1"})
	testCode(t, err, codes.InvalidArgument, `"h1" is the host it is on`)
	_, err = c.SetLinkNetns(ctx, &pb.SetLinkNetnsRequest{Host: "h1", Group: "g", Name: "v0", Target: "nohost"})
	testCode(t, err, codes.NotFound, `"nohost"`)
	_, err = c.SetLinkNetns(ctx, &pb.SetLinkNetnsRequest{Host: "h1", Group: "g", Name: "v/0", Target: "nohost"})
	testCode(t, err, codes.InvalidArgument, `"v/0"`)
}

func TestRenameLinkRestored(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "base", Name: "v0", Cidr: "198.18.41.1/24"})
	require.NoError(t, err)
	_, err = c.RenameLink(ctx, &pb.RenameLinkRequest{Host: "h1", Group: "g", Name: "v0", NewName: "renamed0"})
	require.NoError(t, err)
	info := testLinkInfo(t, c, "h1", "renamed0")
	assert.Equal(t, "up", info.State, "an up device is up again after its rename")
	assert.Contains(t, info.Ips, "198.18.41.1/24")

	_, err = c.RenameLink(ctx, &pb.RenameLinkRequest{Host: "h1", Group: "g", Name: "renamed0", NewName: "v1"})
	testCode(t, err, codes.InvalidArgument, `"v1"`)
	assert.Equal(t, "up", testLinkInfo(t, c, "h1", "renamed0").State, "a failed rename leaves the device up")
	_, err = c.RenameLink(ctx, &pb.RenameLinkRequest{Host: "h1", Group: "g", Name: "renamed0", NewName: strings.Repeat("x", 16)})
	testCode(t, err, codes.InvalidArgument, "longer than 15 bytes")

	testRestoreCount(t, c, "g")
	assert.Equal(t, []string{"lo", "v0", "v1"}, testLinkNames(t, c, "h1"))
	assert.Equal(t, "up", testLinkInfo(t, c, "h1", "v0").State)
}

func TestWaitLink(t *testing.T) {
	_, c := testServer(t)
	ctx := testCtx(t)
	testHost(t, c, "h1")
	testVeth(t, c, "h1", "base")
	wait := func(want any, timeout time.Duration) error {
		req := &pb.WaitLinkRequest{Host: "h1", Name: "v0", Timeout: durationpb.New(timeout)}
		switch w := want.(type) {
		case string:
			req.Want = &pb.WaitLinkRequest_OperState{OperState: w}
		case bool:
			req.Want = &pb.WaitLinkRequest_Carrier{Carrier: w}
		}
		_, err := c.WaitLink(ctx, req)
		return err
	}
	require.NoError(t, wait(true, 5*time.Second))
	require.NoError(t, wait("up", 5*time.Second))

	errc := make(chan error, 1)
	go func() { errc <- wait(false, 5*time.Second) }()
	time.Sleep(50 * time.Millisecond) // most likely subscribed by now: the wait sees the change as a notification
	_, err := c.SetLink(ctx, &pb.SetLinkRequest{Host: "h1", Group: "g", Name: "v1", Up: proto.Bool(false)})
	require.NoError(t, err)
	require.NoError(t, <-errc, "carrier off once the peer is down")
	require.NoError(t, wait("down", 5*time.Second))

	start := time.Now()
	testCode(t, wait(true, 200*time.Millisecond), codes.DeadlineExceeded, `"v0"`, "carrier on", "carrier off")
	assert.Less(t, time.Since(start), 3*time.Second)

	go func() { errc <- wait("up", 5*time.Second) }()
	time.Sleep(50 * time.Millisecond)
	testRestoreCount(t, c, "g")
	require.NoError(t, <-errc, "up once the peer is up again")

	testCode(t, wait("sideways", time.Second), codes.InvalidArgument, `"sideways"`)
	testCode(t, wait(nil, time.Second), codes.InvalidArgument, "give an operational state or a carrier")
	_, err = c.WaitLink(ctx, &pb.WaitLinkRequest{Host: "h1", Name: "nodev", Want: &pb.WaitLinkRequest_Carrier{Carrier: true}})
	testCode(t, err, codes.NotFound, `"nodev"`)
	_, err = c.WaitLink(ctx, &pb.WaitLinkRequest{Host: "h1", Name: "v0", Want: &pb.WaitLinkRequest_Carrier{Carrier: true}, Timeout: durationpb.New(-time.Second)})
	testCode(t, err, codes.InvalidArgument, "timeout")

	// A device deleted while waited on.
	testSh(t, c, "h1", "ip link set v1 down")
	go func() { errc <- wait(true, 5*time.Second) }()
	time.Sleep(50 * time.Millisecond)
	testSh(t, c, "h1", "ip link del v0")
	testCode(t, <-errc, codes.Aborted, "went away")
}

// TestDelAddrRestoredAsItWas removes lo's 127.0.0.1/8, which has scope
// host and no broadcast, and checks that the restore puts it back with
// both, not as a plain address of global scope.
func TestDelAddrRestoredAsItWas(t *testing.T) {
	_, c := testServer(t)
	testHost(t, c, "h1")
	ctx := testCtx(t)
	before := testSh(t, c, "h1", "ip -o -4 addr show dev lo")
	require.Contains(t, before, "scope host")
	_, err := c.DelAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: "lo", Cidr: "127.0.0.1/8"})
	require.NoError(t, err)
	require.NotContains(t, testSh(t, c, "h1", "ip -o -4 addr show dev lo"), "127.0.0.1")
	r, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	require.Empty(t, r.Errors)
	assert.Equal(t, before, testSh(t, c, "h1", "ip -o -4 addr show dev lo"))
}
