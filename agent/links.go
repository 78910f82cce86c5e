package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/lnst-go/lnst/agent/internal/nlspec"
	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// dadTimeout bounds how long AddAddr waits for IPv6 duplicate address
// detection.
const dadTimeout = 10 * time.Second

// checkLinkName reports whether name can name a Linux network device; it
// is devices.CheckName, kept as one rule for the controller and the agent.
func checkLinkName(name string) error { return devices.CheckName(name) }

func (h *host) link(name string) (netlink.Link, error) {
	if err := checkLinkName(name); err != nil {
		return nil, badArg(err)
	}
	l, err := h.nl.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("%s has no device %q: %w", h.label(), name, err)
	}
	return l, nil
}

// createLink creates the device req describes.
func (h *host) createLink(req *pb.CreateLinkRequest) (undo, error) {
	spec, err := specOf(req)
	if err != nil {
		return undo{}, badArg(err)
	}
	u := undo{Op: opDeleteLink, Link: spec.LinkName()}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := spec.(devices.Team); ok {
		return h.createTeam(t)
	}
	if b, ok := spec.(devices.OvsBridge); ok {
		return h.createOvsBridge(b)
	}
	if m, ok := spec.(devices.Macsec); ok {
		return h.createMacsec(m)
	}
	l, err := nlspec.Link(spec, func(name string) (int, error) {
		l, err := h.link(name)
		if err != nil {
			return 0, err
		}
		return l.Attrs().Index, nil
	})
	if errors.Is(err, nlspec.ErrNotNetlink) {
		return u, status.Errorf(codes.Unimplemented, "create %s %q on %s: %v; this agent cannot create it yet", spec.Kind(), spec.LinkName(), h.label(), err)
	}
	if err != nil {
		return u, badArg(err)
	}
	if u.L3mdev, err = h.l3mdevBefore(spec); err != nil {
		return u, err
	}
	if u.ValueKind, u.Key, u.Value, err = h.netwideValue(spec); err != nil {
		return u, err
	}
	if err := h.linkAdd(l); err != nil {
		return u, fmt.Errorf("create %s %q on %s: %w", spec.Kind(), spec.LinkName(), h.label(), err)
	}
	if _, ok := l.(*netlink.Vrf); ok {
		if err := h.ensureL3mdev(); err != nil {
			h.nl.LinkDel(l)
			return u, fmt.Errorf("create vrf %q: %w", u.Link, errors.Join(err, h.dropL3mdev(u.L3mdev)))
		}
	}
	if _, ok := l.(*netlink.Bridge); ok {
		// Fix the bridge's random address: otherwise the kernel gives it the
		// lowest address of its ports, and it changes as ports come and go.
		if err := h.pinAddress(u.Link); err != nil {
			h.nl.LinkDel(l)
			return u, fmt.Errorf("set address of bridge %q: %w", u.Link, err)
		}
	}
	for _, set := range nlspec.SysfsSettings(spec) {
		if err := h.writeFile("/sys/class/net/"+u.Link+"/"+set.Path, set.Value); err != nil {
			h.nl.LinkDel(l)
			return u, fmt.Errorf("create %s %q: write %s = %s: %w", spec.Kind(), u.Link, set.Path, set.Value, err)
		}
	}
	return u, nil
}

// linkAdd adds a link. A tun/tap device is made with an ioctl on
// /dev/net/tun in the calling thread's namespace, so it is made on the
// host's thread, and the file descriptors netlink keeps open are closed
// (the device is persistent).
func (h *host) linkAdd(l netlink.Link) error {
	if g, ok := l.(*nlspec.VxlanGPE); ok {
		// netlink.Handle cannot send IFLA_VXLAN_GPE: the request goes
		// from the host's thread, in its namespace.
		return h.do(func() error {
			_, err := nlspec.GPERequest(g).Execute(unix.NETLINK_ROUTE, 0)
			return err
		})
	}
	t, ok := l.(*netlink.Tuntap)
	if !ok {
		return h.nl.LinkAdd(l)
	}
	return h.do(func() error {
		err := netlink.LinkAdd(t)
		for _, f := range t.Fds {
			f.Close()
		}
		return tunHint(err)
	})
}

