package agent

import (
	"fmt"

	"github.com/lnst-go/lnst/agent/internal/nltc"
	"github.com/lnst-go/lnst/devices/tc"

	"github.com/vishvananda/netlink"
)

// createBridge makes a lab network's bridge on the switch host: up, without
// STP (ports forward at once) and without multicast snooping (IPv6
// neighbour discovery is flooded, as on a plain hub).
func (h *host) createBridge(name string) error {
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &off}
	if err := h.nl.LinkAdd(br); err != nil {
		return err
	}
	return h.nl.LinkSetUp(br)
}

// connect links host t to bridge br of the network's switch host h with a veth pair:
// port on the bridge, ifname in t. Both ends are up.
func (h *host) connect(t *host, ifname, br, port string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	bridge, err := h.nl.LinkByName(br)
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", br, err)
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: port, MasterIndex: bridge.Attrs().Index},
		PeerName:      ifname,
		PeerNamespace: netlink.NsFd(t.ns),
	}
	if err := h.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s/%s: %w", port, ifname, err)
	}
	if err := h.nl.LinkSetUp(veth); err != nil {
		return err
	}
	l, err := t.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("find %s in host: %w", ifname, err)
	}
	return t.nl.LinkSetUp(l)
}

// impairPort puts qdisc q on port, a switch port: it impairs what the
// host at the port's other end receives.
func (h *host) impairPort(port string, q tc.Qdisc) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.nl.LinkByName(port)
	if err != nil {
		return err
	}
	nq, err := nltc.Qdisc(q, l.Attrs().Index)
	if err != nil {
		return err
	}
	return h.nl.QdiscAdd(nq)
}
