// Package blackhole forwards connections to a target until told to cut
// them, and then swallows what either side sends without closing
// anything: a peer as a client sees it when the peer's machine is powered
// off or cut off, or when the far end of a byte stream (a VM's
// virtio-serial port) has dropped its side without the near end being
// told. Tests use it to check that clients notice such a peer.
package blackhole

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Hole listens on a network address and forwards each connection to its
// target.
type Hole struct {
	lis             net.Listener
	network, target string

	mu    sync.Mutex
	conns []*pair
}

// pair is one forwarded connection.
type pair struct {
	a, b net.Conn
	cut  atomic.Bool
}

// Listen makes a Hole listening on network ("tcp" or "unix") and address
// that forwards to target on the same network.
func Listen(network, address, target string) (*Hole, error) {
	lis, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	h := &Hole{lis: lis, network: network, target: target}
	go h.serve()
	return h, nil
}

// Addr is where the Hole listens.
func (h *Hole) Addr() net.Addr { return h.lis.Addr() }

// Cut makes every connection forwarded so far swallow what either side
// sends from now on; connections made later are forwarded.
func (h *Hole) Cut() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.conns {
		p.cut.Store(true)
	}
}

// Close stops listening and closes every connection.
func (h *Hole) Close() error {
	err := h.lis.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.conns {
		p.a.Close()
		p.b.Close()
	}
	h.conns = nil
	return err
}

func (h *Hole) serve() {
	for {
		a, err := h.lis.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial(h.network, h.target)
		if err != nil {
			a.Close()
			continue
		}
		p := &pair{a: a, b: b}
		h.mu.Lock()
		h.conns = append(h.conns, p)
		h.mu.Unlock()
		go p.pipe(a, b)
		go p.pipe(b, a)
	}
}

// pipe copies from src to dst until the pair is cut, then swallows.
func (p *pair) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if !p.cut.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
}
