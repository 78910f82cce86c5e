package perf

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
			var trans, hist uint64
			for i, iv := range res.Intervals {
				assert.Equal(t, cfg.StartAt.Add(time.Duration(i)*100*time.Millisecond), iv.Start, "interval %d", i)
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
		{func(c *RRConfig) { c.CPU = "x" }, `CPU "x"`},
	} {
		bad := ok
		c.mod(&bad)
		assert.ErrorContains(t, bad.validate(), c.want)
	}
}
