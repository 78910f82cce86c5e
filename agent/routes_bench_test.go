package agent

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
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
// benchmark's routes.
func benchRoutesBatches() []*pb.RoutesRequest {
	var reqs []*pb.RoutesRequest
	for start := 0; start < benchRoutesN; start += benchRoutesBatch {
		req := &pb.RoutesRequest{Host: "bench", Group: "routes"}
		for i := start; i < min(start+benchRoutesBatch, benchRoutesN); i++ {
			req.Routes = append(req.Routes, &pb.RouteRequest{Dst: benchRoutesDst(i), Via: benchRoutesGateway})
		}
		reqs = append(reqs, req)
	}
	return reqs
}

// BenchmarkRoutes10k adds 10,000 routes on a namespace host of an
// in-process lab agent with AddRoutes RPCs of 1,000 routes each and
// removes them with a Restore of their group, and does the same with raw netlink calls
// (RouteAdd, RouteDel) in a throwaway namespace; it prints the ratio of the
// two as
//
//	RATIO routes10k/netlink <x>
func BenchmarkRoutes10k(b *testing.B) {
	var rpc, raw, direct time.Duration

	b.Run("netlink", func(b *testing.B) {
		h := benchRoutesNamespace(b)
		gw := net.ParseIP(benchRoutesGateway)
		routes := make([]*netlink.Route, benchRoutesN)
		for i := range routes {
			_, dst, _ := net.ParseCIDR(benchRoutesDst(i))
			routes[i] = &netlink.Route{Dst: dst, Gw: gw}
		}
		var add, del time.Duration
		var ru0 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		for b.Loop() {
			start := time.Now()
			for _, r := range routes {
				if err := h.nl.RouteAdd(r); err != nil {
					b.Fatalf("add route %s: %v", r.Dst, err)
				}
			}
			add += time.Since(start)
			start = time.Now()
			for _, r := range routes {
				if err := h.nl.RouteDel(r); err != nil {
					b.Fatalf("remove route %s: %v", r.Dst, err)
				}
			}
			del += time.Since(start)
		}
		raw = benchRoutesPerOp(b)
		benchRoutesReport(b, add, del)
		rusageReport(b, &ru0)
	})

	b.Run("agent_rpc", func(b *testing.B) {
		_, client := benchRoutesClient(b)
		ctx := context.Background()
		reqs := benchRoutesBatches()
		var add, del time.Duration
		var ru0 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		for b.Loop() {
			start := time.Now()
			for _, r := range reqs {
				if _, err := client.AddRoutes(ctx, r); err != nil {
					b.Fatalf("AddRoutes from %s: %v", r.Routes[0].Dst, err)
				}
			}
			add += time.Since(start)
			start = time.Now()
			r, err := client.Restore(ctx, &pb.RestoreRequest{Group: "routes"})
			del += time.Since(start)
			if err != nil {
				b.Fatalf("restore the routes: %v", err)
			}
			if r.Undone != benchRoutesN || len(r.Errors) > 0 {
				b.Fatalf("restore the routes: %d undone (want %d), errors %q", r.Undone, benchRoutesN, r.Errors)
			}
		}
		rpc = benchRoutesPerOp(b)
		benchRoutesReport(b, add, del)
		rusageReport(b, &ru0)
	})

	// The same server calls without gRPC: the floor of the batch RPC.
	b.Run("agent_direct", func(b *testing.B) {
		srv, _ := benchRoutesClient(b)
		ctx := context.Background()
		reqs := benchRoutesBatches()
		var add, del time.Duration
		var ru0 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		for b.Loop() {
			start := time.Now()
			for _, r := range reqs {
				if _, err := srv.AddRoutes(ctx, r); err != nil {
					b.Fatalf("AddRoutes from %s: %v", r.Routes[0].Dst, err)
				}
			}
			add += time.Since(start)
			start = time.Now()
			if r, err := srv.Restore(ctx, &pb.RestoreRequest{Group: "routes"}); err != nil || len(r.Errors) > 0 {
				b.Fatalf("restore the routes: %v %q", err, r.GetErrors())
			}
			del += time.Since(start)
		}
		direct = benchRoutesPerOp(b)
		benchRoutesReport(b, add, del)
		rusageReport(b, &ru0)
	})

	if raw > 0 && rpc > 0 {
		fmt.Printf("RATIO routes10k/netlink %.2f\n", float64(rpc)/float64(raw))
	}
	if raw > 0 && direct > 0 {
		fmt.Printf("routes10k without gRPC (the floor of the batch RPC): %.2f x netlink\n", float64(direct)/float64(raw))
	}
}

// benchRoutesReport reports the time per route of the adds and of the
// removals of the b.Loop just ended.
func benchRoutesReport(b *testing.B, add, del time.Duration) {
	if b.N == 0 {
		return
	}
	per := float64(b.N * benchRoutesN)
	b.ReportMetric(float64(add.Nanoseconds())/per, "add-ns/route")
	b.ReportMetric(float64(del.Nanoseconds())/per, "del-ns/route")
}

// rusageReport reports the process's user and system CPU time per
// iteration of the b.Loop just ended, since r0: the kernel's share is most
// of a route's cost, and what a wakeup of an idle thread adds shows there.
func rusageReport(b *testing.B, r0 *syscall.Rusage) {
	if b.N == 0 {
		return
	}
	var r1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
		return
	}
	ms := func(a, b syscall.Timeval) float64 { return float64(b.Nano()-a.Nano()) / 1e6 }
	b.ReportMetric(ms(r0.Utime, r1.Utime)/float64(b.N), "user-ms/op")
	b.ReportMetric(ms(r0.Stime, r1.Stime)/float64(b.N), "sys-ms/op")
}

// benchRoutesPerOp is the time per iteration of the b.Loop just ended.
func benchRoutesPerOp(b *testing.B) time.Duration {
	if b.N == 0 {
		return 0
	}
	return b.Elapsed() / time.Duration(b.N)
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
