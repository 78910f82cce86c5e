package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	"github.com/lnst-go/lnst/internal/agentconn"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/sockprobe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runMainEnv makes the test binary run main instead of the tests, so a
// test can start the command as a process of its own.
const runMainEnv = "LNST_TEST_RUN_LNST_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	sockprobe.Main()
	os.Exit(m.Run())
}

// runCmd runs the command line in this process and returns its exit
// status, stdout and stderr.
func runCmd(ctx context.Context, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr)
	return exitCode(err, &stderr), stdout.String(), stderr.String()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"serve"}, "--listen is required"},
		{[]string{"serve", "--listen", "unix://rel.sock"}, "--listen: address \"unix://rel.sock\": the socket path must be absolute"},
		{[]string{"serve", "--listen", "tcp://[::1]:7000"}, "--listen: address \"tcp://[::1]:7000\": unknown scheme"},
		{[]string{"serve", "--listen", "127.0.0.1:7000"}, "--listen 127.0.0.1:7000 is TCP: it needs mutual TLS (--ca, --cert and --key; missing --ca, --cert, --key) or --insecure"},
		{[]string{"serve", "--listen", "127.0.0.1:7000", "--cert", "a.pem"}, "--listen 127.0.0.1:7000 is TCP: it needs mutual TLS (--ca, --cert and --key; missing --ca, --key) or --insecure"},
		{[]string{"serve", "--listen", "127.0.0.1:7000", "--insecure", "--ca", "ca.pem"}, "--insecure turns TLS off"},
		{[]string{"serve", "--listen", "unix:///tmp/a.sock", "--insecure"}, "--listen unix:///tmp/a.sock is a unix socket"},
		{[]string{"serve", "--listen", "unix:///tmp/a.sock", "--cert", "a.pem"}, "--listen unix:///tmp/a.sock is a unix socket"},
		{[]string{"serve", "--listen", "unix:///tmp/a.sock", "--log-level", "loud"}, `--log-level: unknown level "loud"`},
		{[]string{"serve", "--listne", "unix:///tmp/a.sock"}, "flag provided but not defined: -listne"},
		{[]string{"serve", "--listen", "unix:///tmp/a.sock", "extra"}, `unexpected argument "extra"`},
		{[]string{"serve", "--listen", "unix:///tmp/a.sock", "--output-cap", "0"}, "--output-cap 0: must be a positive number of bytes"},
		{[]string{"serve", "--listen", "unix:///tmp/a.sock", "--output-cap", "2048", "--output-budget", "1024"}, "--output-budget 1024: must be at least --output-cap (2048)"},
		{[]string{"certs", "--host", "a"}, "--dir is required"},
		{[]string{"certs", "--dir", "d"}, "--host or --client is required"},
		{[]string{"certs", "--dir", "d", "--host", "a", "--days", "0"}, "--days 0: must be positive"},
		{[]string{"certs", "--days", "many"}, `invalid value "many" for flag -days`},
		{[]string{"version", "now"}, "version takes no arguments"},
	} {
		code, stdout, stderr := runCmd(t.Context(), tc.args...)
		assert.Equal(t, 2, code, "exit status of %q", tc.args)
		assert.Empty(t, stdout, "stdout of %q", tc.args)
		assert.Contains(t, stderr, "lnst-agent: "+tc.want, "stderr of %q", tc.args)
		assert.Contains(t, stderr, "usage:", "stderr of %q", tc.args)
	}
}

// TestServeInsecureOnlyLoopback: --insecure serves plain TCP on loopback
// addresses only; any other address exits 2 naming it, unless
// --insecure-any-address asks for it by name.
func TestServeInsecureOnlyLoopback(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:7000", ":7000", "[::]:7000", "198.18.0.5:7000", "[2001:db8::5]:7000", "agent1.lab:7000"} {
		code, stdout, stderr := runCmd(t.Context(), "serve", "--insecure", "--listen", listen)
		assert.Equal(t, 2, code, "exit status of --insecure --listen %s", listen)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "lnst-agent: --insecure --listen "+listen+": "+listen+" is not a loopback address (127.0.0.0/8, ::1, localhost)")
		assert.Contains(t, stderr, "--insecure-any-address")
	}
	for _, listen := range []string{"127.0.0.1:7000", "127.0.0.9:7000", "[::1]:7000", "localhost:7000"} {
		c, err := parseServe([]string{"--insecure", "--listen", listen, "--journal", ""}, io.Discard)
		require.NoError(t, err, listen)
		assert.True(t, c.insecure, listen)
	}
	c, err := parseServe([]string{"--insecure-any-address", "--listen", "0.0.0.0:7000", "--journal", ""}, io.Discard)
	require.NoError(t, err)
	assert.True(t, c.insecure && c.anyAddress)
	for _, args := range [][]string{
		{"--insecure-any-address", "--listen", "0.0.0.0:7000", "--ca", "ca.pem"},
		{"--insecure-any-address", "--listen", "unix:///tmp/a.sock"},
	} {
		_, err := parseServe(args, io.Discard)
		assert.Error(t, err, "%q", args)
	}
}

