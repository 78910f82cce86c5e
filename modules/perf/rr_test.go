package perf

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestRRLoopback runs each RR kind between a server and a client in this
// process over loopback and checks that the client's intervals tile its
// run and that both ends counted the same transactions.
func TestRRLoopback(t *testing.T) {
	for _, kind := range []FlowKind{TCPRR, UDPRR, TCPCRR} {
		t.Run(string(kind), func(t *testing.T) {
			cfg := RRConfig{Kind: kind, Addr: "127.0.0.1", MsgSize: 100, Streams: 2,
				Duration: 300 * time.Millisecond, Interval: 100 * time.Millisecond}
			l, pc, err := rrListen(cfg)
			require.NoError(t, err)
			if l != nil {
				cfg.Port = l.Addr().(*net.TCPAddr).Port
			} else {
				cfg.Port = pc.LocalAddr().(*net.UDPAddr).Port
			}
			require.NoError(t, cfg.validate())
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan RRServerResult)
			go func() {
				r, err := rrServe(ctx, cfg, l, pc)
				assert.NoError(t, err)
				served <- r
			}()
			cfg.StartAt = time.Now().Add(50 * time.Millisecond)
			res, err := rrClient(context.Background(), cfg)
			require.NoError(t, err)
			cancel()
			srv := <-served

			require.Len(t, res.Intervals, 3)
			// The client measures from StartAt, or from when it got
			// there when that was over 1ms late (a loaded machine).
			start := res.Intervals[0].Start
			if !start.Equal(cfg.StartAt) {
				assert.True(t, start.After(cfg.StartAt.Add(time.Millisecond)), "start %v, StartAt %v", start, cfg.StartAt)
			}
			var trans, hist uint64
			for i, iv := range res.Intervals {
				assert.Equal(t, start.Add(time.Duration(i)*100*time.Millisecond), iv.Start, "interval %d", i)
				assert.Equal(t, iv.Start.Add(100*time.Millisecond), iv.End, "interval %d", i)
				assert.Positive(t, iv.Trans, "interval %d", i)
				assert.Equal(t, iv.Trans, iv.Lat.N, "every transaction has its latency")
				trans += iv.Trans
				hist += iv.Lat.N
				assert.Positive(t, iv.Lat.Percentile(0.5))
				assert.LessOrEqual(t, iv.Lat.Percentile(0.99), iv.Lat.Max)
			}
			// The server may have answered a request whose response came
			// after the client's end: one per stream at most.
			assert.GreaterOrEqual(t, srv.Trans, trans)
			assert.LessOrEqual(t, srv.Trans, trans+uint64(cfg.Streams)+res.Timeouts)
		})
	}
}

func TestRRConfigErrors(t *testing.T) {
	ok := RRConfig{Kind: TCPRR, Addr: "198.18.0.1", Port: 1}
	require.NoError(t, ok.validate())
	for _, c := range []struct {
		mod  func(*RRConfig)
		want string
	}{
		{func(c *RRConfig) { c.Kind = TCPStream }, `Kind "tcp_stream"`},
		{func(c *RRConfig) { c.Port = 70000 }, "Port 70000"},
		{func(c *RRConfig) { c.MsgSize = -1 }, "MsgSize -1"},
		{func(c *RRConfig) { c.MsgSize = 16<<20 + 1 }, "MsgSize 16777217"},
		{func(c *RRConfig) { c.Kind, c.MsgSize = UDPRR, 65001 }, "MsgSize 65001"},
		{func(c *RRConfig) { c.CPU = "x" }, `CPU "x"`},
		{func(c *RRConfig) { c.Kind, c.MPTCP = UDPRR, true }, "MPTCP runs over the TCP kinds"},
	} {
		bad := ok
		c.mod(&bad)
		assert.ErrorContains(t, bad.validate(), c.want)
	}
}

// TestRRMPTCP runs tcp_crr and tcp_rr over MPTCP on loopback, and checks
// that a client asking for MPTCP of a plain TCP server fails: the
// connection falls back to TCP.
func TestRRMPTCP(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/mptcp/enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Skip("the kernel has no MPTCP, or net.mptcp.enabled is not 1")
	}
	run := func(serverMPTCP bool, kind FlowKind) (RRResult, error) {
		cfg := RRConfig{Kind: kind, Addr: "127.0.0.1", MPTCP: serverMPTCP, Duration: 200 * time.Millisecond}
		l, _, err := rrListen(cfg)
		require.NoError(t, err)
		cfg.Port = l.Addr().(*net.TCPAddr).Port
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			_, _ = rrServe(ctx, cfg, l, nil)
			close(done)
		}()
		defer func() { cancel(); <-done }()
		cfg.MPTCP = true
		return rrClient(context.Background(), cfg)
	}
	for _, kind := range []FlowKind{TCPRR, TCPCRR} {
		res, err := run(true, kind)
		require.NoError(t, err, kind)
		require.NotEmpty(t, res.Intervals)
		assert.Positive(t, res.Intervals[0].Trans, kind)
	}
	_, err := run(false, TCPRR)
	assert.ErrorContains(t, err, "plain TCP")
}

// TestRRSocketOutOfNetpoller checks that connFD leaves the socket in no
// epoll set of this process (/proc/self/fdinfo of each epoll descriptor
// lists its watches by inode): a watch left on the runtime's netpoller
// wakes its epoll_wait thread on every message besides the blocked
// reader, which cost the RR round trip about 5 µs on the lab.
func TestRRSocketOutOfNetpoller(t *testing.T) {
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			var conn net.Conn
			if proto == "tcp" {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				defer l.Close()
				conn, err = net.Dial("tcp", l.Addr().String())
				require.NoError(t, err)
			} else {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				require.NoError(t, err)
				conn = pc.(net.Conn)
			}
			before := epollWatched(t)
			var st unix.Stat_t
			rc, err := conn.(syscall.Conn).SyscallConn()
			require.NoError(t, err)
			require.NoError(t, rc.Control(func(fd uintptr) {
				require.NoError(t, unix.Fstat(int(fd), &st))
			}))
			ino := fmt.Sprintf("%x", st.Ino)
			require.True(t, before[ino], "the %s socket (inode %s) should start in the netpoller's epoll set: %v", proto, ino, before)
			b, err := connFD(conn)
			require.NoError(t, err)
			defer b.close()
			assert.False(t, epollWatched(t)[ino], "the %s socket (inode %s) is still watched by an epoll set after connFD", proto, ino)
			// The socket is still open and usable through b.
			require.NoError(t, unix.Fstat(b.fd, &st))
			assert.Equal(t, ino, fmt.Sprintf("%x", st.Ino))
		})
	}
}

// epollWatched returns the inodes (hex, as fdinfo prints them) that the
// epoll descriptors of this process watch.
func epollWatched(t *testing.T) map[string]bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	out := map[string]bool{}
	for _, e := range fds {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || target != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(info)) {
			if ino, ok := strings.CutPrefix(f, "ino:"); ok {
				out[ino] = true
			}
		}
	}
	return out
}
