package agent_test

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/benchratio"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// benchRunRound is how many runs of each side one round of
// BenchmarkAgentRunVsForkExec holds.
const benchRunRound = 25

// BenchmarkAgentRunVsForkExec runs /bin/true through an in-process agent
// over its unix socket (agent_run: one RunJob RPC, timed from the request
// to its reply) and with os/exec directly (fork_exec: exec.Command.Run),
// one of each per iteration, alternating which goes first, and prints the
// median over rounds of benchRunRound iterations of the ratio of the two,
// with its spread:
//
//	RATIO agent_run/fork_exec <x> (min, max, n)
func BenchmarkAgentRunVsForkExec(b *testing.B) {
	b.ReportAllocs()
	client := benchAgentClient(b)
	ctx := context.Background()
	req := &pb.StartJobRequest{Argv: []string{"/bin/true"}, Host: ""}
	forkOnce := func() time.Duration {
		start := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatalf("run /bin/true: %v", err)
		}
		return time.Since(start)
	}
	agentOnce := func() time.Duration {
		start := time.Now()
		r, err := client.RunJob(ctx, req)
		took := time.Since(start)
		if err != nil {
			b.Fatalf("RunJob /bin/true: %v", err)
		}
		if r.ExitCode != 0 {
			b.Fatalf("RunJob /bin/true: exit code %d, stderr %q", r.ExitCode, r.Stderr)
		}
		return took
	}
	var fork, run []time.Duration // per round
	var f, a time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			f += forkOnce()
			a += agentOnce()
		} else {
			a += agentOnce()
			f += forkOnce()
		}
		if i++; i%benchRunRound == 0 {
			fork, run = append(fork, f), append(run, a)
			f, a = 0, 0
		}
	}
	if i < benchRunRound {
		fork, run = append(fork, f), append(run, a)
	}
	if i > 0 {
		var tf, ta time.Duration
		for k := range fork {
			tf, ta = tf+fork[k], ta+run[k]
		}
		b.ReportMetric(float64(tf.Nanoseconds())/float64(i), "fork_exec-ns/run")
		b.ReportMetric(float64(ta.Nanoseconds())/float64(i), "agent_run-ns/run")
	}
	benchratio.Print("agent_run/fork_exec", benchratio.Ratios(run, fork))
}

// benchAgentClient serves an in-process agent on a unix socket in a
// temporary directory and returns a client of it; both end with b.
func benchAgentClient(b *testing.B) pb.AgentClient {
	b.Helper()
	srv, err := agent.NewServer(agent.Options{})
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
	client := pb.NewAgentClient(conn)
	// Connect before the timed loop.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Hello(ctx, &pb.HelloRequest{}); err != nil {
		b.Fatalf("hello: %v", err)
	}
	return client
}
