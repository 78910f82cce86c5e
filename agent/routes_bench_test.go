package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// benchRoutesN is how many routes BenchmarkRoutes10k adds and removes.
const benchRoutesN = 10000

// benchRoutesGateway is the gateway of every route, on the veth of the
// host the routes go in (198.18.200.1/24).
const benchRoutesGateway = "198.18.200.2"

// benchRoutesDst is the destination of route i: a /32 in 198.19.0.0/16.
func benchRoutesDst(i int) string { return fmt.Sprintf("198.19.%d.%d/32", i/256, i%256) }

// benchRoutesBatch is how many routes one AddRoutes call of
// BenchmarkRoutes10k carries.
const benchRoutesBatch = 1000

// benchRoutesBatches returns the AddRoutes requests that add the
// benchmark's routes on host.
func benchRoutesBatches(host string) []*pb.RoutesRequest {
	var reqs []*pb.RoutesRequest
	for start := 0; start < benchRoutesN; start += benchRoutesBatch {
		req := &pb.RoutesRequest{Host: host, Group: "routes"}
		for i := start; i < min(start+benchRoutesBatch, benchRoutesN); i++ {
			req.Routes = append(req.Routes, &pb.RouteRequest{Dst: benchRoutesDst(i), Via: benchRoutesGateway})
		}
		reqs = append(reqs, req)
	}
	return reqs
}

// benchRoutesRounds is how many times each side of BenchmarkRoutes10k
// runs per iteration, the sides interleaved (ABCD, then DCBA).
const benchRoutesRounds = 6

