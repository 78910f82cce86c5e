package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Packet capture: an AF_PACKET socket of the agent on one device of a
// host, opened in the host's namespace, streamed to the controller (see
// CaptureStart in agent.proto). What bounds the agent's memory whatever
// the traffic: the kernel cuts each packet to snaplen (the filter's
// return value) and drops once the socket's receive buffer is full; the
// agent keeps at most queue_bytes of packets waiting to be sent (more is
// dropped and counted), and stops the capture after max_bytes.

// Capture bounds: defaults and the most a request may ask for.
const (
	defaultSnaplen    = 262144
	defaultMaxBytes   = 64 << 20
	defaultQueueBytes = 4 << 20
	maxQueueBytes     = 64 << 20
	// captureBatchBytes is the most packet bytes one CapturePackets
	// message carries: well under gRPC's 4 MiB message limit.
	captureBatchBytes = 1 << 20
	// captureRcvBuf is the socket's receive buffer: what the kernel holds
	// while the agent is busy.
	captureRcvBuf = 4 << 20
	// maxFilterLen is the kernel's BPF_MAXINSNS.
	maxFilterLen = 4096
)

// captureSet holds the running captures of every host, by host and id.
type captureSet struct {
	mu   sync.Mutex
	next int64
	byID map[captureKey]*capture
}

type captureKey struct {
	host string
	id   int64
}

func (cs *captureSet) add(host string, c *capture) int64 {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.byID == nil {
		cs.byID = map[captureKey]*capture{}
	}
	cs.next++
	cs.byID[captureKey{host, cs.next}] = c
	return cs.next
}

func (cs *captureSet) get(host string, id int64) *capture {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.byID[captureKey{host, id}]
}

func (cs *captureSet) remove(host string, id int64) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.byID, captureKey{host, id})
}

// stopHost stops every capture of a host (it is being destroyed).
func (cs *captureSet) stopHost(host string) {
	cs.mu.Lock()
	var cs2 []*capture
	for k, c := range cs.byID {
		if k.host == host {
			cs2 = append(cs2, c)
		}
	}
	cs.mu.Unlock()
	for _, c := range cs2 {
		c.stop()
	}
}

// capture is one running capture: a reader goroutine fills queue from the
// socket; the CaptureStart call sends what it holds.
type capture struct {
	sock       *packetSocket
	maxBytes   int64
	queueBytes int64

	queue  chan *pb.CapturePacket
	queued atomic.Int64 // bytes in queue

	packets, bytes, queueDropped int64 // written by the reader only
	truncated                    bool
	readErr                      error

	stopOnce sync.Once
}

// CaptureStart starts a capture and streams it until it stops.
func (s *Server) CaptureStart(req *pb.CaptureStartRequest, stream grpc.ServerStreamingServer[pb.CaptureEvent]) error {
	h, err := s.host(req.Host)
	if err != nil {
		return err
	}
	c, err := newCapture(h, req)
	if err != nil {
		return failed(fmt.Errorf("capture on %s of %s: %w", req.Device, hostLabel(req.Host), err))
	}
	id := s.captures.add(req.Host, c)
	defer s.captures.remove(req.Host, id)
	defer c.stop()
	var seq uint64
	if req.Group != "" {
		if seq, err = s.record(req.Group, undo{Op: opStopCapture, Host: req.Host, Job: id}); err != nil {
			return err
		}
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		c.read()
	}()
	ctx := stream.Context()
	go func() {
		select {
		case <-ctx.Done():
			c.stop()
		case <-readDone:
		}
	}()
	s.log.Debug("capture started", "host", req.Host, "dev", req.Device, "id", id)
	started := &pb.CaptureStarted{Id: id, Seq: seq, LinkType: int32(c.sock.linkType), Snaplen: int32(c.sock.snaplen)}
	if err := stream.Send(&pb.CaptureEvent{Event: &pb.CaptureEvent_Started{Started: started}}); err != nil {
		return err
	}
	if err := c.send(stream); err != nil {
		return err
	}
	<-readDone
	return stream.Send(&pb.CaptureEvent{Event: &pb.CaptureEvent_End{End: c.end()}})
}

// CaptureStop stops a capture; its stream ends once it sent the rest.
func (s *Server) CaptureStop(_ context.Context, req *pb.CaptureRef) (*pb.Empty, error) {
	c := s.captures.get(req.Host, req.Id)
	if c == nil {
		return nil, status.Errorf(codes.NotFound, "%s has no running capture %d", hostLabel(req.Host), req.Id)
	}
	c.stop()
	return &pb.Empty{}, nil
}

// stopCapture is the undo of a capture's start; a capture that ended is
// nothing to undo.
func (s *Server) stopCapture(u undo) {
	if c := s.captures.get(u.Host, u.Job); c != nil {
		c.stop()
	}
}

