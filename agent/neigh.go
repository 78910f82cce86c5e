package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// neighEntry is a neighbour entry as undo entries carry it: an address
// and its hardware address.
type neighEntry struct {
	IP, MAC string
}

func (n *neighEntry) String() string {
	if n == nil {
		return "<none>"
	}
	if n.MAC == "" {
		return n.IP
	}
	return n.IP + " lladdr " + n.MAC
}

// parseNeigh checks a neighbour request: a device name, an address and,
// unless forDel, an Ethernet-like hardware address.
func parseNeigh(req *pb.NeighRequest, forDel bool) (netip.Addr, net.HardwareAddr, error) {
	if err := checkLinkName(req.Dev); err != nil {
		return netip.Addr{}, nil, fmt.Errorf("neighbour %s: %w", req.Ip, err)
	}
	ip, err := netip.ParseAddr(req.Ip)
	if err != nil || ip.Zone() != "" || ip.Is4In6() {
		return netip.Addr{}, nil, fmt.Errorf("neighbour address %q on %s is not an IPv4 or IPv6 address (like 198.18.1.9 or 2001:db8::9)", req.Ip, req.Dev)
	}
	if forDel {
		return ip, nil, nil
	}
	mac, err := net.ParseMAC(req.Lladdr)
	if err != nil || len(mac) != 6 {
		return netip.Addr{}, nil, fmt.Errorf("neighbour %s on %s: hardware address %q is not an Ethernet address like 02:00:00:00:00:09", req.Ip, req.Dev, req.Lladdr)
	}
	return ip, mac, nil
}

func neighOf(index int, ip netip.Addr, mac net.HardwareAddr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    index,
		Family:       familyOf(ip),
		State:        netlink.NUD_PERMANENT,
		IP:           ip.AsSlice(),
		HardwareAddr: mac,
	}
}

// AddNeigh adds a permanent neighbour entry.
func (s *Server) AddNeigh(_ context.Context, req *pb.NeighRequest) (*pb.ChangeReply, error) {
	ip, mac, err := parseNeigh(req, false)
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	n := &neighEntry{IP: ip.String(), MAC: mac.String()}
	return s.change(req.Group, undo{Op: opDelNeigh, Host: req.Host, Link: req.Dev, Neigh: n}, h.addNeigh(req.Dev, ip, mac))
}

// DelNeigh removes a neighbour entry; its undo adds it back, permanent,
// with the hardware address it had.
func (s *Server) DelNeigh(_ context.Context, req *pb.NeighRequest) (*pb.ChangeReply, error) {
	ip, _, err := parseNeigh(req, true)
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	mac, err := h.delNeigh(req.Dev, ip)
	n := &neighEntry{IP: ip.String(), MAC: mac.String()}
	return s.change(req.Group, undo{Op: opAddNeigh, Host: req.Host, Link: req.Dev, Neigh: n}, err)
}

func (h *host) addNeigh(dev string, ip netip.Addr, mac net.HardwareAddr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.link(dev)
	if err != nil {
		return err
	}
	if err := h.nl.NeighAdd(neighOf(l.Attrs().Index, ip, mac)); err != nil {
		return fmt.Errorf("add neighbour %s lladdr %s on %q on %s: %w", ip, mac, dev, h.label(), err)
	}
	return nil
}

// delNeigh removes the entry of ip on dev and returns its hardware address.
func (h *host) delNeigh(dev string, ip netip.Addr) (net.HardwareAddr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.link(dev)
	if err != nil {
		return nil, err
	}
	n, err := h.findNeigh(l.Attrs().Index, ip)
	if err != nil {
		return nil, fmt.Errorf("remove neighbour %s on %q on %s: %w", ip, dev, h.label(), err)
	}
	if n == nil || len(n.HardwareAddr) == 0 {
		return nil, badArg(fmt.Errorf("remove neighbour %s on %q on %s: there is no such entry with a hardware address", ip, dev, h.label()))
	}
	if err := h.nl.NeighDel(n); err != nil {
		return nil, fmt.Errorf("remove neighbour %s on %q on %s: %w", ip, dev, h.label(), err)
	}
	return n.HardwareAddr, nil
}

func (h *host) findNeigh(index int, ip netip.Addr) (*netlink.Neigh, error) {
	ns, err := h.neighList(index, familyOf(ip))
	if err != nil {
		return nil, err
	}
	for i := range ns {
		if a, ok := netip.AddrFromSlice(ns[i].IP); ok && a.Unmap() == ip {
			return &ns[i], nil
		}
	}
	return nil, nil
}

// undoNeigh adds back or removes a neighbour entry. A device gone, an
// entry already there (to add) or already gone (to remove) is
// errNothingToUndo.
func (h *host) undoNeigh(u undo) error {
	if u.Neigh == nil {
		return fmt.Errorf("undo %s: no neighbour entry", u.Op)
	}
	ip, err := netip.ParseAddr(u.Neigh.IP)
	if err != nil {
		return fmt.Errorf("undo %s: %w", u.Op, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.nl.LinkByName(u.Link)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nothingToUndo("%s has no device %q", h.label(), u.Link)
		}
		return fmt.Errorf("find %q: %w", u.Link, err)
	}
	if u.Op == opAddNeigh {
		mac, err := net.ParseMAC(u.Neigh.MAC)
		if err != nil {
			return fmt.Errorf("undo %s: %w", u.Op, err)
		}
		err = h.nl.NeighAdd(neighOf(l.Attrs().Index, ip, mac))
		if errors.Is(err, unix.EEXIST) {
			return nothingToUndo("%q on %s has neighbour %s already", u.Link, h.label(), ip)
		}
		return err
	}
	err = h.nl.NeighDel(neighOf(l.Attrs().Index, ip, nil))
	if errors.Is(err, unix.ENOENT) {
		return nothingToUndo("%q on %s has no neighbour %s", u.Link, h.label(), ip)
	}
	return err
}
