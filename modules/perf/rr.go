package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The request/response tool, like neper's tcp_rr, udp_rr and tcp_crr:
// a client sends a request of MsgSize bytes and waits for a response of
// the same size from the server, over Streams connections at once (each
// its own goroutine doing blocking system calls on a socket kept out of
// the runtime's netpoller, see rrfd.go),
// counting transactions and their latency in fixed reporting intervals;
// tcp_crr opens a new connection for each transaction. It runs in the
// test binary on the hosts (modules perf.rr-server and perf.rr-client,
// see modules.go), so nothing needs installing there.

// RRConfig configures both ends of the request/response tool.
type RRConfig struct {
	// Kind is tcp_rr, udp_rr or tcp_crr.
	Kind FlowKind `json:"kind"`
	// Addr is the server's address: where it listens, where the client
	// connects. Port is its port.
	Addr string `json:"addr"`
	Port int    `json:"port"`
	// MsgSize is the size of a request and of its response; 0 means 1.
	MsgSize int `json:"msg_size"`
	// Streams is the number of connections the client runs at once; 0
	// means 1.
	Streams int `json:"streams"`
	// StartAt is when the client starts sending (it connects before);
	// the zero time means at once. Duration is how long it sends;
	// Interval the length of its reporting intervals (0: Duration).
	StartAt  time.Time     `json:"start_at"`
	Duration time.Duration `json:"duration"`
	Interval time.Duration `json:"interval"`
	// CPU pins the process to a CPU ("3"); "" leaves it free.
	CPU string `json:"cpu"`
	// MPTCP makes the TCP kinds' sockets IPPROTO_MPTCP (262): the client
	// fails when a connection falls back to plain TCP.
	MPTCP bool `json:"mptcp,omitempty"`
}

// maxRRMsgSize is the largest message of kind: a UDP datagram's 65000
// bytes, or 16 MiB over TCP (messages of megabytes keep an MPTCP
// connection's subflows busy enough that its scheduler uses them all).
func maxRRMsgSize(k FlowKind) int {
	if k == UDPRR {
		return 65000
	}
	return 16 << 20
}

func (c RRConfig) msgSize() int { return max(c.MsgSize, 1) }

func (c RRConfig) hostPort() string { return net.JoinHostPort(c.Addr, strconv.Itoa(c.Port)) }

func (c RRConfig) validate() error {
	switch {
	case c.Kind != TCPRR && c.Kind != UDPRR && c.Kind != TCPCRR:
		return fmt.Errorf("rr: Kind %q is not tcp_rr, udp_rr or tcp_crr", c.Kind)
	case c.Port <= 0 || c.Port > 65535:
		return fmt.Errorf("rr: Port %d is not in 1..65535", c.Port)
	case c.MsgSize < 0 || c.MsgSize > maxRRMsgSize(c.Kind):
		return fmt.Errorf("rr: MsgSize %d is not in 0..%d (%s)", c.MsgSize, maxRRMsgSize(c.Kind), c.Kind)
	case c.Streams < 0:
		return fmt.Errorf("rr: Streams %d is negative", c.Streams)
	case c.Duration < 0 || c.Interval < 0:
		return fmt.Errorf("rr: Duration %v or Interval %v is negative", c.Duration, c.Interval)
	case c.MPTCP && c.Kind == UDPRR:
		return fmt.Errorf("rr: MPTCP runs over the TCP kinds, not %s", c.Kind)
	}
	if _, err := parseCPU(c.CPU); err != nil {
		return fmt.Errorf("rr: %w", err)
	}
	return nil
}

// RRInterval is what the client counted in one reporting interval.
type RRInterval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Trans is the number of transactions completed in it (by their
	// end); Lat their latencies.
	Trans uint64    `json:"trans"`
	Lat   Histogram `json:"lat"`
}

// RRResult is what an RR client measured.
type RRResult struct {
	Intervals []RRInterval `json:"intervals"`
	// Timeouts are UDP requests that got no response within a second.
	Timeouts uint64 `json:"timeouts"`
}

