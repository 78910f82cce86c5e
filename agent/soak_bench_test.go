package agent_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/internal/filetree"
	"github.com/lnst-go/lnst/internal/peercred"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
)

// Work of one soak round: each is one operation; the round repeats them
// interleaved.
const (
	soakJobs    = 100 // StartJob, StreamJob and WaitJob of /bin/echo; Restore of their group every 10
	soakCycles  = 20  // a namespace host with a veth, then Restore
	soakPuts    = 40  // PutFile of a small file on the agent's own host, then Restore
	soakLeases  = 40  // Heartbeat of a new session, TempDir in its group, Restore, Release
	soakRoundOp = soakJobs + soakCycles + soakPuts + soakLeases
	// soakWarm rounds run before the first reading, soakRounds after it.
	soakWarm   = 3
	soakRounds = 16
)

// BenchmarkSoak drives a lab agent in a process of its own (this test
// binary re-executed, as the lab runs it; with its journal on disk, so
// that the puts and temporary directories on its own host go through the
// journal file) through rounds of soakRoundOp operations: jobs (StartJob,
// StreamJob, WaitJob), namespace host cycles, PutFile, and leases. After
// each round it reads the agent's resident memory (VmRSS of
// /proc/<pid>/status) as the agent runs: nothing forces a GC or returns
// memory to the system, in either process. It fits a line to the readings
// against the operations done (least squares) and prints its slope, the
// memory the agent keeps per 1,000 operations, with its 95% confidence
// interval, and
//
//	RATIO rss_end/rss_start <x> (min, max, n)
//	RATIO threads_end/threads_start <x> (min, max, n)
//
// rss_end/rss_start is the fitted line's value after the last round over
// its value at the first reading (so one round's GC phase does not decide
// it); min and max are those of each reading over that first value. The agent's
// threads are read the same way. Both should stay at or below 1.10: an
// agent serves many recipes in its life and must not keep what each
// leaves behind. The warm-up rounds bring the Go runtime's own structures
// (GC metadata, span and stack caches) to their working size first.
func BenchmarkSoak(b *testing.B) {
	if unix.Geteuid() != 0 {
		b.Skip("namespace hosts need root")
	}
	pid, client := soakAgent(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := b.TempDir()
	src := filepath.Join(dir, "put-src")
	if err := os.WriteFile(src, []byte(strings.Repeat("soak put\n", 512)), 0o644); err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(dir, "puts")
	if err := os.Mkdir(dst, 0o755); err != nil {
		b.Fatal(err)
	}
	n := 0
	round := func() {
		for i := range soakRoundOp {
			n++
			switch {
			case i < soakJobs:
				soakStreamJob(b, ctx, client, i%10 == 9)
			case i < soakJobs+soakCycles:
				soakCycle(b, ctx, client, n)
			case i < soakJobs+soakCycles+soakPuts:
				soakPut(b, ctx, client, src, dst)
			default:
				soakLease(b, ctx, client, n)
			}
		}
	}
	for range soakWarm {
		round()
	}
	var ops, rss, threads []float64
	read := func() {
		r, t := soakStatus(b, pid)
		ops, rss, threads = append(ops, float64(n)), append(rss, float64(r)), append(threads, float64(t))
	}
	read()
	b.ResetTimer()
	for range soakRounds {
		round()
		read()
	}
	b.StopTimer()

	slope, lo, hi := soakFit(ops, rss)
	perK := func(x float64) float64 { return x * 1000 / 1024 } // KiB per 1,000 operations
	b.ReportMetric(perK(slope), "rss_KiB/1000ops")
	b.ReportMetric(rss[len(rss)-1]/1024, "rss_end_KiB")
	fmt.Printf("agent RSS growth: %.1f KiB per 1,000 operations (95%% CI %.1f..%.1f), %d operations, RSS %.0f KiB -> %.0f KiB\n",
		perK(slope), perK(lo), perK(hi), n, rss[0]/1024, rss[len(rss)-1]/1024)
	soakRatio("rss_end/rss_start", ops, rss)
	soakRatio("threads_end/threads_start", ops, threads)
}

// soakRatio prints the RATIO line of readings ys taken after xs
// operations: the fitted line's last value over its first, with the
// spread of each reading over the line's first value.
func soakRatio(name string, xs, ys []float64) {
	slope, _, _ := soakFit(xs, ys)
	mx, my := benchratio.Mean(xs), benchratio.Mean(ys)
	at := func(x float64) float64 { return my + slope*(x-mx) }
	var rs []float64
	for _, y := range ys {
		rs = append(rs, y/at(xs[0]))
	}
	benchratio.PrintOf(name, at(xs[len(xs)-1])/at(xs[0]), rs)
}

// soakFit fits y = a + slope*x by least squares and returns the slope
// with its 95% confidence interval.
func soakFit(xs, ys []float64) (slope, lo, hi float64) {
	mx, my := benchratio.Mean(xs), benchratio.Mean(ys)
	var sxx, sxy float64
	for i := range xs {
		sxx += (xs[i] - mx) * (xs[i] - mx)
		sxy += (xs[i] - mx) * (ys[i] - my)
	}
	if sxx == 0 {
		return 0, 0, 0
	}
	slope = sxy / sxx
	if len(xs) < 3 {
		return slope, slope, slope
	}
	var sse float64
	for i := range xs {
		r := ys[i] - (my + slope*(xs[i]-mx))
		sse += r * r
	}
	se := math.Sqrt(sse / float64(len(xs)-2) / sxx)
	h := benchratio.TQuantile975(len(xs)-2) * se
	return slope, slope - h, slope + h
}

// soakStreamJob starts /bin/echo in group "jobs", as a recipe's jobs
// have a group, streams its output and waits for it; with restore, it
// then restores the group, which forgets its ended jobs (as the end of a
// recipe does).
func soakStreamJob(b *testing.B, ctx context.Context, c pb.AgentClient, restore bool) {
	defer func() {
		if !restore {
			return
		}
		if _, err := c.Restore(ctx, &pb.RestoreRequest{Group: "jobs"}); err != nil {
			b.Fatalf("restore group jobs: %v", err)
		}
	}()
	r, err := c.StartJob(ctx, &pb.StartJobRequest{Argv: []string{"/bin/echo", "soak"}, Group: "jobs"})
	if err != nil {
		b.Fatalf("StartJob /bin/echo: %v", err)
	}
	stream, err := c.StreamJob(ctx, &pb.JobRef{Id: r.Id})
	if err != nil {
		b.Fatalf("StreamJob %d: %v", r.Id, err)
	}
	for {
		if _, err := stream.Recv(); err == io.EOF {
			break
		} else if err != nil {
			b.Fatalf("StreamJob %d: %v", r.Id, err)
		}
	}
	res, err := c.WaitJob(ctx, &pb.JobRef{Id: r.Id})
	if err != nil || res.ExitCode != 0 {
		b.Fatalf("WaitJob %d: %v, %+v", r.Id, err, res)
	}
}

// soakPut puts src into directory dst on the agent's own host in group
// "put" (its undo goes to the journal file) and restores the group.
func soakPut(b *testing.B, ctx context.Context, c pb.AgentClient, src, dst string) {
	stream, err := c.PutFile(ctx)
	if err != nil {
		b.Fatalf("PutFile: %v", err)
	}
	err = stream.Send(&pb.PutFileRequest{Group: "put", Path: dst, Name: "f"})
	if err == nil {
		err = filetree.Send(src, nil, func(ch *pb.FileChunk) error { return stream.Send(&pb.PutFileRequest{Chunk: ch}) })
	}
	if err != nil && err != io.EOF {
		b.Fatalf("PutFile %s: %v", src, err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		b.Fatalf("PutFile %s: %v", src, err)
	}
	if r, err := c.Restore(ctx, &pb.RestoreRequest{Group: "put"}); err != nil || len(r.Errors) > 0 || r.Undone != 1 {
		b.Fatalf("restore group put: %v, %+v", err, r)
	}
}

// soakLease takes the lease for a new session, makes a temporary
// directory on the agent's own host in the session's group (journaled on
// disk), restores the group and releases the lease.
func soakLease(b *testing.B, ctx context.Context, c pb.AgentClient, i int) {
	session := fmt.Sprintf("soak%d", i)
	if _, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: session}); err != nil {
		b.Fatalf("heartbeat of %s: %v", session, err)
	}
	if _, err := c.TempDir(ctx, &pb.TempDirRequest{Group: session + "/g"}); err != nil {
		b.Fatalf("TempDir in %s: %v", session, err)
	}
	if r, err := c.Restore(ctx, &pb.RestoreRequest{Group: session + "/g"}); err != nil || len(r.Errors) > 0 || r.Undone != 1 {
		b.Fatalf("restore group %s/g: %v, %+v", session, err, r)
	}
	if _, err := c.Release(ctx, &pb.HeartbeatRequest{Session: session}); err != nil {
		b.Fatalf("release %s: %v", session, err)
	}
}