// BenchmarkRoutes10k adds 10,000 routes on a host and removes them again,
// four ways, interleaved round by round (raw, rpc, journal, direct, then
// the other way round):
//
//   - netlink_raw, the floor: the agent's own hand-encoded route socket
//     (routeSocket: the same RTM_NEWROUTE and RTM_DELROUTE messages the
//     agent sends, one request and its ack at a time) called directly in
//     a throwaway namespace, no agent. It times the adds and the deletes.
//   - agent_rpc: an in-process lab agent over gRPC on a unix socket, a
//     namespace host, journal in memory: AddRoutes RPCs of 1,000 routes
//     each, then one Restore RPC of their group. It times those RPCs.
//   - agent_journal: the same RPCs to an agent with its journal on disk,
//     on the agent's own host, as a pool host or VM guest runs them: each
//     AddRoutes writes its undo entries in one write and one fdatasync,
//     the Restore group-commits the done records. The own host is swapped
//     for a throwaway namespace, so the benchmark leaves this machine's
//     routes alone (its work goes through the namespace's thread, as a
//     lab host's does: a little more than on a real own host).
//   - agent_direct: agent_rpc's server methods called without gRPC.
//
// It prints, over the rounds, the median ratio with its spread:
//
//	RATIO routes10k/netlink_raw <x> (min, max, n)          agent_rpc / netlink_raw
//	RATIO routes10k_journal/netlink_raw <x> (min, max, n)  agent_journal / netlink_raw
//
// and informational lines for the journal side's adds and restore apart.
func BenchmarkRoutes10k(b *testing.B) {
	raw := benchRoutesNamespace(b)
	rs, err := raw.openRouteSocket()
	if err != nil {
		b.Fatalf("route socket: %v", err)
	}
	b.Cleanup(rs.close)
	// The routes as netlinkRouteWith makes the agent's from "Via" only.
	gw := net.ParseIP(benchRoutesGateway).To4()
	routes := make([]*netlink.Route, benchRoutesN)
	for i := range routes {
		_, dst, _ := net.ParseCIDR(benchRoutesDst(i))
		routes[i] = &netlink.Route{Dst: dst, Gw: gw}
	}
	rawOnce := func() (add, del time.Duration) {
		start := time.Now()
		for _, r := range routes {
			var err error
			if !rs.add(r, &err) {
				b.Fatalf("route socket does not encode %s", r.Dst)
			}
			if err != nil {
				b.Fatalf("add route %s: %v", r.Dst, err)
			}
		}
		add = time.Since(start)
		start = time.Now()
		for _, r := range routes {
			var err error
			if !rs.del(r, &err) || err != nil {
				b.Fatalf("remove route %s: %v", r.Dst, err)
			}
		}
		return add, time.Since(start)
	}

	ctx := context.Background()
	agentOnce := func(add func(*pb.RoutesRequest) error, restore func() (*pb.RestoreReply, error), reqs []*pb.RoutesRequest) (time.Duration, time.Duration) {
		start := time.Now()
		for _, r := range reqs {
			if err := add(r); err != nil {
				b.Fatalf("AddRoutes from %s: %v", r.Routes[0].Dst, err)
			}
		}
		addT := time.Since(start)
		start = time.Now()
		r, err := restore()
		delT := time.Since(start)
		if err != nil {
			b.Fatalf("restore the routes: %v", err)
		}
		if r.Undone != benchRoutesN || len(r.Errors) > 0 {
			b.Fatalf("restore the routes: %d undone (want %d), errors %q", r.Undone, benchRoutesN, r.Errors)
		}
		return addT, delT
	}
	srv, client := benchRoutesClient(b)
	reqs := benchRoutesBatches("bench")
	rpcOnce := func() (time.Duration, time.Duration) {
		return agentOnce(func(r *pb.RoutesRequest) error { _, err := client.AddRoutes(ctx, r); return err },
			func() (*pb.RestoreReply, error) { return client.Restore(ctx, &pb.RestoreRequest{Group: "routes"}) }, reqs)
	}
	directOnce := func() (time.Duration, time.Duration) {
		return agentOnce(func(r *pb.RoutesRequest) error { _, err := srv.AddRoutes(ctx, r); return err },
			func() (*pb.RestoreReply, error) { return srv.Restore(ctx, &pb.RestoreRequest{Group: "routes"}) }, reqs)
	}
	jclient, journalPath := benchRoutesJournalClient(b)
	jreqs := benchRoutesBatches("")
	journalOnce := func() (time.Duration, time.Duration) {
		add, del := agentOnce(func(r *pb.RoutesRequest) error { _, err := jclient.AddRoutes(ctx, r); return err },
			func() (*pb.RestoreReply, error) { return jclient.Restore(ctx, &pb.RestoreRequest{Group: "routes"}) }, jreqs)
		if fi, err := os.Stat(journalPath); err != nil || fi.Size() != int64(journalHeaderLen) {
			b.Fatalf("journal %s after the restore: %v, want its bare header", journalPath, fi)
		}
		return add, del
	}

	sides := []struct {
		name string
		once func() (time.Duration, time.Duration)
	}{{"netlink_raw", rawOnce}, {"agent_rpc", rpcOnce}, {"agent_journal", journalOnce}, {"agent_direct", directOnce}}
	// One untimed round of each: sockets, threads and the journal file
	// warm up.
	for _, s := range sides {
		s.once()
	}
	adds := make([][]time.Duration, len(sides))
	dels := make([][]time.Duration, len(sides))
	round := 0
	for b.Loop() {
		for range benchRoutesRounds {
			for k := range sides {
				i := k
				if round%2 == 1 {
					i = len(sides) - 1 - k
				}
				a, d := sides[i].once()
				adds[i] = append(adds[i], a)
				dels[i] = append(dels[i], d)
			}
			round++
		}
	}
	total := make([][]time.Duration, len(sides))
	for i, s := range sides {
		for r := range adds[i] {
			total[i] = append(total[i], adds[i][r]+dels[i][r])
		}
		a, _, _ := benchratio.Durations(adds[i])
		d, _, _ := benchratio.Durations(dels[i])
		b.ReportMetric(float64(a.Nanoseconds())/benchRoutesN, s.name+"-add-ns/route")
		b.ReportMetric(float64(d.Nanoseconds())/benchRoutesN, s.name+"-del-ns/route")
	}
	benchratio.Print("routes10k/netlink_raw", benchratio.Ratios(total[1], total[0]))
	benchratio.Print("routes10k_journal/netlink_raw", benchratio.Ratios(total[2], total[0]))
	fmt.Printf("routes10k_journal adds / raw adds: %s\n", benchratio.Spread(benchratio.Ratios(adds[2], adds[0])))
	fmt.Printf("routes10k_journal restore / raw deletes: %s\n", benchratio.Spread(benchratio.Ratios(dels[2], dels[0])))
	fmt.Printf("routes10k without gRPC (the floor of the batch RPC) / netlink_raw: %s\n", benchratio.Spread(benchratio.Ratios(total[3], total[0])))
}

