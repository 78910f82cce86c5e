package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/peercred"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// fuzzPrintf prints each of its arguments on a line of its own, as given:
// "%s" interprets neither escapes nor options in the argument.
const fuzzPrintf = "/usr/bin/printf"

// FuzzStartJobArgv checks that the agent runs argv as it is, without a
// shell: printf '%s\n' a b through an in-process agent prints a and b
// exactly, whatever shell metacharacters, quotes, globs or white space
// they hold. An argument with a NUL cannot be passed to exec: the job must
// fail to start rather than run something else.
func FuzzStartJobArgv(f *testing.F) {
	if _, err := os.Stat(fuzzPrintf); err != nil {
		f.Skipf("no %s: %v", fuzzPrintf, err)
	}
	for _, s := range [][2]string{
		{"hello", "world"},
		{"$(touch /tmp/lnst-fuzz-pwned)", "`id`"},
		{"a; echo b", "x | cat && y || z"},
		{"*", "/*/*"},
		{"'quoted' \"double\"", "\\n\\t%s%d"},
		{"", " "},
		{"-n", "--help"},
		{"$HOME ${PATH} $((1+1))", "~root"},
		{"line\nbreak", "tab\there"},
		{"nul\x00byte", "ok"},
		{"\xff\xfe", "ünï"},
	} {
		f.Add(s[0], s[1])
	}
	srv, c := fuzzServer(f)
	f.Fuzz(func(t *testing.T, a, b string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req := &pb.StartJobRequest{Argv: []string{fuzzPrintf, `%s\n`, a, b}, Group: "fuzz"}
		r, err := fuzzRunJob(ctx, srv, c, req)
		if err != nil {
			t.Fatalf("run %q: %v", req.Argv, err)
		}
		if strings.ContainsRune(a+b, 0) {
			if r.ExitCode != 126 || r.Error == "" || len(r.Stdout) != 0 {
				t.Fatalf("run %q with a NUL: exit %d, error %q, stdout %q; want a job that failed to start", req.Argv, r.ExitCode, r.Error, r.Stdout)
			}
			return
		}
		if want := a + "\n" + b + "\n"; r.ExitCode != 0 || string(r.Stdout) != want || len(r.Stderr) != 0 {
			t.Fatalf("run %q: exit %d, stdout %q, stderr %q, error %q; want stdout %q", req.Argv, r.ExitCode, r.Stdout, r.Stderr, r.Error, want)
		}
	})
}

// fuzzRunJob starts req, waits for it and restores its group, so that the
// agent forgets the job. Arguments that are not UTF-8 cannot go through
// gRPC (proto strings are UTF-8): they go to the server's methods directly.
func fuzzRunJob(ctx context.Context, srv *Server, c pb.AgentClient, req *pb.StartJobRequest) (*pb.JobResult, error) {
	grpcOK := true
	for _, s := range req.Argv {
		grpcOK = grpcOK && utf8.ValidString(s)
	}
	restore := &pb.RestoreRequest{Group: req.Group}
	if !grpcOK {
		j, err := srv.StartJob(ctx, req)
		if err != nil {
			return nil, err
		}
		defer srv.Restore(ctx, restore)
		return srv.WaitJob(ctx, &pb.JobRef{Host: req.Host, Id: j.Id})
	}
	j, err := c.StartJob(ctx, req)
	if err != nil {
		return nil, err
	}
	defer c.Restore(ctx, restore)
	return c.WaitJob(ctx, &pb.JobRef{Host: req.Host, Id: j.Id})
}

// fuzzServer serves a lab agent in this process on an abstract unix socket
// and returns it with a client of it; both end with f.
func fuzzServer(f *testing.F) (*Server, pb.AgentClient) {
	f.Helper()
	srv, err := NewServer(Options{Lab: true})
	if err != nil {
		f.Fatalf("new agent: %v", err)
	}
	name := fmt.Sprintf("lnst-fuzz-%d-%016x", os.Getpid(), rand.Uint64())
	lis, err := net.Listen("unix", "@"+name)
	if err != nil {
		f.Fatalf("listen on @%s: %v", name, err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	// An abstract socket has no permissions and the agent runs as root:
	// let only this process's user in.
	go g.Serve(peercred.Restrict(lis, os.Geteuid(), nil))
	conn, err := grpc.NewClient("unix-abstract:"+name, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatalf("dial @%s: %v", name, err)
	}
	f.Cleanup(func() {
		conn.Close()
		for _, err := range srv.Shutdown() {
			f.Errorf("agent shutdown: %v", err)
		}
		g.Stop()
	})
	return srv, pb.NewAgentClient(conn)
}
