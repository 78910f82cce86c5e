package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxRoutesBatch bounds the routes of one AddRoutes call.
const maxRoutesBatch = 100000

// AddRoutes adds many routes, in order, each journaled as its own entry;
// the entries go to the journal file in one write. Each device is looked
// up once per batch. A route that fails stops the batch: the routes
// before it stay, and are journaled.
func (s *Server) AddRoutes(_ context.Context, req *pb.RoutesRequest) (*pb.ChangeReply, error) {
	if len(req.Routes) == 0 {
		return nil, invalid(errors.New("AddRoutes: no routes given"))
	}
	if len(req.Routes) > maxRoutesBatch {
		return nil, invalid(fmt.Errorf("AddRoutes: %d routes, more than %d in one call", len(req.Routes), maxRoutesBatch))
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	undos := make([]undo, 0, len(req.Routes))
	err = h.addRoutes(req.Routes, func(r route) {
		undos = append(undos, undo{Group: req.Group, Op: opDelRoute, Host: req.Host, Route: r})
	})
	if len(undos) == 0 {
		return nil, failed(err)
	}
	first, jerr := s.journal.addBatch(undos)
	if err != nil {
		return nil, failed(err)
	}
	if jerr != nil {
		return nil, status.Error(codes.Internal, fmt.Sprintf("the routes are added and Restore of group %q takes them back, but their undo is not on disk (a crash of the agent would leave them): %v", req.Group, jerr))
	}
	return &pb.ChangeReply{Seq: first}, nil
}

// addRoutes adds routes in order, calling added for each one added, until
// one fails. The routes go through h's routeSocket; a route it cannot
// encode goes through h.nl.
func (h *host) addRoutes(reqs []*pb.RouteRequest, added func(route)) error {
	index := map[string]int{}
	lookup := func(name string) (int, error) {
		if i, ok := index[name]; ok {
			return i, nil
		}
		i, err := h.linkIndex(name)
		if err == nil {
			index[name] = i
		}
		return i, err
	}
	return h.withRouteSocket(func(rs *routeSocket) error {
		for n, req := range reqs {
			r := routeOf(req)
			nr, err := h.netlinkRouteWith(r, lookup)
			if err == nil {
				if err = h.routeVia(rs, nr, false); err != nil {
					err = fmt.Errorf("add route %s on %s: %w", r, h.label(), err)
				}
			}
			if err != nil {
				return fmt.Errorf("route %d of %d: %w", n+1, len(reqs), err)
			}
			added(r)
		}
		return nil
	})
}

// routeSocket is a blocking rtnetlink socket that a batch of route changes
// goes through, one request and its ack at a time, as netlink.Handle does
// them. Unlike a Handle's socket, it is not in the Go runtime's poller: an
// agent always has goroutines waiting there (gRPC), so an idle thread
// sleeps in epoll_wait, and every ack to a polled socket wakes it. That
// wakeup cost a third more kernel time per route than the same calls in
// a process with nothing polled (BenchmarkRoutes10k).
type routeSocket struct {
	fd   int
	pid  uint32
	seq  uint32
	req  []byte
	resp []byte
}

// routeSocketIdle is how long a host's routeSocket stays open unused. It
// holds the host's network namespace: kept short, so that a destroyed
// host's namespace goes (nearly) when the host does.
const routeSocketIdle = 5 * time.Millisecond

// cachedRouteSocket is a host's routeSocket, closed once idle.
type cachedRouteSocket struct {
	mu   sync.Mutex // serialises the socket's requests
	rs   *routeSocket
	idle *time.Timer
}

// withRouteSocket calls f with h's routeSocket, opened if need be; f gets
// nil when it cannot be opened, and then goes through h.nl.
func (h *host) withRouteSocket(f func(rs *routeSocket) error) error {
	c := &h.routes
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rs == nil {
		if rs, err := h.openRouteSocket(); err == nil {
			c.rs = rs
		}
	}
	err := f(c.rs)
	if c.idle == nil {
		c.idle = time.AfterFunc(routeSocketIdle, c.close)
	} else {
		c.idle.Reset(routeSocketIdle)
	}
	return err
}

// close closes the routeSocket once idle.
func (c *cachedRouteSocket) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rs != nil {
		c.rs.close()
		c.rs = nil
	}
}

