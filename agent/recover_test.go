package agent

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// testLog is a logger whose lines a test reads.
type testLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *testLog) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: l, Level: hclog.Info})
}

// testLogLine returns the line of log holding every one of want, or "".
func testLogLine(log string, want ...string) string {
	for _, line := range strings.Split(log, "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return line
		}
	}
	return ""
}

// TestNewServerTakesBackPreviousRun starts a server on a journal a crashed
// agent left. Its entries touch nothing in this namespace: a device that
// is not there, a value written back as it is, one that fails before it
// acts, and entries of namespace hosts and jobs, which are dropped.
func TestNewServerTakesBackPreviousRun(t *testing.T) {
	ttl, err := os.ReadFile("/proc/sys/net/ipv4/ip_default_ttl")
	require.NoError(t, err)
	path := testJournalPath(t)
	jf, _ := testOpenJournal(t, path, false)
	for _, u := range []undo{
		{Seq: 1, Group: "g", Op: opWriteValue, ValueKind: kindSysctl, Key: "net.ipv4.ip_default_ttl", Value: strings.TrimSpace(string(ttl))},
		{Seq: 2, Group: "g", Op: opDeleteLink, Link: "lnstnosuch0"},
		{Seq: 3, Group: "g", Op: opDeleteLink, Host: "h1", Link: "v0"},
		{Seq: 4, Group: "g", Op: opCreateLink, Kind: "dummy", Link: "lnstnosuch1"},
		{Seq: 5, Group: "g", Op: opStopJob, Job: 7},
		{Seq: 6, Group: "g", Op: opDestroyHost, Host: "h1"},
	} {
		require.NoError(t, jf.add(u))
	}
	require.NoError(t, jf.close())

	var log testLog
	srv, err := NewServer(Options{JournalPath: path, Logger: log.logger()})
	require.NoError(t, err)
	defer srv.Shutdown()
	out := log.String()
	assert.NotEmpty(t, testLogLine(out, "[WARN]", "a previous agent left changes", "entries=6"), "log:\n%s", out)
	assert.NotEmpty(t, testLogLine(out, "[INFO]", "undone", "net.ipv4.ip_default_ttl"), "log:\n%s", out)
	assert.NotEmpty(t, testLogLine(out, "[INFO]", "nothing to undo", "lnstnosuch0"), "log:\n%s", out)
	assert.NotEmpty(t, testLogLine(out, "[ERROR]", "undo failed", "lnstnosuch1", "cannot recreate a device of kind dummy"), "log:\n%s", out)
	for _, what := range []string{`delete link v0 on host \"h1\"`, "stop job 7", `destroy host \"h1\"`} {
		assert.NotEmpty(t, testLogLine(out, "[INFO]", "dropped an entry of the previous agent", what), "log:\n%s", out)
	}
	assert.Less(t, strings.Index(out, "lnstnosuch1"), strings.Index(out, "lnstnosuch0"), "newest first")
	assert.Equal(t, int64(journalHeaderLen), testFileSize(t, path), "compacted")

	_, err = NewServer(Options{JournalPath: path})
	assert.ErrorContains(t, err, "in use by another agent")
	srv.Shutdown()
	srv2, err := NewServer(Options{JournalPath: path})
	require.NoError(t, err, "Shutdown releases the journal")
	srv2.Shutdown()
}

func TestNewServerCorruptJournal(t *testing.T) {
	path, offs := testWriteJournal(t, 3)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[offs[1]+recordHeaderLen] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o600))
	_, err = NewServer(Options{JournalPath: path})
	var ce *JournalCorruptError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, offs[1], ce.Offset)

	// The entries delete devices this namespace does not have.
	var log testLog
	srv, err := NewServer(Options{JournalPath: path, JournalSkipCorrupt: true, Logger: log.logger()})
	require.NoError(t, err)
	defer srv.Shutdown()
	assert.NotEmpty(t, testLogLine(log.String(), "[ERROR]", "skipped a corrupt record", path), "log:\n%s", log.String())
	assert.NotEmpty(t, testLogLine(log.String(), "entries=2"), "log:\n%s", log.String())
}

