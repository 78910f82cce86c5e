package agentconn

import (
	"context"
	"fmt"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/blackhole"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestKeepaliveFindsVanishedAgent cuts the path to an agent over TCP
// without closing the connection: a call then fails Unavailable, through
// keepalive, instead of waiting for its minute-long deadline (TCP alone
// would wait about 15 minutes). The agent does not refuse the pings.
func TestKeepaliveFindsVanishedAgent(t *testing.T) {
	t.Parallel()
	lis, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	testAgent(t, lis)
	hole, err := blackhole.Listen("tcp", "127.0.0.1:0", lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { hole.Close() })

	conn, err := Dial(testCtx(t), hole.Addr().String(), DialOptions{Insecure: true})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	c := pb.NewAgentClient(conn)

	// The agent allows the pings: gRPC's default policy ends the
	// connection at the third ping within 5 minutes, so a job over three
	// keepalive intervals would fail Unavailable.
	sleep := 3*Keepalive.Time + Keepalive.Time/2
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r, err := c.RunJob(ctx, &pb.StartJobRequest{Argv: []string{"sleep", fmt.Sprint(sleep.Seconds())}})
	require.NoError(t, err, "a job of %v over a live connection", sleep)
	require.Zero(t, r.ExitCode, "sleep: %s", r.Error)

	hole.Cut()
	ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err = c.RunJob(ctx, &pb.StartJobRequest{Argv: []string{"true"}})
	require.Error(t, err)
	require.Equal(t, codes.Unavailable, status.Code(err), "the call fails because the connection is found dead, not by its deadline: %v", err)
}