// RRServerResult is what an RR server served.
type RRServerResult struct {
	Trans uint64 `json:"trans"`
}

// parseCPU reads a CPU number; "" is -1, no pinning.
func parseCPU(s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("CPU %q is not a CPU number (\"3\")", s)
	}
	return n, nil
}

// pinProcess pins every thread of this process to cpu (threads made
// later inherit it); -1 does nothing.
func pinProcess(cpu int) error {
	if cpu < 0 {
		return nil
	}
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pin to CPU %d: %w", cpu, err)
		}
	}
	return nil
}

// rrListen makes the server's sockets: a TCP listener or a UDP socket.
func rrListen(c RRConfig) (net.Listener, net.PacketConn, error) {
	if c.Kind == UDPRR {
		pc, err := net.ListenPacket("udp", c.hostPort())
		return nil, pc, err
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(c.MPTCP)
	l, err := lc.Listen(context.Background(), "tcp", c.hostPort())
	return l, nil, err
}

// rrServe serves requests on l or pc until ctx ends: it answers each
// request of MsgSize bytes with as many, and for tcp_crr closes the
// connection after the response.
func rrServe(ctx context.Context, c RRConfig, l net.Listener, pc net.PacketConn) (RRServerResult, error) {
	var mu sync.Mutex
	var res RRServerResult
	count := func(n uint64) {
		mu.Lock()
		res.Trans += n
		mu.Unlock()
	}
	var wg sync.WaitGroup
	size := c.msgSize()
	if pc != nil {
		b, err := connFD(pc.(net.Conn))
		if err != nil {
			return res, err
		}
		if err := b.setRecvTimeout(200 * time.Millisecond); err != nil { // to see ctx end
			b.close()
			return res, err
		}
		wg.Go(func() {
			buf := make([]byte, 65536)
			var n uint64
			defer func() { count(n) }()
			for ctx.Err() == nil {
				k, from, err := unix.Recvfrom(b.fd, buf, 0)
				switch {
				case errors.Is(err, unix.EINTR) || isTimeout(err):
					continue
				case err != nil:
					return
				}
				if err := unix.Sendto(b.fd, buf[:k], 0, from); err == nil {
					n++
				}
			}
		})
		wg.Wait()
		b.close()
		return res, nil
	}
	var conns sync.Map
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			b, err := connFD(conn)
			if err != nil {
				continue
			}
			conns.Store(b, true)
			wg.Go(func() {
				defer conns.Delete(b)
				defer b.close()
				buf := make([]byte, size)
				var n uint64
				defer func() { count(n) }()
				for {
					if err := b.readFull(buf); err != nil {
						return
					}
					if err := b.write(buf); err != nil {
						return
					}
					n++
					if c.Kind == TCPCRR {
						return
					}
				}
			})
		}
	})
	<-ctx.Done()
	l.Close()
	conns.Range(func(k, _ any) bool {
		k.(*blockingFD).shutdown() // wakes its reader
		return true
	})
	wg.Wait()
	return res, nil
}