// soakCycle creates a namespace host and a veth on it in group "g", then
// restores the group, which deletes both.
func soakCycle(b *testing.B, ctx context.Context, c pb.AgentClient, i int) {
	host := fmt.Sprintf("soak%d", i)
	if _, err := c.CreateHost(ctx, &pb.CreateHostRequest{Name: host, Group: "g"}); err != nil {
		b.Fatalf("cycle %d: create host %s: %v", i, host, err)
	}
	veth := &pb.CreateLinkRequest{Host: host, Group: "g",
		Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "sa", PeerName: "sb"}}}
	if _, err := c.CreateLink(ctx, veth); err != nil {
		b.Fatalf("cycle %d: create veth on %s: %v", i, host, err)
	}
	r, err := c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	if err != nil || len(r.Errors) > 0 || r.Undone != 2 {
		b.Fatalf("cycle %d: restore group g: %v, %+v", i, err, r)
	}
}

// soakStatus reads the resident set size and the threads of process pid.
func soakStatus(b *testing.B, pid int) (rss int64, threads int) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("read the agent's status: %v", err)
	}
	num := func(v string) int64 {
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			b.Fatalf("parse %q of /proc/%d/status: %v", v, pid, err)
		}
		return n
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = num(v) * 1024
		}
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			threads = int(num(v))
		}
	}
	if rss == 0 || threads == 0 {
		b.Fatalf("no VmRSS or Threads in /proc/%d/status", pid)
	}
	return rss, threads
}

