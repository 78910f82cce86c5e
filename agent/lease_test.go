package agent

import (
	"strings"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestLeaseExpiry: a session that stops sending heartbeats has its jobs
// killed and its changes undone by the agent on its own, within the TTL
// (plus the watchdog's tick); the changes an earlier session left (it
// released its lease) stay.
func TestLeaseExpiry(t *testing.T) {
	_, c := testServerOpts(t, Options{Lab: true, LeaseTTL: time.Second})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "earlier"})
	require.NoError(t, err)
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: SessionGroup("earlier", "TestY#1"), Kind: kindSysctl, Key: "net.ipv4.ip_default_ttl", Value: "77"})
	require.NoError(t, err)
	_, err = c.Release(ctx, &pb.HeartbeatRequest{Session: "earlier"})
	require.NoError(t, err)

	r, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "dead"})
	require.NoError(t, err)
	assert.Equal(t, time.Second, r.Ttl.AsDuration())
	group := SessionGroup("dead", "TestX#1")
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: group, Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	require.NoError(t, err)
	j, err := c.StartJob(ctx, &pb.StartJobRequest{Host: "h1", Group: group, Argv: []string{"sleep", "100"}})
	require.NoError(t, err)
	res, err := c.WaitJob(ctx, &pb.JobRef{Host: "h1", Id: j.Id}) // "dead" sends nothing more
	require.NoError(t, err)
	assert.True(t, res.Killed, "the expired session's job was killed")
	// The job is stopped first (newest first), the value written back next.
	testWaitFor(t, "the expired session's change to be undone", 10*time.Second, func() bool {
		return testSh(t, c, "h1", "cat /proc/sys/net/ipv4/ip_forward")[:1] == "0"
	})
	assert.Equal(t, "77", strings.TrimSpace(testSh(t, c, "h1", "cat /proc/sys/net/ipv4/ip_default_ttl")), "the released session's change stays")
	assert.Equal(t, int32(1), testRestoreCount(t, c, SessionGroup("earlier", "TestY#1")), "the released session's change was kept")
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

// TestLeaseHeldRefusesOtherSession: while session A holds the agent's
// lease, session B's heartbeat and its changes (unary and streamed) are
// refused naming A, while A's changes, calls without a session and
// read-only calls go on; once A releases, B takes the lease and A is
// refused in turn.
func TestLeaseHeldRefusesOtherSession(t *testing.T) {
	_, c := testServerOpts(t, Options{Lab: true, LeaseTTL: time.Minute})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "A"})
	require.NoError(t, err)

	_, err = c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "B"})
	testCode(t, err, LeaseHeldCode, "session A", "holds the lease since", "session B may go on")
	assert.True(t, IsLeaseHeld(err), "IsLeaseHeld(%v)", err)
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: SessionGroup("B", "T#1"), Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	testCode(t, err, LeaseHeldCode, "session A")
	_, err = c.StartJob(ctx, &pb.StartJobRequest{Host: "h1", Group: SessionGroup("B", "T#1"), Argv: []string{"true"}})
	testCode(t, err, LeaseHeldCode, "session A")
	_, err = c.Restore(ctx, &pb.RestoreRequest{Group: SessionGroup("B", "T#1")})
	testCode(t, err, LeaseHeldCode, "session A")
	stream, err := c.RunJobStream(ctx, &pb.StartJobRequest{Host: "h1", Group: SessionGroup("B", "T#1"), Argv: []string{"true"}})
	require.NoError(t, err)
	_, err = stream.Recv()
	testCode(t, err, LeaseHeldCode, "session A")
	assert.Equal(t, "0", testSh(t, c, "h1", "cat /proc/sys/net/ipv4/ip_forward")[:1], "B changed nothing")

	_, err = c.Hello(ctx, &pb.HelloRequest{})
	require.NoError(t, err, "Hello answers while A holds the lease")
	_, err = c.Facts(ctx, &pb.FactsRequest{})
	require.NoError(t, err, "Facts answers while A holds the lease")
	_, err = c.ReadValue(ctx, &pb.ValueRef{Host: "h1", Kind: kindSysctl, Key: "net.ipv4.ip_forward"})
	require.NoError(t, err, "ReadValue answers while A holds the lease")
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: SessionGroup("A", "T#1"), Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	require.NoError(t, err, "the holder's change")

	_, err = c.Release(ctx, &pb.HeartbeatRequest{Session: "B"})
	require.NoError(t, err, "releasing a lease one does not hold changes nothing")
	_, err = c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "B"})
	testCode(t, err, LeaseHeldCode, "session A")

	_, err = c.Release(ctx, &pb.HeartbeatRequest{Session: "A"})
	require.NoError(t, err)
	_, err = c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "B"})
	require.NoError(t, err, "B takes the lease A released")
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: SessionGroup("B", "T#2"), Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "0"})
	require.NoError(t, err, "B's change once it holds the lease")
	_, err = c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "A"})
	testCode(t, err, LeaseHeldCode, "session B")
	_, err = c.Restore(ctx, &pb.RestoreRequest{Group: SessionGroup("A", "T#1")})
	testCode(t, err, LeaseHeldCode, "session B")
}

// TestLeaseHeldUntilExpiry: a lease whose holder stops sending heartbeats
// is refused to others until it expires, then taken; Hello answers
// throughout.
func TestLeaseHeldUntilExpiry(t *testing.T) {
	_, c := testServerOpts(t, Options{Lab: true, LeaseTTL: 300 * time.Millisecond})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "A"})
	require.NoError(t, err)
	_, err = c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "B"})
	testCode(t, err, LeaseHeldCode, "session A")
	testWaitFor(t, "A's lease to expire", 10*time.Second, func() bool {
		_, err := c.Hello(ctx, &pb.HelloRequest{})
		require.NoError(t, err, "Hello answers while A holds the lease")
		_, err = c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "B"})
		if err != nil {
			require.True(t, IsLeaseHeld(err), "B refused for another reason than A's lease: %v", err)
		}
		return err == nil
	})
	_, err = c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: SessionGroup("B", "T#1"), Kind: kindSysctl, Key: "net.ipv4.ip_forward", Value: "1"})
	require.NoError(t, err, "B's change once A's lease expired")
	_, err = c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: "A"})
	testCode(t, err, codes.FailedPrecondition, "lease of session A expired")
}
