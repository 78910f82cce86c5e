package agentconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// DefaultTimeout is how long Dial waits for an agent when DialOptions
// gives no Timeout.
const DefaultTimeout = 10 * time.Second

// Keepalive is how a TCP connection to an agent finds that the machine
// went away without closing it (powered off, cut off): while a call is
// open, gRPC pings the agent after Time without traffic and closes the
// connection when no answer comes within Timeout, and the call fails
// Unavailable instead of waiting the quarter of an hour TCP takes to give
// up. The agent allows pings this often (agent.KeepaliveMinTime).
var Keepalive = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}

// DialOptions configure Dial.
type DialOptions struct {
	// TLS is the client's mutual-TLS configuration, from ClientTLS.
	TLS *tls.Config
	// Insecure allows plain TCP, without TLS. A unix socket needs neither.
	Insecure bool
	// Timeout bounds the wait for the agent's first answer; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// FailFast ends the wait at once when the connection is refused: for
	// an agent that should be up already (a pool's machine), rather than
	// one that is starting. A failed TLS handshake, or a plain connection
	// an agent serving TLS closes, ends it at once in any case: waiting
	// does not mend them.
	FailFast bool
}

// Dial connects to the agent at target, unix:///PATH or HOST:PORT, and
// returns once the agent answered a Hello. It fails if no answer came
// within opts.Timeout, or when ctx ends, with an error naming the target.
// A TCP target needs opts.TLS, or opts.Insecure to go without.
func Dial(ctx context.Context, target string, opts DialOptions) (*grpc.ClientConn, error) {
	network, _, err := ParseAddr(target)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", target, err)
	}
	if opts.TLS != nil && opts.Insecure {
		return nil, fmt.Errorf("agent %s: both TLS and Insecure are set", target)
	}
	var creds credentials.TransportCredentials
	switch {
	case opts.TLS != nil:
		creds = credentials.NewTLS(opts.TLS)
	case opts.Insecure || network == "unix":
		creds = insecure.NewCredentials()
	default:
		return nil, fmt.Errorf("agent %s: TCP needs mutual TLS (DialOptions.TLS) or DialOptions.Insecure", target)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	grpcTarget := target
	if network == "tcp" {
		// passthrough: the address is dialed as given; a name is resolved
		// by the dialer, and gRPC keeps HOST as the TLS server name.
		grpcTarget = "passthrough:///" + target
	}
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithConnectParams(grpc.ConnectParams{
		// Retry sooner than gRPC's default 1s: an agent that is starting
		// answers a fraction of a second later.
		Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
		// gRPC gives each connection attempt max(MinConnectTimeout,
		// backoff) to finish its handshake: left at zero that is the
		// 100 ms backoff, which a TLS handshake on a loaded machine
		// overruns, and the timeout then reads as a failed handshake.
		MinConnectTimeout: 5 * time.Second,
	})}
	if network == "tcp" {
		// A unix socket's peer cannot vanish without the kernel closing it.
		dialOpts = append(dialOpts, grpc.WithKeepaliveParams(Keepalive))
	}
	conn, err := grpc.NewClient(grpcTarget, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", target, err)
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := pb.NewAgentClient(conn)
	var last error // the latest connection error
	for {
		// Without WaitForReady a call fails at once, with the connection's
		// error, while the connection is failing; it waits while
		// connecting.
		_, err = client.Hello(hctx, &pb.HelloRequest{})
		if err == nil {
			return conn, nil
		}
		if status.Code(err) != codes.Unavailable && hctx.Err() == nil {
			conn.Close()
			return nil, fmt.Errorf("agent %s: %w", target, err)
		}
		if hctx.Err() == nil || last == nil {
			last = err
		}
		if why := permanent(err, opts); why != "" {
			conn.Close()
			return nil, fmt.Errorf("agent %s: %s: %w", target, why, err)
		}
		if hctx.Err() != nil {
			break
		}
		conn.WaitForStateChange(hctx, conn.GetState()) // the next attempt
	}
	conn.Close()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("agent %s: not reachable before the caller gave up (%v): %w", target, context.Cause(ctx), last)
	}
	return nil, fmt.Errorf("agent %s: not reachable within %s: %w", target, timeout, last)
}

// permanent says why a connection error will not go away by waiting, ""
// if it may.
func permanent(err error, opts DialOptions) string {
	msg := err.Error()
	if strings.Contains(msg, "context deadline exceeded") || strings.Contains(msg, "i/o timeout") {
		// A handshake that ran out of time says nothing about the
		// credentials: the next attempt may finish.
		return ""
	}
	switch {
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the TLS handshake failed: the agent serves plain TCP (insecure), not TLS"
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:") || strings.Contains(msg, "authentication handshake failed"):
		return "the TLS handshake failed (are the CA, certificate and key the agent's and this controller's, and does the agent's certificate name the address dialled?)"
	case opts.Insecure && strings.Contains(msg, "server preface"):
		return "the agent closed the plain-TCP (insecure) connection: it may serve TLS; give the CA, certificate and key instead of insecure"
	case opts.FailFast && strings.Contains(msg, "connection refused"):
		return "the connection was refused: no agent listens there"
	}
	return ""
}
