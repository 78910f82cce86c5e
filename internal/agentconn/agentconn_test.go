package agentconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// testCerts generates a CA, a server certificate for 127.0.0.1 and a client
// certificate "ctl" into a temporary directory and returns it.
func testCerts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, GenerateCerts(dir, []string{"127.0.0.1"}, []string{"ctl"}, 24*time.Hour), "generate certificates")
	return dir
}

// testAgent serves an agent on lis with opts, counting the RPCs that
// reached a handler, and stops it at cleanup.
func testAgent(t *testing.T, lis net.Listener, opts ...grpc.ServerOption) *atomic.Int32 {
	t.Helper()
	srv, err := agent.NewServer(agent.Options{})
	require.NoError(t, err, "new agent")
	var calls atomic.Int32
	opts = append(opts,
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			calls.Add(1)
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(s any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			calls.Add(1)
			return h(s, ss)
		}))
	g := grpc.NewServer(append(opts, srv.ServerOptions()...)...)
	srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(func() {
		g.Stop()
		for _, err := range srv.Shutdown() {
			t.Errorf("agent shutdown: %v", err)
		}
	})
	return &calls
}

// testTLSAgent serves an agent with mutual TLS on 127.0.0.1 and returns its
// address and RPC counter.
func testTLSAgent(t *testing.T, dir string) (string, *atomic.Int32) {
	t.Helper()
	cfg, err := ServerTLS(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "127.0.0.1.pem"), filepath.Join(dir, "127.0.0.1-key.pem"))
	require.NoError(t, err, "server TLS")
	lis, err := Listen("127.0.0.1:0")
	require.NoError(t, err, "listen")
	calls := testAgent(t, lis, grpc.Creds(credentials.NewTLS(cfg)))
	return lis.Addr().String(), calls
}

func clientTLS(t *testing.T, dir, client string) *tls.Config {
	t.Helper()
	cfg, err := ClientTLS(filepath.Join(dir, "ca.pem"), filepath.Join(dir, client+".pem"), filepath.Join(dir, client+"-key.pem"))
	require.NoError(t, err, "client TLS")
	return cfg
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMutualTLS(t *testing.T) {
	dir := testCerts(t)
	addr, calls := testTLSAgent(t, dir)

	conn, err := Dial(testCtx(t), addr, DialOptions{TLS: clientTLS(t, dir, "ctl")})
	require.NoError(t, err, "dial %s", addr)
	t.Cleanup(func() { conn.Close() })
	c := pb.NewAgentClient(conn)
	hello, err := c.Hello(testCtx(t), &pb.HelloRequest{})
	require.NoError(t, err, "hello")
	assert.Equal(t, agent.Version, hello.Version)
	assert.False(t, hello.Lab)
	r, err := c.RunJob(testCtx(t), &pb.StartJobRequest{Argv: []string{"/bin/true"}})
	require.NoError(t, err, "run /bin/true")
	assert.Zero(t, r.ExitCode, "exit code of /bin/true; error %q", r.Error)
	assert.Equal(t, int32(3), calls.Load(), "RPCs handled: Dial's Hello, Hello, RunJob")
}

// TestRefused checks that clients without a valid certificate get nothing:
// the RPC fails Unavailable and no handler runs.
func TestRefused(t *testing.T) {
	dir := testCerts(t)
	addr, calls := testTLSAgent(t, dir)
	other := t.TempDir()
	strangers, err := StrangerCredentials(filepath.Join(dir, "ca.pem"), other)
	require.NoError(t, err)
	for name, creds := range strangers {
		t.Run(name, func(t *testing.T) {
			conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
			require.NoError(t, err)
			defer conn.Close()
			_, err = pb.NewAgentClient(conn).Hello(testCtx(t), &pb.HelloRequest{})
			require.Error(t, err, "hello without a valid client certificate")
			assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
			assert.Zero(t, calls.Load(), "RPCs that reached a handler")
		})
	}

	// Dial gives up at once (not after its timeout), saying the agent
	// may serve TLS.
	t.Run("Dial", func(t *testing.T) {
		_, err := Dial(testCtx(t), addr, DialOptions{Insecure: true, Timeout: time.Hour})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "agent "+addr+": the agent closed the plain-TCP (insecure) connection: it may serve TLS")
		assert.Zero(t, calls.Load(), "RPCs that reached a handler")
	})
	t.Run("Dial with another CA", func(t *testing.T) {
		_, err := Dial(testCtx(t), addr, DialOptions{TLS: clientTLS(t, other, "ctl"), Timeout: time.Hour})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "agent "+addr+": the TLS handshake failed")
		assert.Contains(t, err.Error(), "x509")
		assert.Zero(t, calls.Load(), "RPCs that reached a handler")
	})
}