// benchRoutesNamespace makes a throwaway namespace with an up veth pair,
// v0 addressed 198.18.200.1/24, as the agent's host gets in
// benchRoutesClient; it is removed with b.
func benchRoutesNamespace(b *testing.B) *host {
	b.Helper()
	h, err := newNamespaceHost("bench-netlink", false)
	if err != nil {
		b.Fatalf("namespace: %v", err)
	}
	b.Cleanup(h.close)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "v0"}, PeerName: "v1"}
	if err := h.nl.LinkAdd(veth); err != nil {
		b.Fatalf("add veth: %v", err)
	}
	for _, name := range []string{"v0", "v1"} {
		l, err := h.nl.LinkByName(name)
		if err == nil {
			err = h.nl.LinkSetUp(l)
		}
		if err != nil {
			b.Fatalf("set %s up: %v", name, err)
		}
	}
	l, err := h.nl.LinkByName("v0")
	if err != nil {
		b.Fatalf("find v0: %v", err)
	}
	addr, _ := netlink.ParseAddr("198.18.200.1/24")
	if err := h.nl.AddrAdd(l, addr); err != nil {
		b.Fatalf("address v0: %v", err)
	}
	return h
}

// benchRoutesClient serves an in-process lab agent on a unix socket,
// makes namespace host "bench" with an up veth pair, v0 addressed
// 198.18.200.1/24, and returns a client of the agent; all end with b.
func benchRoutesClient(b *testing.B) (*Server, pb.AgentClient) {
	b.Helper()
	srv, err := NewServer(Options{Lab: true})
	if err != nil {
		b.Fatalf("new agent: %v", err)
	}
	sock := filepath.Join(b.TempDir(), "agent.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatalf("listen on %s: %v", sock, err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go g.Serve(lis)
	b.Cleanup(func() {
		g.Stop()
		srv.Shutdown()
	})
	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatalf("dial %s: %v", sock, err)
	}
	b.Cleanup(func() { conn.Close() })
	c := pb.NewAgentClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const group = "setup"
	if _, err := c.CreateHost(ctx, &pb.CreateHostRequest{Name: "bench", Group: group}); err != nil {
		b.Fatalf("create host: %v", err)
	}
	veth := &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "v0", PeerName: "v1"}}
	if _, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "bench", Group: group, Spec: veth}); err != nil {
		b.Fatalf("create veth: %v", err)
	}
	up := true
	for _, name := range []string{"v0", "v1"} {
		if _, err := c.SetLink(ctx, &pb.SetLinkRequest{Host: "bench", Group: group, Name: name, Up: &up}); err != nil {
			b.Fatalf("set %s up: %v", name, err)
		}
	}
	if _, err := c.AddAddr(ctx, &pb.AddrRequest{Host: "bench", Group: group, Name: "v0", Cidr: "198.18.200.1/24"}); err != nil {
		b.Fatalf("address v0: %v", err)
	}
	return srv, c
}

// benchRoutesJournalClient serves an in-process agent with its journal on
// disk (in b's temporary directory, on this machine's disk) on a unix
// socket, and returns a client of it and the journal's path. The agent's
// own host is a throwaway namespace with an up veth pair, v0 addressed
// 198.18.200.1/24, swapped in for this machine's: the routes it adds on
// its own host go to disk as a pool host's or VM guest's do, and to that
// namespace. All ends with b.
func benchRoutesJournalClient(b *testing.B) (pb.AgentClient, string) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "journal", "agent.journal")
	srv, err := NewServer(Options{JournalPath: path})
	if err != nil {
		b.Fatalf("new agent: %v", err)
	}
	own := benchRoutesNamespace(b)
	srv.mu.Lock()
	root := srv.hosts[""]
	srv.hosts[""] = own
	srv.mu.Unlock()
	sock := filepath.Join(b.TempDir(), "agent.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatalf("listen on %s: %v", sock, err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go g.Serve(lis)
	b.Cleanup(func() {
		g.Stop()
		srv.Shutdown()
		root.close()
	})
	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatalf("dial %s: %v", sock, err)
	}
	b.Cleanup(func() { conn.Close() })
	return pb.NewAgentClient(conn), path
}