// tunHint adds to a tun/tap creation's permission error why it happens
// when /dev/net/tun is not open to everyone: in a user namespace (the
// rootless labs) the agent is root only there, and opens the device as
// the user outside it. udev makes it 0666 on Debian; without udev the
// kernel's devtmpfs makes it 0600.
func tunHint(err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return err
	}
	fi, serr := os.Stat("/dev/net/tun")
	if serr != nil || fi.Mode().Perm()&0o006 == 0o006 {
		return err
	}
	return fmt.Errorf("%w (/dev/net/tun is mode %04o: an agent in a user namespace, as the rootless labs', opens it as the user outside and needs it 0666, as udev makes it; as root, run: chmod 0666 /dev/net/tun)", err, fi.Mode().Perm())
}

// specOf decodes the device spec of a request.
func specOf(req *pb.CreateLinkRequest) (devices.Spec, error) {
	var spec devices.Spec
	switch s := req.Spec.(type) {
	case *pb.CreateLinkRequest_Veth:
		spec = devices.Veth{Name: s.Veth.Name, PeerName: s.Veth.PeerName}
	case *pb.CreateLinkRequest_Bridge:
		spec = devices.Bridge{Name: s.Bridge.Name, STP: s.Bridge.Stp, VlanFiltering: s.Bridge.VlanFiltering}
	case *pb.CreateLinkRequest_Generic:
		return devices.Unmarshal(s.Generic.Kind, s.Generic.Json)
	default:
		return nil, errors.New("no device spec given")
	}
	return spec, spec.Validate()
}

// pinAddress sets a device's address to the one it has, so that the
// kernel treats it as set by the user.
func (h *host) pinAddress(name string) error {
	l, err := h.nl.LinkByName(name)
	if err != nil {
		return err
	}
	return h.nl.LinkSetHardwareAddr(l, l.Attrs().HardwareAddr)
}

// deleteLink deletes a device and returns the undo that recreates it.
func (h *host) deleteLink(name string) (undo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.link(name)
	if err != nil {
		return undo{}, err
	}
	u := undo{Op: opCreateLink, Link: name, Kind: l.Type()}
	if _, ok := l.(*netlink.Veth); ok && l.Attrs().ParentIndex != 0 {
		// IFLA_LINK of a veth is its peer's index.
		if p, err := h.nl.LinkByIndex(l.Attrs().ParentIndex); err == nil {
			u.Peer = p.Attrs().Name
		}
	}
	if u.Kind != "veth" && u.Kind != "bridge" {
		return undo{}, fmt.Errorf("delete %q on %s: only devices of kind veth or bridge can be deleted, it is %s", name, h.label(), u.Kind)
	}
	if err := h.nl.LinkDel(l); err != nil {
		return undo{}, fmt.Errorf("delete %q on %s: %w", name, h.label(), err)
	}
	return u, nil
}

// setLink applies req and returns the undo that restores what it changed.
// A device set up is usable when it returns (see waitUsable).
func (h *host) setLink(req *pb.SetLinkRequest) (undo, error) {
	u, err := h.setLinkLocked(req)
	if err == nil && req.Up != nil && *req.Up {
		h.waitUsable(req.Name)
		err = h.settleFirstUp(req.Name)
	}
	return u, err
}

func (h *host) setLinkLocked(req *pb.SetLinkRequest) (undo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.link(req.Name)
	if err != nil {
		return undo{}, err
	}
	a := l.Attrs()
	u := undo{Op: opSetLink, Link: req.Name}
	if req.Mtu != nil {
		if *req.Mtu < 68 || *req.Mtu > 65535 {
			return undo{}, badArg(fmt.Errorf("MTU %d of %q is out of range (68 to 65535)", *req.Mtu, req.Name))
		}
		old := a.MTU
		if err := h.nl.LinkSetMTU(l, int(*req.Mtu)); err != nil {
			return undo{}, fmt.Errorf("set MTU of %q to %d on %s: %w", req.Name, *req.Mtu, h.label(), err)
		}
		u.MTU = &old
	}
	if req.Hwaddr != nil {
		if len(req.Hwaddr) != 6 {
			return u, badArg(fmt.Errorf("hardware address of %q must be 6 bytes, got %d", req.Name, len(req.Hwaddr)))
		}
		old := append([]byte(nil), a.HardwareAddr...)
		if err := h.nl.LinkSetHardwareAddr(l, req.Hwaddr); err != nil {
			return u, fmt.Errorf("set hardware address of %q on %s: %w", req.Name, h.label(), err)
		}
		u.HWAddr = old
	}
	if req.Master != nil {
		old, err := h.masterName(a)
		if err != nil {
			return u, err
		}
		kind, err := h.masterKind(*req.Master)
		if err != nil {
			return u, err
		}
		if err := setMasterOf(h, l, *req.Master, kind, old, &u); err != nil {
			return u, err
		}
	}
	if req.Up != nil {
		old := a.Flags&unix.IFF_UP != 0
		if err := h.setUp(l, *req.Up); err != nil {
			return u, err
		}
		u.Up = &old
	}
	return u, nil
}