// openRouteSocket opens a routeSocket in h's network namespace.
func (h *host) openRouteSocket() (*routeSocket, error) {
	rs := &routeSocket{fd: -1}
	err := h.do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("open netlink socket: %w", err)
		}
		rs.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := rs.setup(); err != nil {
		rs.close()
		return nil, err
	}
	rs.req = make([]byte, 0, 256)
	rs.resp = make([]byte, 8192)
	return rs, nil
}

func (rs *routeSocket) setup() error {
	if err := unix.Bind(rs.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink socket: %w", err)
	}
	sa, err := unix.Getsockname(rs.fd)
	if err != nil {
		return fmt.Errorf("netlink socket address: %w", err)
	}
	nsa, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return fmt.Errorf("netlink socket address is a %T", sa)
	}
	rs.pid = nsa.Pid
	// As netlink.Handle's: a kernel that does not answer in a minute
	// fails the call rather than hanging it.
	tv := unix.Timeval{Sec: 60}
	if err := unix.SetsockoptTimeval(rs.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netlink socket timeout: %w", err)
	}
	return unix.SetsockoptTimeval(rs.fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
}

func (rs *routeSocket) close() {
	if rs.fd >= 0 {
		unix.Close(rs.fd)
		rs.fd = -1
	}
}

// add adds nr as netlink.Handle.RouteAdd does, setting *err to the
// kernel's answer. It returns false, having done nothing, for a route it
// does not encode: RouteAdd is then the way.
func (rs *routeSocket) add(nr *netlink.Route, err *error) bool {
	if !rs.encode(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK, nr) {
		return false
	}
	*err = rs.exec()
	return true
}

// del removes nr as netlink.Handle.RouteDel does; see add.
func (rs *routeSocket) del(nr *netlink.Route, err *error) bool {
	if !rs.encode(unix.RTM_DELROUTE, unix.NLM_F_ACK, nr) {
		return false
	}
	*err = rs.exec()
	return true
}