func TestVersionAndHelp(t *testing.T) {
	code, stdout, _ := runCmd(t.Context(), "version")
	assert.Zero(t, code)
	assert.Equal(t, "lnst-agent "+agent.Version+"\n", stdout)

	code, stdout, _ = runCmd(t.Context(), "help")
	assert.Zero(t, code)
	assert.Contains(t, stdout, "lnst-agent serve --listen")

	code, _, stderr := runCmd(t.Context(), "serve", "-h")
	assert.Zero(t, code)
	assert.Contains(t, stderr, "-insecure")
}

func TestCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, stdout, stderr := runCmd(t.Context(), "certs", "--dir", dir, "--host", "127.0.0.1, agent1.lab", "--client", "ctl", "--days", "2")
	require.Zero(t, code, "stderr: %s", stderr)
	assert.Contains(t, stdout, filepath.Join(dir, "agent1.lab.pem"))
	for _, f := range []string{"ca.pem", "ca-key.pem", "127.0.0.1.pem", "127.0.0.1-key.pem", "agent1.lab.pem", "agent1.lab-key.pem", "ctl.pem", "ctl-key.pem"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	_, err := agentconn.ServerTLS(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "127.0.0.1.pem"), filepath.Join(dir, "127.0.0.1-key.pem"))
	assert.NoError(t, err, "server TLS from the generated files")
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "mode of the certificates directory (it holds the CA's key)")
	assert.NotContains(t, stderr, "warning")
	assert.Contains(t, stderr, "lnst-agent: "+filepath.Join(dir, "ca-key.pem")+" is the CA's key: it stays on this controller; copy it to no machine",
		"certs says the CA's key stays on the controller")

	// The CA ends in 2 days: a host asked for 30 gets 2, and is told.
	code, _, stderr = runCmd(t.Context(), "certs", "--dir", dir, "--host", "agent2.lab", "--days", "30")
	require.Zero(t, code, "stderr: %s", stderr)
	assert.Contains(t, stderr, "lnst-agent: warning: the CA in "+dir+" ends ")
	assert.Contains(t, stderr, "before the 30 days asked: the new certificates end with it")
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "agent2.lab.pem"), filepath.Join(dir, "agent2.lab-key.pem"))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(48*time.Hour), pair.Leaf.NotAfter, time.Hour, "cut to the CA's end")
	code, _, stderr = runCmd(t.Context(), "certs", "--dir", dir, "--host", "agent3.lab", "--days", "1")
	require.Zero(t, code, "stderr: %s", stderr)
	assert.NotContains(t, stderr, "warning", "1 day is within the CA's")
}

// TestServeTLS serves mutual TLS on loopback in this process: a controller
// with a client certificate gets answers, and the agent stops when its
// context ends.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, agentconn.GenerateCerts(dir, []string{"127.0.0.1"}, []string{"ctl"}, time.Hour))
	f := func(name string) string { return filepath.Join(dir, name) }
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close()) // a port nothing uses, for the agent

	ctx, stop := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		err := run(ctx, []string{"serve", "--listen", addr, "--ca", f("ca.pem"), "--cert", f("127.0.0.1.pem"), "--key", f("127.0.0.1-key.pem"), "--journal", ""}, &bytes.Buffer{}, &stderr)
		done <- exitCode(err, &stderr)
	}()

	cfg, err := agentconn.ClientTLS(f("ca.pem"), f("ctl.pem"), f("ctl-key.pem"))
	require.NoError(t, err)
	conn, err := agentconn.Dial(testCtx(t), addr, agentconn.DialOptions{TLS: cfg})
	require.NoError(t, err, "dial the agent")
	defer conn.Close()
	r, err := pb.NewAgentClient(conn).RunJob(testCtx(t), &pb.StartJobRequest{Argv: []string{"/bin/true"}})
	require.NoError(t, err, "run /bin/true")
	assert.Zero(t, r.ExitCode)

	_, err = agentconn.Dial(testCtx(t), addr, agentconn.DialOptions{Insecure: true, Timeout: time.Hour})
	assert.ErrorContains(t, err, "it may serve TLS", "plain TCP to the TLS agent: said at once, not after the timeout")

	stop()
	select {
	case code := <-done:
		assert.Zero(t, code, "exit status; stderr: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return within 30s of its context ending")
	}
}