func (h *host) setUp(l netlink.Link, up bool) error {
	var err error
	if up {
		err = h.nl.LinkSetUp(l)
	} else {
		err = h.nl.LinkSetDown(l)
	}
	if err != nil {
		return fmt.Errorf("set %q %s on %s: %w", l.Attrs().Name, map[bool]string{true: "up", false: "down"}[up], h.label(), err)
	}
	return nil
}

func (h *host) setMaster(l netlink.Link, master string) error {
	if master == "" {
		if err := h.nl.LinkSetNoMaster(l); err != nil {
			return fmt.Errorf("release %q from its master on %s: %w", l.Attrs().Name, h.label(), err)
		}
		return nil
	}
	m, err := h.link(master)
	if err != nil {
		return fmt.Errorf("master %w", err)
	}
	if err := h.nl.LinkSetMaster(l, m); err != nil {
		return fmt.Errorf("set master of %q to %q on %s: %w", l.Attrs().Name, master, h.label(), err)
	}
	return nil
}

func (h *host) masterName(a *netlink.LinkAttrs) (string, error) {
	if a.MasterIndex == 0 {
		return "", nil
	}
	m, err := h.nl.LinkByIndex(a.MasterIndex)
	if err != nil {
		return "", fmt.Errorf("find master of %q: %w", a.Name, err)
	}
	return m.Attrs().Name, nil
}