// rrClient runs the client of c: it connects, waits for StartAt, runs
// transactions on Streams connections for Duration and returns the
// intervals' counts. It stops early, returning what it counted, when ctx
// ends.
func rrClient(ctx context.Context, c RRConfig) (RRResult, error) {
	streams := max(c.Streams, 1)
	size := c.msgSize()
	dial := func() (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		proto := "tcp"
		if c.Kind == UDPRR {
			proto = "udp"
		}
		d.SetMultipathTCP(c.MPTCP)
		conn, err := d.DialContext(ctx, proto, c.hostPort())
		if err == nil && c.MPTCP {
			err = checkMPTCP(conn)
		}
		return conn, err
	}
	var fds []*blockingFD
	defer func() {
		for _, b := range fds {
			b.close()
		}
	}()
	if c.Kind != TCPCRR {
		for range streams {
			conn, err := dial()
			if err != nil {
				return RRResult{}, fmt.Errorf("rr client: connect to %s: %w", c.hostPort(), err)
			}
			b, err := connFD(conn)
			if err == nil {
				// A lost UDP response, or a server gone silent, ends a
				// wait: a UDP request is counted lost after 1s.
				wait := 10 * time.Second
				if c.Kind == UDPRR {
					wait = time.Second
				}
				err = b.setRecvTimeout(wait)
			}
			if err != nil {
				return RRResult{}, fmt.Errorf("rr client: %w", err)
			}
			fds = append(fds, b)
		}
	}
	stopWatch := context.AfterFunc(ctx, func() {
		for _, b := range fds {
			b.shutdown()
		}
	})
	defer stopWatch()
	select {
	case <-time.After(time.Until(c.StartAt)):
	case <-ctx.Done():
		return RRResult{}, ctx.Err()
	}
	// A client that got here late (or was given no start) measures from
	// now: its intervals say when it really ran.
	start := c.StartAt
	if now := time.Now(); start.IsZero() || now.Sub(start) > time.Millisecond {
		start = now
	}
	dur := c.Duration
	if dur == 0 {
		dur = time.Second
	}
	iv := c.Interval
	if iv <= 0 || iv > dur {
		iv = dur
	}
	n := int((dur + iv - 1) / iv)
	end := start.Add(dur)
	type perStream struct {
		counts   []uint64
		hists    []Histogram
		timeouts uint64
		err      error
	}
	per := make([]perStream, streams)
	var wg sync.WaitGroup
	for s := range streams {
		p := &per[s]
		p.counts, p.hists = make([]uint64, n), make([]Histogram, n)
		wg.Go(func() {
			req, resp := make([]byte, size), make([]byte, max(size, 65536))
			var b *blockingFD
			if c.Kind != TCPCRR {
				b = fds[s]
			}
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				var err error
				switch c.Kind {
				case TCPRR:
					if err = b.write(req); err == nil {
						err = b.readFull(resp[:size])
					}
				case TCPCRR:
					var cc net.Conn
					if cc, err = dial(); err == nil {
						if _, err = cc.Write(req); err == nil {
							_, err = io.ReadFull(cc, resp[:size])
						}
						cc.Close()
					}
				case UDPRR:
					if err = b.write(req); err == nil {
						_, err = b.read(resp)
					}
					if isTimeout(err) {
						p.timeouts++
						continue
					}
				}
				t1 := time.Now()
				if err != nil {
					if ctx.Err() == nil {
						p.err = err
					}
					return
				}
				if !t1.Before(end) {
					return // not within the measured time
				}
				i := min(int(t1.Sub(start)/iv), n-1)
				p.counts[i]++
				p.hists[i].Add(t1.Sub(t0))
			}
		})
	}
	wg.Wait()
	res := RRResult{Intervals: make([]RRInterval, n)}
	for i := range n {
		ri := &res.Intervals[i]
		ri.Start = start.Add(time.Duration(i) * iv)
		ri.End = start.Add(time.Duration(i+1) * iv)
		if ri.End.After(end) {
			ri.End = end
		}
		for _, p := range per {
			ri.Trans += p.counts[i]
			ri.Lat.Merge(&p.hists[i])
		}
	}
	for _, p := range per {
		res.Timeouts += p.timeouts
		if p.err != nil {
			return res, fmt.Errorf("rr client: %s to %s: %w", c.Kind, c.hostPort(), p.err)
		}
	}
	return res, nil
}

// checkMPTCP fails, closing conn, when conn is not a multipath TCP
// connection: the kernel has no MPTCP (Go then makes a TCP socket) or
// the connection fell back to TCP (the server did not answer MP_CAPABLE).
func checkMPTCP(conn net.Conn) error {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		conn.Close()
		return fmt.Errorf("rr: MPTCP: %T is not a TCP connection", conn)
	}
	mp, err := tc.MultipathTCP()
	if err == nil && !mp {
		err = errors.New("the connection is plain TCP (no MPTCP in the kernel, net.mptcp.enabled=0, or a fallback)")
	}
	if err != nil {
		conn.Close()
		return fmt.Errorf("rr: MPTCP to %s: %w", conn.RemoteAddr(), err)
	}
	return nil
}
