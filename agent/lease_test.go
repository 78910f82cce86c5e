package agent

import (
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestLeaseExpiry: a session that stops sending heartbeats has its jobs
// killed and its changes undone by the agent on its own, within the TTL
// (plus the watchdog's tick); another session's changes stay.
func TestLeaseExpiry(t *testing.T) {
	_, c := testServerOpts(t, Options{Lab: true, LeaseTTL: time.Second})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	r, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "dead"})
	require.NoError(t, err)
	assert.Equal(t, time.Second, r.Ttl.AsDuration())
	_, err = c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "alive"})
	require.NoError(t, err)

	group := SessionGroup("dead", "TestX#1")
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: group, Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	require.NoError(t, err)
	j, err := c.StartJob(ctx, &pb.StartJobRequest{Host: "h1", Group: group, Argv: []string{"sleep", "100"}})
	require.NoError(t, err)
	waited := make(chan *pb.JobResult, 1)
	go func() {
		res, err := c.WaitJob(ctx, &pb.JobRef{Host: "h1", Id: j.Id})
		assert.NoError(t, err)
		waited <- res
	}()
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: SessionGroup("alive", "TestY#1"), Kind: kindSysctl, Key: "net.ipv4.conf.all.forwarding", Value: "1"})
	require.NoError(t, err)

	// Keep "alive" alive past the TTL; "dead" sends nothing more.
	start := time.Now()
	for time.Since(start) < 2500*time.Millisecond {
		_, err = c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "alive"})
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond)
	}
	res := <-waited
	require.NotNil(t, res)
	assert.True(t, res.Killed, "the expired session's job was killed")
	assert.Equal(t, "0", testSh(t, c, "h1", "cat /proc/sys/net/ipv4/ip_forward")[:1], "the expired session's change was undone")
	// ip_forward=0 also resets conf.all.forwarding; read the alive
	// session's journal instead: its entry is still there.
	assert.Equal(t, int32(1), testRestoreCount(t, c, SessionGroup("alive", "TestY#1")), "the live session's change was kept")
}

// TestLeaseRelease: a released session is not restored by the agent (the
// controller restored it); bad session ids are refused.
func TestLeaseRelease(t *testing.T) {
	_, c := testServerOpts(t, Options{Lab: true, LeaseTTL: 200 * time.Millisecond})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "s"})
	require.NoError(t, err)
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: SessionGroup("s", "T#1"), Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	require.NoError(t, err)
	_, err = c.Release(ctx, &pb.HeartbeatRequest{Session: "s"})
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	assert.Equal(t, int32(1), testRestoreCount(t, c, SessionGroup("s", "T#1")), "the entry was left for the controller")

	for _, bad := range []string{"", "a/b"} {
		_, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: bad})
		testCode(t, err, codes.InvalidArgument, "session id")
	}
}

// TestLeaseExpiredStaysGone: after its lease expired, a session may not
// come back: its heartbeats and its changes are refused, naming why,
// while other sessions go on.
func TestLeaseExpiredStaysGone(t *testing.T) {
	_, c := testServerOpts(t, Options{Lab: true, LeaseTTL: 200 * time.Millisecond})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	r, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "s"})
	require.NoError(t, err)
	require.NotEmpty(t, r.Instance)
	time.Sleep(700 * time.Millisecond) // no heartbeat for more than the TTL
	_, err = c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "s"})
	testCode(t, err, codes.FailedPrecondition, "lease of session s expired", "undid the session's changes")
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: SessionGroup("s", "T#2"), Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	testCode(t, err, codes.FailedPrecondition, "lease of session s expired")
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: SessionGroup("other", "T#1"), Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	require.NoError(t, err, "another session is not affected")
	r2, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "other"})
	require.NoError(t, err)
	assert.Equal(t, r.Instance, r2.Instance, "one agent process, one instance")
}
