package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/gopacket/gopacket/layers"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/packets"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Capture is a packet capture on a device, started by Device.Capture. The
// agent captures with an AF_PACKET socket (no tcpdump on the host) and
// streams the packets here, where the handle keeps them in memory. The
// capture stops with Stop, or at the end of the test.
type Capture struct {
	dev     *Device
	filter  string
	id      int64
	snaplen int
	lt      layers.LinkType
	cancel  context.CancelFunc
	done    chan struct{}

	mu   sync.Mutex
	pkts []packets.Packet
	// sink, when set, takes each packet instead of pkts (the pcapng
	// file of -lnst.capture).
	sink    func(*packets.Packet) error
	end     *pb.CaptureEnd
	err     error
	stopped bool
}

// CaptureOpt is an option of Device.Capture and ExpectPackets.
type CaptureOpt func(*captureOpts)

type captureOpts struct {
	snaplen  int
	maxBytes int64
}

// CaptureSnaplen keeps at most n bytes of each packet (default 262144,
// whole packets; 0 keeps the default).
func CaptureSnaplen(n int) CaptureOpt { return func(o *captureOpts) { o.snaplen = n } }

// CaptureMaxBytes stops the capture after n captured bytes (default 64
// MiB): the bound on what a capture holds in memory.
func CaptureMaxBytes(n int64) CaptureOpt { return func(o *captureOpts) { o.maxBytes = n } }

// CaptureStats counts what a capture got and lost.
type CaptureStats struct {
	// Packets and Bytes are what the agent captured.
	Packets, Bytes int64
	// KernelDropped were lost in the host's socket buffer, QueueDropped
	// in the agent's send queue: both mean the capture could not keep up.
	KernelDropped, QueueDropped int64
	// Truncated: the capture reached its CaptureMaxBytes and stopped.
	Truncated bool
}

// Lost reports whether the capture missed packets that matched its
// filter: dropped ones, or all after it was truncated.
func (s CaptureStats) Lost() bool { return s.KernelDropped+s.QueueDropped > 0 || s.Truncated }

// Capture starts capturing the device's packets that filter selects and
// returns once the capture runs: every packet the device sends or
// receives from then on is captured. filter is in tcpdump's syntax
// ("icmp", "udp port 4789"), compiled to BPF by tcpdump on the controller
// or, where the controller has none, on the host; "" captures every
// packet and needs no tcpdump. With no tcpdump anywhere, capture with ""
// and select packets in Go with a packets.Match (Capture.Match).
//
// On an Ethernet device, a filter runs on the packet as the kernel hands
// it over, after the 802.1Q tag was taken off: "vlan 10" does not match
// there, packets.Match{VLAN: 10} does (the capture puts the tag back).
func (d *Device) Capture(t testing.TB, filter string, opts ...CaptureOpt) *Capture {
	t.Helper()
	c, err := d.startCapture(t, filter, opts...)
	if err != nil {
		t.Fatalf("%s: capture on %s: %v", d.host.name, d.name, err)
	}
	t.Cleanup(func() { c.stop(rpcCtx(t)) })
	return c
}

func (d *Device) startCapture(t testing.TB, filter string, opts ...CaptureOpt) (*Capture, error) {
	t.Helper()
	var o captureOpts
	for _, opt := range opts {
		opt(&o)
	}
	st := d.host.s.state(t)
	req := &pb.CaptureStartRequest{Host: d.host.id, Group: st.group, Device: d.name, Snaplen: int32(o.snaplen), MaxBytes: o.maxBytes}
	if filter != "" {
		lt := layers.LinkTypeEthernet
		if len(d.Info(t).HWAddr) == 0 {
			lt = layers.LinkTypeRaw
		}
		snaplen := o.snaplen
		if snaplen <= 0 {
			snaplen = 262144
		}
		prog, err := compileFilter(rpcCtx(t), d.host, filter, lt, snaplen)
		if err != nil {
			return nil, err
		}
		req.Filter, req.FilterLinkType = prog, int32(lt)
	}
	// The stream outlives the test's context, cancelled before cleanups
	// run: the capture's end is read at cleanup.
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	stream, err := d.host.client.CaptureStart(ctx, req)
	var ev *pb.CaptureEvent
	if err == nil {
		ev, err = stream.Recv()
	}
	if err == nil && ev.GetStarted() == nil {
		err = fmt.Errorf("agent sent %v before the capture started", ev)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("filter %q: %w", filter, err)
	}
	st.use(d.host.client)
	started := ev.GetStarted()
	c := &Capture{dev: d, filter: filter, id: started.Id, snaplen: int(started.Snaplen), lt: layers.LinkType(started.LinkType), cancel: cancel, done: make(chan struct{})}
	st.logger().Debug("capture started", "host", d.host.name, "dev", d.name, "filter", filter, "id", c.id)
	go c.receive(stream)
	return c, nil
}