func TestServeBadCertFile(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCmd(t.Context(), "serve", "--listen", "127.0.0.1:0", "--journal", filepath.Join(dir, "journal"),
		"--ca", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, "a.pem"), "--key", filepath.Join(dir, "a-key.pem"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "CA file "+filepath.Join(dir, "ca.pem")+": missing")
}

// TestServeUnixSIGTERM runs the agent as a process on a unix socket: it
// answers, keeps the tail of a job's output past --output-cap, and SIGTERM
// makes it exit 0 and remove its socket.
func TestServeUnixSIGTERM(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	var stderr bytes.Buffer
	journal := filepath.Join(filepath.Dir(sock), "journal")
	cmd := exec.Command(os.Args[0], "serve", "--listen", "unix://"+sock, "--log-level", "debug", "--journal", journal,
		"--output-cap", "1000", "--output-budget", "100000")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})

	conn, err := agentconn.Dial(testCtx(t), "unix://"+sock, agentconn.DialOptions{})
	require.NoError(t, err, "dial the agent; its stderr: %s", &stderr)
	defer conn.Close()
	hello, err := pb.NewAgentClient(conn).Hello(testCtx(t), &pb.HelloRequest{})
	require.NoError(t, err)
	assert.Equal(t, int32(cmd.Process.Pid), hello.Pid, "the agent is the process started")
	assert.False(t, hello.Lab)
	res, err := pb.RunJobWhole(testCtx(t), pb.NewAgentClient(conn), &pb.StartJobRequest{Argv: []string{"seq", "10000"}})
	require.NoError(t, err)
	assert.True(t, res.StdoutTruncated, "48894 bytes past --output-cap 1000")
	assert.Len(t, res.Stdout, 1000)
	assert.Regexp(t, `\n9999\n10000\n$`, string(res.Stdout), "the tail is kept")
	assert.Equal(t, int64(48894), res.StdoutSize)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		assert.NoError(t, err, "exit of the agent; its stderr: %s", &stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("the agent did not exit within 30s of SIGTERM; its stderr: %s", &stderr)
	}
	assert.NoFileExists(t, sock, "socket after exit")
	b, err := os.ReadFile(journal)
	require.NoError(t, err)
	assert.Equal(t, "LNSTJRNL\x01\x00\x00\x00", string(b), "the journal, compacted to its header")
	assert.Contains(t, stderr.String(), "stopping: restoring every change")
}

// TestServeUnixOtherUser serves a root agent on a unix socket in a
// directory everyone may enter, and probes it as user nobody, who finds
// it in /proc/net/unix: the socket is 0600, so nobody cannot connect; with
// the socket chmodded 0666, nobody connects and the agent refuses it
// (SO_PEERCRED), logging its pid and uid; root is still served.
func TestServeUnixOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("probing as another user requires root")
	}
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "lnst-agent-test-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command(os.Args[0], "serve", "--listen", "unix://"+sock, "--journal", "")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	conn, err := agentconn.Dial(testCtx(t), "unix://"+sock, agentconn.DialOptions{})
	require.NoError(t, err, "dial the agent; its stderr: %s", &stderr)
	defer conn.Close()
	client := pb.NewAgentClient(conn)
	_, err = client.Hello(testCtx(t), &pb.HelloRequest{})
	require.NoError(t, err, "root's Hello")

	socks, err := sockprobe.ListeningOf(cmd.Process.Pid)
	require.NoError(t, err)
	res := sockprobe.Probe(t, sockprobe.Nobody, sockprobe.Nobody, sock)
	sockprobe.RequireRefused(t, res, socks)
	for _, r := range res {
		if r.Addr == sock {
			assert.Contains(t, r.Connect, "permission denied", "nobody connecting to the 0600 socket")
		}
	}

	require.NoError(t, os.Chmod(sock, 0o666))
	res = sockprobe.Probe(t, sockprobe.Nobody, sockprobe.Nobody, sock)
	sockprobe.RequireRefused(t, res, socks)
	for _, r := range res {
		if r.Addr == sock {
			assert.Empty(t, r.Connect, "nobody connecting to the socket chmodded 0666")
		}
	}
	assert.Contains(t, stderr.String(), "refused a connection from another user", "the agent's log")
	assert.Contains(t, stderr.String(), "uid=65534", "the agent's log")

	_, err = client.Hello(testCtx(t), &pb.HelloRequest{})
	assert.NoError(t, err, "root's Hello after the refusals")
}