// encode puts the request for nr in rs.req, byte for byte what
// netlink.Handle's RouteAdd (RTM_NEWROUTE) or RouteDel (RTM_DELROUTE)
// sends for a route with a destination or a gateway, and any of link
// index, table, priority and an lwtEncap: every field netlinkRouteWith
// sets but MultiPath (Family netlink.Handle does not send either). It
// returns false for a multipath route, for an Encap of another type, for
// one with neither destination nor gateway and for one whose addresses
// are of two families: netlink.Handle refuses the last two with its own
// words.
func (rs *routeSocket) encode(typ, flags uint16, nr *netlink.Route) bool {
	if nr.Dst == nil && nr.Gw == nil || nr.Dst != nil && nr.Dst.IP == nil ||
		len(nr.MultiPath) > 0 || nr.Table < 0 || nr.Priority < 0 {
		return false
	}
	if e, ok := nr.Encap.(*lwtEncap); nr.Encap != nil && (!ok || e == nil) {
		return false
	}
	family := -1
	var dstLen int
	if nr.Dst != nil {
		dstLen, _ = nr.Dst.Mask.Size()
		family = nl.GetIPFamily(nr.Dst.IP)
	}
	if nr.Gw != nil {
		gwFamily := nl.GetIPFamily(nr.Gw)
		if family != -1 && family != gwFamily {
			return false
		}
		family = gwFamily
	}
	rs.seq++
	b := rs.req[:0]
	b = binary.NativeEndian.AppendUint32(b, 0) // length, set below
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST|flags)
	b = binary.NativeEndian.AppendUint32(b, rs.seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // pid: the kernel fills it in
	// struct rtmsg: family, dst_len, src_len, tos, table, protocol,
	// scope, type, flags. RouteAdd's starts as nl.NewRtMsg, RouteDel's as
	// nl.NewRtDelMsg; both then take the route's scope (0) and flags (0).
	table := uint8(unix.RT_TABLE_MAIN)
	if nr.Table > 0 {
		table = uint8(nr.Table)
		if nr.Table >= 256 {
			table = unix.RT_TABLE_UNSPEC
		}
	}
	protocol, typeOf := uint8(unix.RTPROT_BOOT), uint8(unix.RTN_UNICAST)
	if typ == unix.RTM_DELROUTE {
		protocol, typeOf = 0, 0
	}
	b = append(b, uint8(family), uint8(dstLen), 0, 0, table, protocol, unix.RT_SCOPE_UNIVERSE, typeOf)
	b = binary.NativeEndian.AppendUint32(b, 0)
	ip := func(a net.IP) []byte {
		if family == netlink.FAMILY_V4 {
			return a.To4()
		}
		return a.To16()
	}
	if nr.Dst != nil {
		b = appendAttr(b, unix.RTA_DST, ip(nr.Dst.IP))
	}
	if e, ok := nr.Encap.(*lwtEncap); ok {
		b = appendEncap(b, e)
	}
	if nr.Gw != nil {
		b = appendAttr(b, unix.RTA_GATEWAY, ip(nr.Gw))
	}
	if nr.Table >= 256 {
		b = appendAttrUint32(b, unix.RTA_TABLE, uint32(nr.Table))
	}
	if nr.Priority > 0 {
		b = appendAttrUint32(b, unix.RTA_PRIORITY, uint32(nr.Priority))
	}
	b = appendAttrUint32(b, unix.RTA_OIF, uint32(nr.LinkIndex))
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	rs.req = b
	return true
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofRtAttr+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func appendAttrUint32(b []byte, typ uint16, v uint32) []byte {
	b = binary.NativeEndian.AppendUint16(b, unix.SizeofRtAttr+4)
	b = binary.NativeEndian.AppendUint16(b, typ)
	return binary.NativeEndian.AppendUint32(b, v)
}

// exec sends rs.req and waits for its ack: nil, or the kernel's error as
// a syscall.Errno, as netlink.Handle returns it.
func (rs *routeSocket) exec() error {
	for {
		_, err := unix.Write(rs.fd, rs.req)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	for {
		n, err := unix.Read(rs.fd, rs.resp)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for m := rs.resp[:n]; len(m) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(m))
			if l < unix.SizeofNlMsghdr || l > len(m) {
				break
			}
			typ := binary.NativeEndian.Uint16(m[4:])
			seq := binary.NativeEndian.Uint32(m[8:])
			pid := binary.NativeEndian.Uint32(m[12:])
			if seq == rs.seq && pid == rs.pid && (typ == unix.NLMSG_ERROR || typ == unix.NLMSG_DONE) {
				if l < unix.SizeofNlMsghdr+4 {
					return nil
				}
				if errno := int32(binary.NativeEndian.Uint32(m[unix.SizeofNlMsghdr:])); errno != 0 {
					return syscall.Errno(-errno)
				}
				return nil
			}
			m = m[min(nlmAlign(l), len(m)):]
		}
	}
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// addBatch records entries as add does, one after the other, and writes
// the ones that go to disk in one write. It returns the first one's
// sequence number.
func (j *journal) addBatch(us []undo) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := range us {
		j.seq++
		us[i].Seq = j.seq
	}
	j.entries = append(j.entries, us...)
	if j.file == nil {
		return us[0].Seq, nil
	}
	return us[0].Seq, j.file.addMany(us)
}

// addMany appends an add record for each of us that is durable in one
// write. A route's record is encoded by hand (appendRouteRecord).
func (jf *journalFile) addMany(us []undo) error {
	// A route's record is some 130 bytes.
	b := make([]byte, 0, len(us)*160)
	type span struct {
		seq uint64
		n   int64
	}
	spans := make([]span, 0, len(us))
	for i := range us {
		u := &us[i]
		if !durable(*u) {
			continue
		}
		start := len(b)
		var ok bool
		if b, ok = appendRouteRecord(b, u); !ok {
			rec, err := encodeRecord(journalRecord{Op: recordAdd, Entry: u})
			if err != nil {
				return err
			}
			b = append(b, rec...)
		}
		spans = append(spans, span{u.Seq, int64(len(b) - start)})
	}
	if len(spans) == 0 {
		return nil
	}
	off := jf.size
	if err := jf.append(b); err != nil {
		return err
	}
	for _, sp := range spans {
		jf.live += sp.n - jf.pending[sp.seq].n
		jf.pending[sp.seq] = recSpan{off: off, n: sp.n}
		off += sp.n
	}
	return nil
}