// soakAgentEnv makes this test binary serve a lab agent with a journal
// on disk for BenchmarkSoak (see TestMain): its value is the socket, and
// soakJournalEnv's the journal.
const (
	soakAgentEnv   = "LNST_TEST_SOAK_AGENT"
	soakJournalEnv = "LNST_TEST_SOAK_JOURNAL"
)

// soakServe serves a lab agent with its journal on disk on the socket
// soakAgentEnv names, until its stdin closes.
func soakServe() int {
	srv, err := agent.NewServer(agent.Options{Lab: true, JournalPath: os.Getenv(soakJournalEnv)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak agent:", err)
		return 1
	}
	lis, err := net.Listen("unix", os.Getenv(soakAgentEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak agent:", err)
		return 1
	}
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	go g.Serve(peercred.Restrict(lis, os.Geteuid(), nil))
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
	for _, err := range srv.Stop(g) {
		fmt.Fprintln(os.Stderr, "soak agent: restore:", err)
	}
	return 0
}

// soakAgent starts this test binary as soakServe's agent and returns its
// pid and a client of it; the agent ends with b (its stdin closes).
func soakAgent(b *testing.B) (int, pb.AgentClient) {
	b.Helper()
	dir := b.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	pid, c := benchAgent(b, []string{soakAgentEnv + "=" + sock, soakJournalEnv + "=" + filepath.Join(dir, "journal", "agent.journal")}, sock, "READY")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Hello(ctx, &pb.HelloRequest{}); err != nil {
		b.Fatalf("hello: %v", err)
	}
	return pid, c
}
