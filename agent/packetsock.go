package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pcap link types (LINKTYPE_*) of what a packet socket reads.
const (
	linkTypeEthernet = 1
	linkTypeRaw      = 101
)

// bpfRetK is BPF_RET|BPF_K: return the constant K.
const bpfRetK = 0x06

// maxDrain is the most packets a stopping capture still reads from its
// socket: under a flood the socket never runs dry.
const maxDrain = 65536

// sockFilter is a classic BPF instruction (struct sock_filter).
type sockFilter = unix.SockFilter

// errStopped ends a capture that was stopped.
var errStopped = errors.New("capture stopped")

// packetSocket is an AF_PACKET socket bound to one device. It is opened on
// the device's host thread (the socket belongs to the namespace it was
// made in) and read from any goroutine through the runtime's poller.
type packetSocket struct {
	file     *os.File
	raw      syscall.RawConn
	linkType int
	snaplen  int
	buf, oob []byte

	stopping atomic.Bool
	draining bool
	drained  int
	// dropped is what the kernel dropped (socket buffer full), read at
	// close.
	dropped int64
}

// packetRead is a packet as read from the socket.
type packetRead struct {
	time     time.Time
	length   int
	data     []byte
	outgoing bool
}

// openPacketSocket opens a packet socket on device ifindex, whose link
// encapsulation (netlink's EncapType) is encap, filtered by prog. An
// Ethernet (or loopback) device's packets are read whole, with their link
// header (LINKTYPE_ETHERNET); any other device's (tun, ip tunnels) from
// their network header (LINKTYPE_RAW). The filter is attached before the
// socket is bound to the device, so no packet it rejects is ever queued.
// It must run on the host's thread.
func openPacketSocket(ifindex int, encap string, prog []sockFilter, snaplen int) (*packetSocket, error) {
	typ, lt := unix.SOCK_DGRAM, linkTypeRaw
	if encap == "ether" || encap == "loopback" {
		typ, lt = unix.SOCK_RAW, linkTypeEthernet
	}
	// Protocol 0: the socket gets nothing until it is bound.
	fd, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	setup := func() error {
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
			return fmt.Errorf("attach filter: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return fmt.Errorf("set PACKET_AUXDATA: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return fmt.Errorf("set SO_TIMESTAMPNS: %w", err)
		}
		// FORCE (root) passes net.core.rmem_max; without it the kernel
		// caps the size, which is still a bound.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, captureRcvBuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, captureRcvBuf)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
			return fmt.Errorf("bind packet socket to device %d: %w", ifindex, err)
		}
		return nil
	}
	if err := setup(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "packet socket")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	return &packetSocket{
		file: f, raw: raw, linkType: lt, snaplen: snaplen,
		buf: make([]byte, snaplen),
		oob: make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{})))+unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))),
	}, nil
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// stop makes next return errStopped once the socket holds no more
// packets (or maxDrain more were read). It may be called from any
// goroutine.
func (s *packetSocket) stop() {
	s.stopping.Store(true)
	_ = s.file.SetReadDeadline(time.Now())
}

// next reads the next packet: it blocks until one comes or the socket is
// stopped.
func (s *packetSocket) next() (packetRead, error) {
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		recv := func(fd uintptr, flags int) {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), s.buf, s.oob, unix.MSG_TRUNC|flags)
		}
		if s.draining {
			if s.drained >= maxDrain {
				return packetRead{}, errStopped
			}
			s.drained++
			if err := s.raw.Control(func(fd uintptr) { recv(fd, unix.MSG_DONTWAIT) }); err != nil {
				return packetRead{}, err
			}
			if rerr == unix.EAGAIN {
				return packetRead{}, errStopped
			}
		} else {
			err := s.raw.Read(func(fd uintptr) bool {
				recv(fd, 0)
				return rerr != unix.EAGAIN
			})
			if err != nil {
				if s.stopping.Load() {
					s.draining = true
					continue
				}
				return packetRead{}, fmt.Errorf("read packet socket: %w", err)
			}
		}
		if rerr == unix.EINTR {
			continue
		}
		if rerr != nil {
			// ENETDOWN: the device went down or away.
			return packetRead{}, fmt.Errorf("read packet socket: %w", rerr)
		}
		return s.packet(n, s.oob[:oobn], from), nil
	}
}

// packet makes a packetRead of what recvmsg read: n is the packet's length
// as queued (cut by the filter), oob its control messages.
func (s *packetSocket) packet(n int, oob []byte, from unix.Sockaddr) packetRead {
	p := packetRead{length: n}
	var aux *unix.TpacketAuxdata
	if msgs, err := unix.ParseSocketControlMessage(oob); err == nil {
		for _, m := range msgs {
			switch {
			case m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
				aux = (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
			case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})):
				ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				p.time = time.Unix(ts.Unix())
			}
		}
	}
	if p.time.IsZero() {
		p.time = time.Now()
	}
	if aux != nil {
		p.length = int(aux.Len)
	}
	captured := min(n, len(s.buf))
	if ll, ok := from.(*unix.SockaddrLinklayer); ok {
		p.outgoing = ll.Pkttype == unix.PACKET_OUTGOING
	}
	vlan := s.linkType == linkTypeEthernet && aux != nil && aux.Status&unix.TP_STATUS_VLAN_VALID != 0 && captured >= 12
	if !vlan {
		p.data = append([]byte(nil), s.buf[:captured]...)
		return p
	}
	// The kernel took the 802.1Q tag off into the packet's metadata; put
	// it back where it was on the wire, as libpcap does.
	tpid := uint16(unix.ETH_P_8021Q)
	if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
		tpid = aux.Vlan_tpid
	}
	d := make([]byte, 0, captured+4)
	d = append(d, s.buf[:12]...)
	d = binary.BigEndian.AppendUint16(d, tpid)
	d = binary.BigEndian.AppendUint16(d, aux.Vlan_tci)
	d = append(d, s.buf[12:captured]...)
	p.data, p.length = d, p.length+4
	return p
}

// close reads the kernel's drop count and closes the socket.
func (s *packetSocket) close() {
	_ = s.raw.Control(func(fd uintptr) {
		if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			s.dropped = int64(st.Drops)
		}
	})
	s.file.Close()
}