// receive takes the capture's stream until it ends.
func (c *Capture) receive(stream interface {
	Recv() (*pb.CaptureEvent, error)
}) {
	defer close(c.done)
	defer c.cancel()
	for {
		ev, err := stream.Recv()
		if err != nil {
			c.mu.Lock()
			if !errors.Is(err, io.EOF) && c.end == nil {
				c.err = err
			}
			c.mu.Unlock()
			return
		}
		if e := ev.GetEnd(); e != nil {
			c.mu.Lock()
			c.end = e
			c.mu.Unlock()
			continue
		}
		for _, p := range ev.GetPackets().GetPackets() {
			pk := packets.Packet{Time: p.Time.AsTime(), Length: int(p.Length), Data: p.Data, LinkType: c.lt, Outgoing: p.Outgoing}
			c.mu.Lock()
			if c.sink != nil {
				if err := c.sink(&pk); err != nil && c.err == nil {
					c.err = err
				}
			} else {
				c.pkts = append(c.pkts, pk)
			}
			c.mu.Unlock()
		}
	}
}

// stop stops the capture and waits for its stream's end; an error says
// why the capture failed.
func (c *Capture) stop(ctx context.Context) error {
	c.mu.Lock()
	stopped := c.stopped
	c.stopped = true
	c.mu.Unlock()
	if !stopped {
		_, err := c.dev.host.client.CaptureStop(ctx, &pb.CaptureRef{Host: c.dev.host.id, Id: c.id})
		if err != nil && status.Code(err) != codes.NotFound {
			// The capture is beyond reach: let its stream go, which
			// stops it on the agent.
			c.cancel()
		}
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		c.cancel()
		<-c.done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return c.err
	case c.end == nil:
		return errors.New("the capture's stream ended without its end")
	case c.end.Error != "":
		return errors.New(c.end.Error)
	}
	return nil
}

// Stop stops the capture and waits until every packet it got is here. It
// fails the test if the capture failed. Stopping again does nothing.
func (c *Capture) Stop(t testing.TB) {
	t.Helper()
	if err := c.stop(rpcCtx(t)); err != nil {
		t.Fatalf("%s: capture %q on %s: %v", c.dev.host.name, c.filter, c.dev.name, err)
	}
}

// Packets stops the capture (Stop) and returns every packet it got, in
// the order the host saw them. Packet.Decode gives their layers.
func (c *Capture) Packets(t testing.TB) []packets.Packet {
	t.Helper()
	c.Stop(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pkts
}

// Match stops the capture and returns its packets that m matches.
func (c *Capture) Match(t testing.TB, m packets.Matcher) []packets.Packet {
	t.Helper()
	return packets.Filter(c.Packets(t), m)
}

// Stats stops the capture and counts what it got and lost.
func (c *Capture) Stats(t testing.TB) CaptureStats {
	t.Helper()
	c.Stop(t)
	return c.stats()
}

func (c *Capture) stats() CaptureStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.end
	if e == nil {
		return CaptureStats{}
	}
	return CaptureStats{Packets: e.Packets, Bytes: e.Bytes, KernelDropped: e.KernelDropped, QueueDropped: e.QueueDropped, Truncated: e.Truncated}
}

// iface describes the capture's interface in a pcapng file.
func (c *Capture) iface() packets.Interface {
	return packets.Interface{Name: c.dev.host.name + ":" + c.dev.name, Filter: c.filter, LinkType: c.lt, Snaplen: c.snaplen}
}

// WriteTo writes the packets captured so far to w as a pcapng file, which
// tcpdump -r and Wireshark read: io.WriterTo. Stop the capture first to
// write all of them.
func (c *Capture) WriteTo(w io.Writer) (int64, error) {
	c.mu.Lock()
	pkts := c.pkts
	c.mu.Unlock()
	cw := &countWriter{w: w}
	err := packets.WritePcapng(cw, c.iface(), pkts)
	return cw.n, err
}

// WriteFile stops the capture and writes its packets to path as a pcapng
// file.
func (c *Capture) WriteFile(t testing.TB, path string) {
	t.Helper()
	c.Stop(t)
	f, err := os.Create(path)
	if err == nil {
		_, err = c.WriteTo(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("%s: write capture of %s to %s: %v", c.dev.host.name, c.dev.name, path, err)
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