// waitUsable waits, within dadTimeout, until a device that was just set
// up is usable as it was before it went down: when it has carrier and IPv6
// on, the kernel gives it a link-local address once its operational state
// is up (linkwatch may take a second) and that address must finish
// duplicate address detection. A device without carrier is not waited
// for, nor a port of a bond or team, which the kernel gives no IPv6
// address.
func (h *host) waitUsable(name string) {
	deadline := time.Now().Add(dadTimeout)
	for time.Now().Before(deadline) {
		l, err := h.nl.LinkByName(name)
		if err != nil || l.Attrs().RawFlags&unix.IFF_LOWER_UP == 0 || h.aggregated(l) || !h.ipv6On(name) {
			return
		}
		addrs, err := h.addrList(l, unix.AF_INET6)
		if err != nil {
			return
		}
		for _, a := range addrs {
			if a.IP.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// aggregated reports whether a device is a port of a bond (IFF_SLAVE) or
// of a team.
func (h *host) aggregated(l netlink.Link) bool {
	a := l.Attrs()
	if a.RawFlags&unix.IFF_SLAVE != 0 {
		return true
	}
	if a.MasterIndex == 0 {
		return false
	}
	m, err := h.nl.LinkByIndex(a.MasterIndex)
	return err == nil && m.Type() == "team"
}

// ipv6On reports whether the kernel makes a link-local address for the
// device.
func (h *host) ipv6On(name string) bool {
	if on, err := h.ipv6OnByNetlink(name); err == nil {
		return on
	}
	if v, err := h.readValue(kindSysctl, "net/ipv6/conf/"+name+"/disable_ipv6"); err != nil || v != "0" {
		return false
	}
	v, err := h.readValue(kindSysctl, "net/ipv6/conf/"+name+"/addr_gen_mode")
	return err == nil && v != "1"
}

// parseCIDR parses an address with its prefix length, as "198.18.1.1/24".
func parseCIDR(cidr string) (*netlink.Addr, netip.Prefix, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, p, fmt.Errorf("address %q is not an address with a prefix length (like 198.18.1.1/24 or 2001:db8::1/64): %w", cidr, err)
	}
	if p.Addr().Is4In6() {
		// netlink would send it as IPv4 with an IPv6 prefix length.
		return nil, p, fmt.Errorf("address %q is an IPv4-mapped IPv6 address: give it as IPv4 (like 198.18.1.1/24)", cidr)
	}
	a, err := netlink.ParseAddr(p.String())
	if err != nil {
		return nil, p, fmt.Errorf("address %q: %w", cidr, err)
	}
	return a, p, nil
}

// addAddr adds an address and waits until it is usable: an IPv6 address on
// a device that is up has finished duplicate address detection.
func (h *host) addAddr(name, cidr string) (added bool, err error) {
	addr, p, err := parseCIDR(cidr)
	if err != nil {
		return false, err
	}
	h.mu.Lock()
	l, err := h.link(name)
	if err == nil {
		err = h.nl.AddrAdd(l, addr)
		if err != nil {
			err = fmt.Errorf("add address %s to %q on %s: %w", cidr, name, h.label(), err)
		}
	}
	h.mu.Unlock()
	if err != nil || !p.Addr().Is6() || l.Attrs().Flags&unix.IFF_UP == 0 {
		return err == nil, err
	}
	return true, h.waitDAD(l, p) // events.go
}

// addrAttrs are what the kernel keeps of an address besides the address:
// 127.0.0.1/8 on lo has scope host and no broadcast, which an address
// added back from its CIDR alone would not have.
type addrAttrs struct {
	Scope     int    `json:"scope"`
	Broadcast string `json:"broadcast,omitempty"`
	Label     string `json:"label,omitempty"`
	Flags     int    `json:"flags,omitempty"`
}

// delAddr removes an address and returns how it was.
func (h *host) delAddr(name, cidr string) (*addrAttrs, error) {
	addr, _, err := parseCIDR(cidr)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.link(name)
	if err != nil {
		return nil, err
	}
	var was *addrAttrs
	if list, err := h.addrList(l, netlink.FAMILY_ALL); err == nil {
		for _, a := range list {
			if a.IPNet.String() == addr.IPNet.String() {
				was = &addrAttrs{Scope: a.Scope, Label: a.Label, Flags: a.Flags}
				if a.Broadcast != nil {
					was.Broadcast = a.Broadcast.String()
				}
			}
		}
	}
	if err := h.nl.AddrDel(l, addr); err != nil {
		return nil, fmt.Errorf("remove address %s from %q on %s: %w", cidr, name, h.label(), err)
	}
	return was, nil
}

// withAttrs gives addr the attributes it had.
func withAttrs(addr *netlink.Addr, was *addrAttrs) {
	if was == nil {
		return
	}
	addr.Scope, addr.Label = was.Scope, was.Label
	addr.Flags = was.Flags &^ (unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED | unix.IFA_F_DEPRECATED)
	if b := net.ParseIP(was.Broadcast); b != nil {
		addr.Broadcast = b
	} else if addr.IP.To4() != nil {
		// netlink computes a broadcast address when none is given; the
		// kernel keeps 0.0.0.0 as none.
		addr.Broadcast = net.IPv4zero
	}
}

// linkInfo reads a device.
func (h *host) linkInfo(name string) (*pb.LinkInfoReply, error) {
	l, err := h.link(name)
	if err != nil {
		return nil, err
	}
	a := l.Attrs()
	master, err := h.masterName(a)
	if err != nil {
		return nil, err
	}
	addrs, err := h.addrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %q on %s: %w", name, h.label(), err)
	}
	r := &pb.LinkInfoReply{
		Index:  int32(a.Index),
		Type:   l.Type(),
		Name:   a.Name,
		Hwaddr: a.HardwareAddr,
		State:  "down",
		Mtu:    int32(a.MTU),
		Master: master,
	}
	if a.Flags&unix.IFF_UP != 0 {
		r.State = "up"
	}
	for _, ad := range addrs {
		r.Ips = append(r.Ips, ad.IPNet.String())
	}
	if s := a.Statistics; s != nil {
		r.Stats = &pb.LinkStats{
			RxPackets: s.RxPackets, TxPackets: s.TxPackets,
			RxBytes: s.RxBytes, TxBytes: s.TxBytes,
			RxErrors: s.RxErrors, TxErrors: s.TxErrors,
			RxDropped: s.RxDropped, TxDropped: s.TxDropped,
		}
	}
	r.Driver, err = h.driver(name)
	if err != nil {
		r.Driver = l.Type()
	}
	return r, nil
}

// driver asks the device's driver for its name (ethtool GDRVINFO).
func (h *host) driver(name string) (string, error) {
	var drv string
	err := h.do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		info, err := unix.IoctlGetEthtoolDrvinfo(fd, name)
		if err != nil {
			return err
		}
		drv = unix.ByteSliceToString(info.Driver[:])
		return nil
	})
	return drv, err
}

