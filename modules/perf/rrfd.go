package perf

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// blockingFD is a socket taken out of the Go runtime's netpoller: reads
// and writes are blocking system calls on the calling goroutine's thread,
// woken by the kernel directly, as sockperf and neper do. Through the
// netpoller each response waits for epoll and a goroutine switch, which
// measured ~1.5 times sockperf's round trip on the lab; a thread per
// connection is what an RR test of a few connections can afford.
type blockingFD struct {
	f  *os.File
	fd int
}

// takeFD dups c's socket into blocking mode. c stays open: close both
// (connFD closes c at once, see why there).
func takeFD(c syscall.Conn) (*blockingFD, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd int
	var dupErr error
	if err := rc.Control(func(s uintptr) { fd, dupErr = unix.Dup(int(s)) }); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, fmt.Errorf("dup socket: %w", dupErr)
	}
	// O_NONBLOCK belongs to the open file, shared with the runtime's
	// copy: the original must not be used for I/O any more.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &blockingFD{f: os.NewFile(uintptr(fd), "rr socket"), fd: fd}, nil
}

// setRecvTimeout makes a read fail with EAGAIN after d.
func (b *blockingFD) setRecvTimeout(d time.Duration) error {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	return unix.SetsockoptTimeval(b.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
}

// shutdown wakes a thread blocked on the socket.
func (b *blockingFD) shutdown() { unix.Shutdown(b.fd, unix.SHUT_RDWR) }

func (b *blockingFD) close() { b.f.Close() }

func (b *blockingFD) write(p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(b.fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// readFull reads len(p) bytes (a stream), io.EOF when the peer closed.
func (b *blockingFD) readFull(p []byte) error {
	for len(p) > 0 {
		n, err := unix.Read(b.fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.EOF
		}
		p = p[n:]
	}
	return nil
}

// read reads one datagram.
func (b *blockingFD) read(p []byte) (int, error) {
	for {
		n, err := unix.Read(b.fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return n, err
	}
}

// isTimeout reports whether err is a receive timeout of setRecvTimeout.
func isTimeout(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EWOULDBLOCK)
}

// connFD is takeFD of a net.Conn, which it closes (also on error): the
// returned blockingFD is then the socket's only file descriptor.
//
// Closing c takes the socket out of the runtime's epoll set (Go removes
// the descriptor with EPOLL_CTL_DEL; the kernel would keep the watch
// while the dup holds the socket open). Left in, every segment that
// arrived woke the thread parked in epoll_wait as well as the reader:
// a second wakeup per message on each side, which cost the RR round trip
// about 5 µs on the 2-CPU lab (see TestRRVsSockperf). The dup keeps the
// socket alive, so closing c sends no FIN.
func connFD(c net.Conn) (*blockingFD, error) {
	defer c.Close()
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%T has no file descriptor", c)
	}
	return takeFD(sc)
}