// TestServerName checks that the agent's certificate must name the host
// dialed: the certificate has the IP SAN 127.0.0.1 only, not "localhost".
func TestServerName(t *testing.T) {
	dir := testCerts(t)
	addr, calls := testTLSAgent(t, dir)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	_, err = Dial(testCtx(t), "localhost:"+port, DialOptions{TLS: clientTLS(t, dir, "ctl"), Timeout: time.Hour})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the TLS handshake failed", "given up at once, not after the timeout")
	assert.Contains(t, err.Error(), "certificate")
	assert.Zero(t, calls.Load(), "RPCs that reached a handler")
}

func TestDialUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())

	start := time.Now()
	_, err = Dial(testCtx(t), addr, DialOptions{Insecure: true, Timeout: time.Second})
	elapsed := time.Since(start)
	require.Error(t, err)
	assert.Less(t, elapsed, 3*time.Second, "time to give up")
	assert.Contains(t, err.Error(), "agent "+addr+": not reachable within 1s: ")
	assert.Contains(t, err.Error(), "connection refused")

	// With FailFast, the refusal ends the wait at once.
	_, err = Dial(testCtx(t), addr, DialOptions{Insecure: true, Timeout: time.Hour, FailFast: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "agent "+addr+": the connection was refused: no agent listens there")

	// A TLS client dialling a plain agent is told so.
	lis, err = Listen("127.0.0.1:0")
	require.NoError(t, err)
	testAgent(t, lis)
	_, err = Dial(testCtx(t), lis.Addr().String(), DialOptions{TLS: clientTLS(t, testCerts(t), "ctl"), Timeout: time.Hour})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the agent serves plain TCP (insecure), not TLS")
}

func TestDialBadTargets(t *testing.T) {
	for target, want := range map[string]string{
		"unix://relative.sock": "the socket path must be absolute",
		"127.0.0.1:7000":       "TCP needs mutual TLS",
		"tcp://127.0.0.1:7000": "unknown scheme",
		"127.0.0.1":            "want unix:///PATH or HOST:PORT",
		"":                     "empty address",
	} {
		_, err := Dial(testCtx(t), target, DialOptions{Timeout: time.Second})
		require.Error(t, err, target)
		assert.Contains(t, err.Error(), want, target)
		assert.True(t, strings.HasPrefix(err.Error(), "agent "+target+": "), "%q names the target: %v", target, err)
	}
	_, err := Dial(testCtx(t), "127.0.0.1:7000", DialOptions{TLS: &tls.Config{}, Insecure: true})
	assert.ErrorContains(t, err, "both TLS and Insecure")
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.sock")
	// A socket file left by an agent that died is replaced.
	stale, err := net.Listen("unix", path)
	require.NoError(t, err)
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, stale.Close())

	lis, err := Listen("unix://" + path)
	require.NoError(t, err, "listen over a stale socket")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "socket mode")
	calls := testAgent(t, lis)

	// One something listens on is not.
	_, err = Listen("unix://" + path)
	assert.ErrorContains(t, err, "address already in use")

	conn, err := Dial(testCtx(t), "unix://"+path, DialOptions{})
	require.NoError(t, err, "dial the unix socket")
	defer conn.Close()
	assert.Equal(t, int32(1), calls.Load())
}