// applyUndoLink takes back a device change. A device that is already gone,
// an address already removed or a device already recreated is not an
// error: it returns errNothingToUndo.
func (h *host) applyUndoLink(u undo) error {
	err := h.applyUndoLinkLocked(u)
	if err == nil && u.Up != nil && *u.Up {
		h.waitUsable(u.Link)
	}
	if u.Op == opDeleteLink && (err == nil || errors.Is(err, errNothingToUndo)) {
		if len(u.L3mdev) > 0 {
			if rerr := h.dropL3mdev(u.L3mdev); rerr != nil {
				return fmt.Errorf("after deleting %q: %w", u.Link, rerr)
			}
		}
		if u.Key != "" {
			if rerr := h.replaceValue(u.ValueKind, u.Key, u.Value); rerr != nil {
				return fmt.Errorf("after deleting %q: %w", u.Link, rerr)
			}
		}
	}
	return err
}

// wgSendRedirects is the sysctl a WireGuard device clears when it comes
// up (wg_open: so that the host sends no ICMP redirects for what it
// tunnels), for the whole namespace, and never sets back.
const wgSendRedirects = "net/ipv4/conf/all/send_redirects"

// netwideValue returns, for a spec whose device changes a value of the
// whole namespace (a WireGuard device coming up clears
// wgSendRedirects), that value as it is now: the device's undo writes it
// back once the device is gone, however it came up.
func (h *host) netwideValue(spec devices.Spec) (kind, key, value string, err error) {
	if _, ok := spec.(devices.Wireguard); !ok {
		return "", "", "", nil
	}
	v, err := h.readValue(kindSysctl, wgSendRedirects)
	if err != nil {
		return "", "", "", err
	}
	return kindSysctl, wgSendRedirects, v, nil
}

func (h *host) applyUndoLinkLocked(u undo) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u.Op == opCreateLink {
		return h.recreate(u)
	}
	if u.Op == opDeleteLink && u.Kind == ovsKind {
		return h.delOvsBridge(u.Link)
	}
	l, err := h.nl.LinkByName(u.Link)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nothingToUndo("%s has no device %q", h.label(), u.Link)
		}
		return fmt.Errorf("find %q: %w", u.Link, err)
	}
	switch u.Op {
	case opDeleteLink:
		err := h.nl.LinkDel(l)
		if errors.Is(err, unix.ENODEV) {
			return nothingToUndo("%s has no device %q", h.label(), u.Link)
		}
		return err
	case opSetLink:
		return h.undoSetLink(h, l, u)
	case opAddAddr, opDelAddr:
		addr, _, err := parseCIDR(u.CIDR)
		if err != nil {
			return err
		}
		if u.Op == opAddAddr {
			withAttrs(addr, u.Addr)
			err = h.nl.AddrAdd(l, addr)
			if errors.Is(err, unix.EEXIST) {
				return nothingToUndo("%q on %s has address %s already", u.Link, h.label(), u.CIDR)
			}
		} else {
			err = h.nl.AddrDel(l, addr)
			if errors.Is(err, unix.EADDRNOTAVAIL) {
				return nothingToUndo("%q on %s has no address %s", u.Link, h.label(), u.CIDR)
			}
		}
		return err
	}
	return fmt.Errorf("unknown device undo %q", u.Op)
}

func (h *host) recreate(u undo) error {
	var l netlink.Link
	switch u.Kind {
	case "veth":
		l = &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: u.Link}, PeerName: u.Peer}
	case "bridge":
		l = &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: u.Link}}
	default:
		return fmt.Errorf("cannot recreate a device of kind %s", u.Kind)
	}
	err := h.nl.LinkAdd(l)
	if errors.Is(err, unix.EEXIST) {
		return nothingToUndo("%s has a device %q already", h.label(), u.Link)
	}
	return err
}
