package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Waits on netlink notifications: subscribe in the host's namespace, then
// read the current state (so that a change between the two is not
// missed), then wait for updates until the condition holds or time runs
// out.

// defaultWaitLink is WaitLink's timeout when the request gives none.
const defaultWaitLink = 10 * time.Second

// nsOption is the namespace a subscription of h is made in: nil for the
// agent's own host (any thread but a namespace host's is in it).
func (h *host) nsOption() *netns.NsHandle {
	if h.ns < 0 {
		return nil
	}
	ns := h.ns
	return &ns
}

// linkCond is what WaitLink waits for.
type linkCond struct {
	what string
	ok   func(flags uint32) bool
}

func linkCondOf(req *pb.WaitLinkRequest) (linkCond, error) {
	switch w := req.Want.(type) {
	case *pb.WaitLinkRequest_OperState:
		switch w.OperState {
		case "up":
			return linkCond{"operational state up", func(f uint32) bool { return f&unix.IFF_RUNNING != 0 }}, nil
		case "down":
			return linkCond{"operational state down", func(f uint32) bool { return f&unix.IFF_RUNNING == 0 }}, nil
		}
		return linkCond{}, fmt.Errorf("wait for %q: operational state %q is neither \"up\" nor \"down\"", req.Name, w.OperState)
	case *pb.WaitLinkRequest_Carrier:
		on := w.Carrier
		return linkCond{fmt.Sprintf("carrier %s", map[bool]string{true: "on", false: "off"}[on]), func(f uint32) bool { return (f&unix.IFF_LOWER_UP != 0) == on }}, nil
	}
	return linkCond{}, fmt.Errorf("wait for %q: give an operational state or a carrier to wait for", req.Name)
}