func TestCertFileErrors(t *testing.T) {
	dir := testCerts(t)
	f := func(name string) string { return filepath.Join(dir, name) }
	notPEM := f("junk.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600))

	for _, tc := range []struct {
		name            string
		ca, cert, key   string
		wantFile, wantS string
	}{
		{"CA missing", f("nope.pem"), f("ctl.pem"), f("ctl-key.pem"), f("nope.pem"), "missing"},
		{"CA not PEM", notPEM, f("ctl.pem"), f("ctl-key.pem"), notPEM, "not PEM data"},
		{"CA is a key", f("ca-key.pem"), f("ctl.pem"), f("ctl-key.pem"), f("ca-key.pem"), "not a certificate"},
		{"cert missing", f("ca.pem"), f("nope.pem"), f("ctl-key.pem"), f("nope.pem"), "missing"},
		{"cert is a key", f("ca.pem"), f("ctl-key.pem"), f("ctl-key.pem"), f("ctl-key.pem"), "not a certificate"},
		{"key missing", f("ca.pem"), f("ctl.pem"), f("nope.pem"), f("nope.pem"), "missing"},
		{"key not PEM", f("ca.pem"), f("ctl.pem"), notPEM, notPEM, "not PEM data"},
		{"key is a cert", f("ca.pem"), f("ctl.pem"), f("ca.pem"), f("ca.pem"), "not a private key"},
		{"key of another cert", f("ca.pem"), f("ctl.pem"), f("127.0.0.1-key.pem"), f("127.0.0.1-key.pem"), "does not match certificate file " + f("ctl.pem")},
		{"no file", f("ca.pem"), "", f("ctl-key.pem"), "", "no certificate file given"},
	} {
		for side, load := range map[string]func(string, string, string) (*tls.Config, error){"server": ServerTLS, "client": ClientTLS} {
			_, err := load(tc.ca, tc.cert, tc.key)
			require.Error(t, err, "%s: %s", side, tc.name)
			assert.Contains(t, err.Error(), tc.wantFile, "%s: %s", side, tc.name)
			assert.Contains(t, err.Error(), tc.wantS, "%s: %s", side, tc.name)
		}
	}
}

func TestGenerateCerts(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, GenerateCerts(dir, []string{"198.18.0.5", "agent1.lab"}, []string{"ctl"}, 48*time.Hour))
	load := func(name string) *x509.Certificate {
		t.Helper()
		certs, _, err := readCerts("certificate", filepath.Join(dir, name+".pem"))
		require.NoError(t, err)
		return certs[0]
	}
	ca := load("ca")
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	assert.True(t, ca.IsCA)

	ip := load("198.18.0.5")
	assert.Equal(t, []string{"198.18.0.5"}, ipStrings(ip.IPAddresses))
	assert.Empty(t, ip.DNSNames, "no SAN beyond the ones asked for")
	_, err := ip.Verify(x509.VerifyOptions{Roots: roots, DNSName: "198.18.0.5", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	assert.NoError(t, err, "server certificate for an IP")

	dns := load("agent1.lab")
	assert.Equal(t, []string{"agent1.lab"}, dns.DNSNames)
	assert.Empty(t, dns.IPAddresses)
	_, err = dns.Verify(x509.VerifyOptions{Roots: roots, DNSName: "agent1.lab", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	assert.NoError(t, err, "server certificate for a name")

	ctl := load("ctl")
	_, err = ctl.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	assert.NoError(t, err, "client certificate")
	_, err = ctl.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	assert.Error(t, err, "a client certificate does not serve")

	for _, name := range []string{"ca", "198.18.0.5", "agent1.lab", "ctl"} {
		fi, err := os.Stat(filepath.Join(dir, name+"-key.pem"))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "mode of %s-key.pem", name)
	}

	// A second run reuses the CA, so earlier certificates stay valid.
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	require.NoError(t, GenerateCerts(dir, []string{"198.18.0.6"}, nil, 24*time.Hour))
	again, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	assert.Equal(t, caPEM, again, "ca.pem after adding a host")
	_, err = load("198.18.0.6").Verify(x509.VerifyOptions{Roots: roots, DNSName: "198.18.0.6", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	assert.NoError(t, err, "new host signed by the same CA")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), ".tmp-"), "temporary file left: %s", e.Name())
	}

	for _, bad := range [][]string{{"a/b"}, {""}, {"ca"}, {"x", "x"}} {
		assert.Error(t, GenerateCerts(t.TempDir(), bad, nil, time.Hour), "hosts %q", bad)
	}
	assert.ErrorContains(t, GenerateCerts(t.TempDir(), []string{"x"}, nil, 0), "not positive")
}

func ipStrings(ips []net.IP) []string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}

// TestLoopbackAddr: plain TCP is allowed on unix sockets and loopback
// addresses only; every address another machine may reach is not one.
func TestLoopbackAddr(t *testing.T) {
	for _, a := range []string{"unix:///run/a.sock", "127.0.0.1:7000", "127.1.2.3:7000", "[::1]:7000", "localhost:7000", "LOCALHOST:1", "[::ffff:127.0.0.1]:7000"} {
		assert.True(t, LoopbackAddr(a), a)
	}
	for _, a := range []string{"0.0.0.0:7000", ":7000", "[::]:7000", "198.18.0.5:7000", "[2001:db8::1]:7000", "m1:7000", "localhost.example:7000", "[fe80::1%lo]:7000", "128.0.0.1:7000", "127.0.0.1", "", "tcp://127.0.0.1:7000"} {
		assert.False(t, LoopbackAddr(a), a)
	}
}

// slowListener hands each connection over only after delay, as a loaded
// machine's agent may start its side of the TLS handshake late.
type slowListener struct {
	net.Listener
	delay time.Duration
}

func (l slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		time.Sleep(l.delay)
	}
	return c, err
}

// TestSlowHandshake checks that a TLS handshake the agent answers later
// than gRPC's first backoff (100 ms) still connects: it is neither cut off
// nor taken for wrong credentials.
func TestSlowHandshake(t *testing.T) {
	dir := testCerts(t)
	cfg, err := ServerTLS(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "127.0.0.1.pem"), filepath.Join(dir, "127.0.0.1-key.pem"))
	require.NoError(t, err, "server TLS")
	lis, err := Listen("127.0.0.1:0")
	require.NoError(t, err, "listen")
	testAgent(t, slowListener{lis, 400 * time.Millisecond}, grpc.Creds(credentials.NewTLS(cfg)))

	conn, err := Dial(testCtx(t), lis.Addr().String(), DialOptions{TLS: clientTLS(t, dir, "ctl")})
	require.NoError(t, err, "dial an agent whose handshake starts 400 ms late")
	conn.Close()
	assert.Empty(t, permanent(status.Error(codes.Unavailable, "connection error: desc = \"transport: authentication handshake failed: context deadline exceeded\""), DialOptions{}),
		"a handshake that timed out is not a credentials failure")
}
