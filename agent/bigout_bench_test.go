package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/internal/launch"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestMain lets this test binary be the lab agent that BenchmarkBigOutput
// starts, as lnsttest.Main does for recipes.
func TestMain(m *testing.M) {
	if agent.IsLabAgent() {
		os.Exit(agent.ServeLab())
	}
	if os.Getenv(soakAgentEnv) != "" {
		os.Exit(soakServe())
	}
	os.Exit(m.Run())
}

// Work of BenchmarkBigOutput.
const (
	bigOutJobs = 20
	bigOutSize = 50_000_000
)

// BenchmarkBigOutput runs bigOutJobs jobs that each write bigOutSize bytes
// through a real lab agent process (this test binary re-executed, as
// lnsttest's lab does), collecting each one's whole output with
// RunJobStream, and compares the agent's resident memory (VmRSS) after
// all of them with that after the first, printed as
//
//	RATIO rss_bigout/rss_start <x> (min, max, n)
//
// (the value is the RSS after the last job over that after the first; min
// and max are those of the RSS after each later job over it)
//
// It should stay at or below 1.10: the agent lets go of a job's output
// once its result is collected, so its memory does not grow with the jobs
// it ran. Nothing here forces a GC in the agent: the agent itself returns
// the memory of a big output to the system when it lets go of it, before
// the result is sent (without that, the two readings caught the Go heap at
// whatever point of its GC cycle, 73 to 110 MiB, ratios 1.01 to 1.51; now
// both are about 24 MiB). The work is the same whatever b.N is.
func BenchmarkBigOutput(b *testing.B) {
	if syscall.Geteuid() != 0 {
		b.Skip("the lab agent needs root")
	}
	pid, client := bigOutAgent(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	req := &pb.StartJobRequest{Argv: []string{"/bin/sh", "-c", fmt.Sprintf(`head -c %d /dev/zero | tr '\0' a`, bigOutSize)}}
	run := func() {
		r, err := pb.RunJobWhole(ctx, client, req)
		if err != nil {
			b.Fatalf("run %q: %v", req.Argv, err)
		}
		if r.ExitCode != 0 || len(r.Stdout) != bigOutSize || r.StdoutTruncated {
			b.Fatalf("run %q: exit code %d, %d bytes of stdout (truncated %v), stderr %q", req.Argv, r.ExitCode, len(r.Stdout), r.StdoutTruncated, r.Stderr)
		}
	}

	b.ResetTimer()
	run()
	rss0 := bigOutRSS(b, pid)
	var after []float64 // RSS after each later job over rss0
	for range bigOutJobs - 1 {
		run()
		after = append(after, float64(bigOutRSS(b, pid))/float64(rss0))
	}
	b.StopTimer()
	rss1 := bigOutRSS(b, pid)
	b.ReportMetric(float64(rss1)/1024, "rss_bigout_KiB")
	b.Logf("agent RSS after 1 job %d KiB, after %d jobs %d KiB", rss0/1024, bigOutJobs, rss1/1024)
	benchratio.PrintOf("rss_bigout/rss_start", float64(rss1)/float64(rss0), after)
}

// bigOutRSS reads the resident set size of process pid.
func bigOutRSS(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("read the agent's RSS: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("parse VmRSS %q: %v", v, err)
			}
			return kb * 1024
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// bigOutAgent starts this test binary as a lab agent and returns its pid
// and a client of it; the agent ends with b (its stdin closes).
func bigOutAgent(b *testing.B) (int, pb.AgentClient) {
	b.Helper()
	// ServeLab takes the absolute path of a socket in a directory
	// private to the controller (b.TempDir is mode 0700).
	socket := filepath.Join(b.TempDir(), "agent.sock")
	return benchAgent(b, []string{launch.LabSocketEnv + "=" + socket}, socket, launch.ReadyLine)
}

// benchAgent starts this test binary with env added (it serves an agent
// on socket), waits for its first line to be ready, and returns its pid
// and a client of it; the agent ends with b (its stdin closes).
func benchAgent(b *testing.B, env []string, socket, ready string) (int, pb.AgentClient) {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the agent: %v", err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != ready {
		b.Fatalf("the agent said %q, %v; want %q", line, err, ready)
	}
	go io.Copy(io.Discard, stdout)
	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatalf("dial %s: %v", socket, err)
	}
	b.Cleanup(func() { conn.Close() })
	return cmd.Process.Pid, pb.NewAgentClient(conn)
}