// WaitLink waits until a device's operational state or carrier is as
// asked.
func (s *Server) WaitLink(ctx context.Context, req *pb.WaitLinkRequest) (*pb.Empty, error) {
	if err := checkLinkName(req.Name); err != nil {
		return nil, invalid(err)
	}
	cond, err := linkCondOf(req)
	if err != nil {
		return nil, invalid(err)
	}
	timeout := defaultWaitLink
	if req.Timeout != nil {
		if err := req.Timeout.CheckValid(); err != nil || req.Timeout.AsDuration() < 0 {
			return nil, invalid(fmt.Errorf("wait for %q: timeout %v is not a duration of 0 or more", req.Name, req.Timeout))
		}
		if d := req.Timeout.AsDuration(); d > 0 {
			timeout = d
		}
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := h.waitLink(ctx, req.Name, cond); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// unsubscribe ends a netlink subscription made with done and updates:
// closing done closes its socket, and updates is drained until the
// library's receiving goroutine closes it. Without the drain that
// goroutine, blocked sending on a full updates, would never see the
// socket closed and never end.
func unsubscribe[T any](done chan struct{}, updates <-chan T) {
	close(done)
	go func() {
		for range updates {
		}
	}()
}

// subscribeLinks subscribes to the link notifications of h's namespace.
// lost gets a token when a notification is lost (with the error in
// *subErr, set before). stop ends the subscription.
func (h *host) subscribeLinks(subErr *error) (updates <-chan netlink.LinkUpdate, lost <-chan struct{}, stop func(), err error) {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	errc := make(chan struct{}, 1)
	err = netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		Namespace: h.nsOption(),
		ErrorCallback: func(err error) {
			*subErr = err
			select {
			case errc <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		close(done)
		return nil, nil, nil, err
	}
	return ch, errc, func() { unsubscribe(done, ch) }, nil
}

func (h *host) waitLink(ctx context.Context, name string, cond linkCond) error {
	var subErr error
	updates, errc, stop, err := h.subscribeLinks(&subErr)
	if err != nil {
		return status.Errorf(codes.Internal, "wait for %s of %q on %s: subscribe to link notifications: %v", cond.what, name, h.label(), err)
	}
	defer stop()
	l, err := h.link(name)
	if err != nil {
		return status.Error(codes.NotFound, err.Error())
	}
	index := l.Attrs().Index
	flags := l.Attrs().RawFlags
	for !cond.ok(flags) {
		select {
		case u, ok := <-updates:
			if !ok {
				return status.Errorf(codes.Internal, "wait for %s of %q on %s: the notification socket closed: %v", cond.what, name, h.label(), subErr)
			}
			if int(u.Index) != index {
				continue
			}
			if u.Header.Type == unix.RTM_DELLINK {
				return status.Errorf(codes.Aborted, "wait for %s of %q on %s: the device went away", cond.what, name, h.label())
			}
			flags = u.Flags
		case <-errc:
			// A lost notification (the socket's buffer overflowed): read
			// the state instead.
			l, err := h.nl.LinkByIndex(index)
			if err != nil {
				return status.Errorf(codes.Aborted, "wait for %s of %q on %s: %v", cond.what, name, h.label(), err)
			}
			flags = l.Attrs().RawFlags
		case <-ctx.Done():
			state := "down"
			if flags&unix.IFF_RUNNING != 0 {
				state = "up"
			}
			carrier := map[bool]string{true: "on", false: "off"}[flags&unix.IFF_LOWER_UP != 0]
			code := codes.DeadlineExceeded
			if errors.Is(ctx.Err(), context.Canceled) {
				code = codes.Canceled
			}
			return status.Errorf(code, "%q on %s: no %s in time: operational state is %s, carrier %s", name, h.label(), cond.what, state, carrier)
		}
	}
	return nil
}

// waitDAD waits, from address notifications, until address p on l has
// finished duplicate address detection: no longer tentative. It fails when
// detection failed or after dadTimeout.
func (h *host) waitDAD(l netlink.Link, p netip.Prefix) error {
	name := l.Attrs().Name
	updates, lost, stop, err := h.subscribeAddrs()
	if err != nil {
		return fmt.Errorf("address %s on %q: subscribe to address notifications: %w", p, name, err)
	}
	defer stop()
	timer := time.NewTimer(dadTimeout)
	defer timer.Stop()
	var poll <-chan time.Time // reads the state again when notifications are lost
	for {
		tentative, failed, err := h.addrState(l, p.Addr())
		switch {
		case err != nil:
			return fmt.Errorf("list addresses of %q: %w", name, err)
		case failed:
			return fmt.Errorf("address %s on %q: duplicate address detection failed", p, name)
		case !tentative:
			return nil
		}
		if err := waitAddrUpdate(updates, lost, &poll, timer.C, l.Attrs().Index, p.Addr()); err != nil {
			return fmt.Errorf("address %s on %q: still tentative after %v of duplicate address detection (is the link down?)", p, name, dadTimeout)
		}
	}
}

// subscribeAddrs subscribes to the address notifications of h's
// namespace; lost gets a token when a notification is lost. stop ends the
// subscription.
func (h *host) subscribeAddrs() (updates <-chan netlink.AddrUpdate, lost <-chan struct{}, stop func(), err error) {
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	l := make(chan struct{}, 1)
	err = netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		Namespace: h.nsOption(),
		ErrorCallback: func(error) {
			select {
			case l <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		close(done)
		return nil, nil, nil, err
	}
	return ch, l, func() { unsubscribe(done, ch) }, nil
}

// waitAddrUpdate returns when an update of address a on device index
// comes, or it is time to read the state again; it fails when deadline
// passes.
func waitAddrUpdate(updates <-chan netlink.AddrUpdate, lost <-chan struct{}, poll *<-chan time.Time, deadline <-chan time.Time, index int, a netip.Addr) error {
	for {
		select {
		case u, ok := <-updates:
			if !ok {
				// The subscription ended: poll the state instead.
				*poll = time.Tick(20 * time.Millisecond)
				return nil
			}
			if ip, ok := netip.AddrFromSlice(u.LinkAddress.IP); u.LinkIndex == index && ok && ip.Unmap() == a {
				return nil
			}
		case <-lost:
			return nil
		case <-*poll:
			return nil
		case <-deadline:
			return errors.New("deadline")
		}
	}
}

// addrState reports whether address a on l is tentative, or failed
// duplicate address detection.
func (h *host) addrState(l netlink.Link, a netip.Addr) (tentative, failed bool, err error) {
	addrs, err := h.addrList(l, unix.AF_INET6)
	if err != nil {
		return false, false, err
	}
	for _, ad := range addrs {
		if ip, ok := netip.AddrFromSlice(ad.IP); ok && ip == a {
			return ad.Flags&unix.IFA_F_TENTATIVE != 0, ad.Flags&unix.IFA_F_DADFAILED != 0, nil
		}
	}
	return false, false, nil
}