// testRestoreClean restores group g and checks it had n entries, no
// failure, and logged skips for every one of skipped.
func testRestoreClean(t *testing.T, c pb.AgentClient, log *testLog, g string, n int, skipped ...string) {
	t.Helper()
	r, err := c.Restore(testCtx(t), &pb.RestoreRequest{Group: g})
	require.NoError(t, err)
	assert.Empty(t, r.Errors)
	assert.Equal(t, int32(n), r.Undone)
	for _, s := range skipped {
		assert.NotEmpty(t, testLogLine(log.String(), "[INFO]", "nothing to undo", s), "no skip of %q logged:\n%s", s, log.String())
	}
}

func TestRestoreAfterDeviceDeletedByHand(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	change := func(_ *pb.ChangeReply, err error) {
		t.Helper()
		require.NoError(t, err)
	}
	change(c.CreateLink(ctx, &pb.CreateLinkRequest{Host: "h1", Group: "g", Spec: &pb.CreateLinkRequest_Veth{Veth: &pb.VethSpec{Name: "v0", PeerName: "v1"}}}))
	change(c.SetLink(ctx, &pb.SetLinkRequest{Host: "h1", Group: "g", Name: "v0", Mtu: proto.Int32(1400), Up: proto.Bool(true)}))
	change(c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: "v0", Cidr: "198.18.9.1/24"}))
	change(c.AddRoute(ctx, &pb.RouteRequest{Host: "h1", Group: "g", Dst: "198.18.10.0/24", Dev: "v0"}))
	change(c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: "g", Kind: kindSysctl, Key: "net.ipv4.conf.v0.forwarding", Value: "1"}))
	change(c.WriteValue(ctx, &pb.WriteValueRequest{Host: "h1", Group: "g", Kind: kindSysfs, Key: "/sys/class/net/v0/tx_queue_len", Value: "50"}))

	testSh(t, c, "h1", "ip link del v0")
	testRestoreClean(t, c, &log, "g", 6, "delete link v0", "198.18.9.1/24", "198.18.10.0/24", "net/ipv4/conf/v0/forwarding", "/sys/class/net/v0/tx_queue_len")
	assert.Equal(t, []string{"lo"}, testLinkNames(t, c, "h1"))
}

func TestRestoreAfterAddressRemovedByHand(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: "lo", Cidr: "198.18.11.1/32"})
	require.NoError(t, err)
	_, err = c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "g", Name: "lo", Cidr: "2001:db8:11::1/128"})
	require.NoError(t, err)
	testSh(t, c, "h1", "ip addr del 198.18.11.1/32 dev lo && ip addr del 2001:db8:11::1/128 dev lo")
	testRestoreClean(t, c, &log, "g", 2, "198.18.11.1/32", "2001:db8:11::1/128")
}

func TestRestoreAfterRouteRemovedByHand(t *testing.T) {
	var log testLog
	_, c := testServerOpts(t, Options{Lab: true, Logger: log.logger()})
	ctx := testCtx(t)
	testHost(t, c, "h1")
	_, err := c.AddAddr(ctx, &pb.AddrRequest{Host: "h1", Group: "base", Name: "lo", Cidr: "198.18.12.1/24"})
	require.NoError(t, err)
	_, err = c.AddRoute(ctx, &pb.RouteRequest{Host: "h1", Group: "g", Dst: "198.18.13.0/24", Via: "198.18.12.2", Table: 100})
	require.NoError(t, err)
	_, err = c.AddRoute(ctx, &pb.RouteRequest{Host: "h1", Group: "g", Dst: "198.18.14.0/24", Dev: "lo"})
	require.NoError(t, err)
	testSh(t, c, "h1", "ip route del 198.18.13.0/24 table 100 && ip route del 198.18.14.0/24 dev lo")
	testRestoreClean(t, c, &log, "g", 2, "198.18.13.0/24", "198.18.14.0/24")

	// A route deleted by the test and put back by hand: adding it back
	// finds it there.
	_, err = c.AddRoute(ctx, &pb.RouteRequest{Host: "h1", Group: "base", Dst: "198.18.15.0/24", Dev: "lo"})
	require.NoError(t, err)
	_, err = c.DelRoute(ctx, &pb.RouteRequest{Host: "h1", Group: "g2", Dst: "198.18.15.0/24", Dev: "lo"})
	require.NoError(t, err)
	testSh(t, c, "h1", "ip route add 198.18.15.0/24 dev lo")
	testRestoreClean(t, c, &log, "g2", 1, "has route 198.18.15.0/24 dev lo already")
}
