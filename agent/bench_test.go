package agent_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchmarkAgentRunVsForkExec runs /bin/true through an in-process agent
// over its unix socket (one RunJob per iteration) and with os/exec
// directly, and prints the ratio of the two as
//
//	RATIO agent_run/fork_exec <x>
func BenchmarkAgentRunVsForkExec(b *testing.B) {
	var forkExec, agentRun time.Duration

	b.Run("fork_exec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatalf("run /bin/true: %v", err)
			}
		}
		forkExec = benchPerOp(b)
	})

	b.Run("agent_run", func(b *testing.B) {
		b.ReportAllocs()
		client := benchAgentClient(b)
		ctx := context.Background()
		req := &pb.StartJobRequest{Argv: []string{"/bin/true"}, Host: ""}
		for b.Loop() {
			r, err := client.RunJob(ctx, req)
			if err != nil {
				b.Fatalf("RunJob /bin/true: %v", err)
			}
			if r.ExitCode != 0 {
				b.Fatalf("RunJob /bin/true: exit code %d, stderr %q", r.ExitCode, r.Stderr)
			}
		}
		agentRun = benchPerOp(b)
	})

	if forkExec > 0 && agentRun > 0 {
		fmt.Printf("RATIO agent_run/fork_exec %.2f\n", float64(agentRun)/float64(forkExec))
	}
}

// benchPerOp is the time per iteration of the b.Loop just ended.
func benchPerOp(b *testing.B) time.Duration {
	if b.N == 0 {
		return 0
	}
	return b.Elapsed() / time.Duration(b.N)
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