func newCapture(h *host, req *pb.CaptureStartRequest) (*capture, error) {
	snaplen := int(req.Snaplen)
	if snaplen <= 0 || snaplen > defaultSnaplen {
		snaplen = defaultSnaplen
	}
	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = defaultMaxBytes
	}
	queueBytes := req.QueueBytes
	if queueBytes <= 0 {
		queueBytes = defaultQueueBytes
	}
	queueBytes = min(queueBytes, maxQueueBytes)
	prog, err := captureFilter(req.Filter, snaplen)
	if err != nil {
		return nil, badArg(err)
	}
	if req.Device == "" {
		return nil, badArg(errors.New("no device named"))
	}
	link, err := h.nl.LinkByName(req.Device)
	if err != nil {
		return nil, badArg(fmt.Errorf("find device: %w", err))
	}
	var sock *packetSocket
	err = h.do(func() error {
		var err error
		sock, err = openPacketSocket(link.Attrs().Index, link.Attrs().EncapType, prog, snaplen)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(req.Filter) > 0 && int(req.FilterLinkType) != sock.linkType {
		sock.close()
		return nil, badArg(fmt.Errorf("the filter is compiled for link type %d, but the device's packets are of link type %d", req.FilterLinkType, sock.linkType))
	}
	return &capture{
		sock: sock, maxBytes: maxBytes, queueBytes: queueBytes,
		// A packet takes at least 64 bytes of the queue's budget, so
		// queueBytes/64 entries never block the reader before the budget.
		queue: make(chan *pb.CapturePacket, queueBytes/64),
	}, nil
}

// captureFilter checks a request's BPF program and bounds what it keeps
// of a packet to snaplen; no program keeps every packet, cut to snaplen.
func captureFilter(in []*pb.CaptureInstruction, snaplen int) ([]sockFilter, error) {
	if len(in) == 0 {
		return []sockFilter{{Code: bpfRetK, K: uint32(snaplen)}}, nil
	}
	if len(in) > maxFilterLen {
		return nil, fmt.Errorf("filter has %d instructions, more than the kernel's %d", len(in), maxFilterLen)
	}
	prog := make([]sockFilter, len(in))
	for i, ins := range in {
		if ins.Op > 0xffff || ins.Jt > 0xff || ins.Jf > 0xff {
			return nil, fmt.Errorf("filter instruction %d {%d %d %d %d} is not a classic BPF instruction", i, ins.Op, ins.Jt, ins.Jf, ins.K)
		}
		prog[i] = sockFilter{Code: uint16(ins.Op), Jt: uint8(ins.Jt), Jf: uint8(ins.Jf), K: ins.K}
		if prog[i].Code == bpfRetK && prog[i].K > uint32(snaplen) {
			prog[i].K = uint32(snaplen)
		}
	}
	return prog, nil
}

// stop ends the capture: the reader takes what the socket holds and ends.
func (c *capture) stop() {
	c.stopOnce.Do(c.sock.stop)
}

// read moves packets from the socket to the queue until the capture stops,
// fails or reaches maxBytes; then it closes the socket and the queue.
func (c *capture) read() {
	defer close(c.queue)
	defer c.sock.close()
	for {
		pk, err := c.sock.next()
		if err != nil {
			if !errors.Is(err, errStopped) {
				c.readErr = err
			}
			return
		}
		p := capturedPacket(pk)
		n := int64(len(p.Data))
		if c.bytes+n > c.maxBytes {
			c.truncated = true
			return
		}
		c.packets++
		c.bytes += n
		size := n + 64
		if c.queued.Load()+size > c.queueBytes {
			c.queueDropped++
			continue
		}
		select {
		case c.queue <- p:
			c.queued.Add(size)
		default:
			c.queueDropped++
		}
	}
}

// send streams the queue's packets in batches until the queue is closed.
func (c *capture) send(stream grpc.ServerStreamingServer[pb.CaptureEvent]) error {
	for p := range c.queue {
		batch := []*pb.CapturePacket{p}
		size := len(p.Data)
	more:
		for size < captureBatchBytes {
			select {
			case q, ok := <-c.queue:
				if !ok {
					break more
				}
				batch = append(batch, q)
				size += len(q.Data)
			default:
				break more
			}
		}
		c.queued.Add(-int64(size + 64*len(batch)))
		if err := stream.Send(&pb.CaptureEvent{Event: &pb.CaptureEvent_Packets{Packets: &pb.CapturePackets{Packets: batch}}}); err != nil {
			c.stop()
			for range c.queue {
			}
			return err
		}
	}
	return nil
}

// end is the capture's end event; valid once read has returned.
func (c *capture) end() *pb.CaptureEnd {
	e := &pb.CaptureEnd{Packets: c.packets, Bytes: c.bytes, QueueDropped: c.queueDropped, KernelDropped: c.sock.dropped, Truncated: c.truncated}
	if c.readErr != nil {
		e.Error = c.readErr.Error()
	}
	return e
}

// capturedPacket makes the message of a packet read from the socket.
func capturedPacket(pk packetRead) *pb.CapturePacket {
	return &pb.CapturePacket{Time: timestamppb.New(pk.time), Length: int32(pk.length), Data: pk.data, Outgoing: pk.outgoing}
}