// benchRoutePerCallN is how many routes BenchmarkRoutePerCall adds and
// removes per round, one call each: TestRouteScale's 2,000.
const benchRoutePerCallN = 2000

// BenchmarkRoutePerCall adds 2,000 routes one call at a time and removes
// them one at a time, newest first, as a recipe calling Host.AddRoute per
// route pays it (each call returns once its route exists; each route's
// cleanup is a Restore since its sequence number, run in reverse order).
// The sides, interleaved round by round (ABAB...):
//
//   - netlink_raw, the floor: the agent's hand-encoded route socket in a
//     throwaway namespace, one RTM_NEWROUTE and its ack per route, then
//     one RTM_DELROUTE and its ack per route, newest first; no agent.
//   - agent_rpc: an in-process lab agent over gRPC on a unix socket, a
//     namespace host, journal in memory: one AddRoute RPC per route, then
//     one Restore RPC since each route's sequence number, newest first.
//
// It prints the median over rounds of the per-round ratio, with its
// spread, and each side's time per route:
//
//	RATIO route_percall/netlink_raw <x> (min, max, n)  agent_rpc / netlink_raw
//
// The ratio is what a round trip per call costs (gRPC on both ends, the
// journal entry and its undo) against the kernel's work; Host.AddRoutes,
// a thousand routes per call, is routes10k's side.
func BenchmarkRoutePerCall(b *testing.B) {
	raw := benchRoutesNamespace(b)
	rs, err := raw.openRouteSocket()
	if err != nil {
		b.Fatalf("route socket: %v", err)
	}
	b.Cleanup(rs.close)
	gw := net.ParseIP(benchRoutesGateway).To4()
	routes := make([]*netlink.Route, benchRoutePerCallN)
	for i := range routes {
		_, dst, _ := net.ParseCIDR(benchRoutesDst(i))
		routes[i] = &netlink.Route{Dst: dst, Gw: gw}
	}
	rawOnce := func() time.Duration {
		start := time.Now()
		for _, r := range routes {
			var err error
			if !rs.add(r, &err) || err != nil {
				b.Fatalf("add route %s: %v", r.Dst, err)
			}
		}
		for i := len(routes) - 1; i >= 0; i-- {
			var err error
			if !rs.del(routes[i], &err) || err != nil {
				b.Fatalf("remove route %s: %v", routes[i].Dst, err)
			}
		}
		return time.Since(start)
	}
	_, client := benchRoutesClient(b)
	ctx := context.Background()
	seqs := make([]uint64, benchRoutePerCallN)
	rpcOnce := func() time.Duration {
		start := time.Now()
		for i := range seqs {
			r, err := client.AddRoute(ctx, &pb.RouteRequest{Host: "bench", Group: "routes", Dst: benchRoutesDst(i), Via: benchRoutesGateway})
			if err != nil {
				b.Fatalf("AddRoute %s: %v", benchRoutesDst(i), err)
			}
			seqs[i] = r.Seq
		}
		for i := len(seqs) - 1; i >= 0; i-- {
			r, err := client.Restore(ctx, &pb.RestoreRequest{Group: "routes", Since: seqs[i]})
			if err != nil || r.Undone != 1 || len(r.Errors) > 0 {
				b.Fatalf("Restore since %d: %v, %v", seqs[i], err, r)
			}
		}
		return time.Since(start)
	}
	// One untimed round of each: sockets and threads warm up.
	rawOnce()
	rpcOnce()
	var raws, rpcs []time.Duration
	for b.Loop() {
		for round := range benchRoutesRounds {
			if round%2 == 0 {
				raws, rpcs = append(raws, rawOnce()), append(rpcs, rpcOnce())
			} else {
				rpcs, raws = append(rpcs, rpcOnce()), append(raws, rawOnce())
			}
		}
	}
	r, _, _ := benchratio.Durations(raws)
	a, _, _ := benchratio.Durations(rpcs)
	b.ReportMetric(float64(r.Nanoseconds())/benchRoutePerCallN, "netlink_raw-ns/route")
	b.ReportMetric(float64(a.Nanoseconds())/benchRoutePerCallN, "agent_rpc-ns/route")
	benchratio.Print("route_percall/netlink_raw", benchratio.Ratios(rpcs, raws))
}
