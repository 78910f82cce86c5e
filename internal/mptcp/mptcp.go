// Package mptcp speaks the in-kernel MPTCP path manager's generic
// netlink family ("mptcp_pm", Linux 5.7 and later): endpoints (the
// addresses it announces or opens subflows from) and limits, in the
// calling thread's network namespace, as `ip mptcp endpoint` and `ip
// mptcp limits` do. Messages are built and parsed here, so they are
// tested without root.
package mptcp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Family is the generic netlink family's name; Version its version.
const (
	Family  = "mptcp_pm"
	Version = 1
)

// Commands (include/uapi/linux/mptcp_pm.h).
const (
	CmdAddAddr    = 1
	CmdDelAddr    = 2
	CmdGetAddr    = 3
	CmdFlushAddrs = 4
	CmdSetLimits  = 5
	CmdGetLimits  = 6
)

// Attributes of a request, and of an address nested in AttrAddr.
const (
	AttrAddr        = 1
	AttrRcvAddAddrs = 2
	AttrSubflows    = 3

	addrFamily = 1
	addrID     = 2
	addrAddr4  = 3
	addrAddr6  = 4
	addrPort   = 5
	addrFlags  = 6
	addrIfIdx  = 7
)

// Endpoint flags.
const (
	FlagSignal   = 1 << 0
	FlagSubflow  = 1 << 1
	FlagBackup   = 1 << 2
	FlagFullmesh = 1 << 3
)

var flagNames = []struct {
	name string
	bit  uint32
}{{"signal", FlagSignal}, {"subflow", FlagSubflow}, {"backup", FlagBackup}, {"fullmesh", FlagFullmesh}}

// Endpoint is an address of the path manager.
type Endpoint struct {
	// ID is the endpoint's id (1-255); 0 lets the kernel choose.
	ID uint8
	// Addr is the address; required.
	Addr netip.Addr
	// Port is a port to announce with a signal endpoint; 0 is none.
	Port uint16
	// Flags are "signal", "subflow", "backup", "fullmesh".
	Flags []string
	// IfIndex is the device the endpoint is on; 0 is any.
	IfIndex int32
}

// Limits are the path manager's limits.
type Limits struct {
	// Subflows is the most extra subflows a connection may have.
	Subflows uint32
	// AddAddrAccepted is the most addresses a peer may announce that a
	// connection accepts.
	AddAddrAccepted uint32
}

// MaxLimit is the kernel's bound on each limit (MPTCP_PM_ADDR_MAX).
const MaxLimit = 8

// Validate reports what is wrong with the endpoint.
func (e Endpoint) Validate() error {
	if !e.Addr.IsValid() {
		return fmt.Errorf("mptcp endpoint: no address")
	}
	if e.Addr.Zone() != "" {
		return fmt.Errorf("mptcp endpoint %s: an address with a zone", e.Addr)
	}
	_, err := flagBits(e.Flags)
	if err != nil {
		return fmt.Errorf("mptcp endpoint %s: %w", e.Addr, err)
	}
	if e.IfIndex < 0 {
		return fmt.Errorf("mptcp endpoint %s: IfIndex %d is negative", e.Addr, e.IfIndex)
	}
	return nil
}

// Validate reports what is wrong with the limits.
func (l Limits) Validate() error {
	if l.Subflows > MaxLimit || l.AddAddrAccepted > MaxLimit {
		return fmt.Errorf("mptcp limits: subflows %d, add_addr_accepted %d: each must be at most %d", l.Subflows, l.AddAddrAccepted, MaxLimit)
	}
	return nil
}

func flagBits(flags []string) (uint32, error) {
	var bits uint32
	for _, f := range flags {
		i := slices.IndexFunc(flagNames, func(n struct {
			name string
			bit  uint32
		}) bool {
			return n.name == f
		})
		if i < 0 {
			return 0, fmt.Errorf("flag %q is not one of signal, subflow, backup, fullmesh", f)
		}
		bits |= flagNames[i].bit
	}
	return bits, nil
}

func flagList(bits uint32) []string {
	var l []string
	for _, n := range flagNames {
		if bits&n.bit != 0 {
			l = append(l, n.name)
		}
	}
	return l
}

// String is the endpoint as `ip mptcp endpoint` shows it.
func (e Endpoint) String() string {
	s := e.Addr.String()
	if e.Port != 0 {
		s += fmt.Sprintf(" port %d", e.Port)
	}
	if e.ID != 0 {
		s += fmt.Sprintf(" id %d", e.ID)
	}
	if len(e.Flags) > 0 {
		s += " " + strings.Join(e.Flags, " ")
	}
	return s
}

// header is the generic netlink header of cmd.
func header(cmd uint8) []byte { return []byte{cmd, Version, 0, 0} }

// attr appends a netlink attribute.
func attr(b []byte, typ uint16, data []byte) []byte {
	l := unix.NLA_HDRLEN + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for range nlaAlign(l) - l {
		b = append(b, 0)
	}
	return b
}

func nlaAlign(l int) int { return (l + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1) }

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// addrAttr is the nested address attribute of e; with idOnly just its
// id (what DEL_ADDR takes).
func (e Endpoint) addrAttr(idOnly bool) []byte {
	var n []byte
	if !idOnly {
		fam := uint16(unix.AF_INET)
		if e.Addr.Is6() && !e.Addr.Is4In6() {
			fam = unix.AF_INET6
		}
		n = attr(n, addrFamily, binary.NativeEndian.AppendUint16(nil, fam))
	}
	if e.ID != 0 || idOnly {
		n = attr(n, addrID, []byte{e.ID})
	}
	if idOnly {
		return attr(nil, AttrAddr|unix.NLA_F_NESTED, n)
	}
	if e.Addr.Is4() || e.Addr.Is4In6() {
		a := e.Addr.Unmap().As4()
		n = attr(n, addrAddr4, a[:])
	} else {
		a := e.Addr.As16()
		n = attr(n, addrAddr6, a[:])
	}
	if e.Port != 0 {
		n = attr(n, addrPort, binary.NativeEndian.AppendUint16(nil, e.Port))
	}
	if bits, _ := flagBits(e.Flags); bits != 0 {
		n = attr(n, addrFlags, u32(bits))
	}
	if e.IfIndex != 0 {
		n = attr(n, addrIfIdx, u32(uint32(e.IfIndex)))
	}
	return attr(nil, AttrAddr|unix.NLA_F_NESTED, n)
}

// AddAddrMsg is the ADD_ADDR request of e (genl header and attributes).
func AddAddrMsg(e Endpoint) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return append(header(CmdAddAddr), e.addrAttr(false)...), nil
}

// DelAddrMsg is the DEL_ADDR request of endpoint id.
func DelAddrMsg(id uint8) ([]byte, error) {
	if id == 0 {
		return nil, fmt.Errorf("mptcp: delete endpoint id 0: give the endpoint's id (1-255)")
	}
	return append(header(CmdDelAddr), Endpoint{ID: id}.addrAttr(true)...), nil
}

// GetAddrDumpMsg is the request that dumps every endpoint.
func GetAddrDumpMsg() []byte { return header(CmdGetAddr) }

// SetLimitsMsg is the SET_LIMITS request of l.
func SetLimitsMsg(l Limits) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	b := header(CmdSetLimits)
	b = attr(b, AttrRcvAddAddrs, u32(l.AddAddrAccepted))
	return attr(b, AttrSubflows, u32(l.Subflows)), nil
}

// GetLimitsMsg is the GET_LIMITS request.
func GetLimitsMsg() []byte { return header(CmdGetLimits) }

// ParseLimits reads a GET_LIMITS reply (genl header and attributes).
func ParseLimits(msg []byte) (Limits, error) {
	attrs, err := parse(msg)
	if err != nil {
		return Limits{}, err
	}
	var l Limits
	for _, a := range attrs {
		switch a.Attr.Type {
		case AttrRcvAddAddrs:
			l.AddAddrAccepted = native32(a.Value)
		case AttrSubflows:
			l.Subflows = native32(a.Value)
		}
	}
	return l, nil
}

// ParseEndpoint reads one reply of an endpoint dump.
func ParseEndpoint(msg []byte) (Endpoint, error) {
	attrs, err := parse(msg)
	if err != nil {
		return Endpoint{}, err
	}
	var e Endpoint
	for _, a := range attrs {
		if a.Attr.Type&nl.NLA_TYPE_MASK != AttrAddr {
			continue
		}
		nested, err := nl.ParseRouteAttr(a.Value)
		if err != nil {
			return Endpoint{}, fmt.Errorf("mptcp endpoint reply: %w", err)
		}
		for _, n := range nested {
			switch n.Attr.Type {
			case addrID:
				if len(n.Value) > 0 {
					e.ID = n.Value[0]
				}
			case addrAddr4:
				if a, ok := netip.AddrFromSlice(n.Value); ok {
					e.Addr = a
				}
			case addrAddr6:
				if a, ok := netip.AddrFromSlice(n.Value); ok {
					e.Addr = a
				}
			case addrPort:
				if len(n.Value) >= 2 {
					e.Port = binary.NativeEndian.Uint16(n.Value)
				}
			case addrFlags:
				e.Flags = flagList(native32(n.Value))
			case addrIfIdx:
				e.IfIndex = int32(native32(n.Value))
			}
		}
	}
	if !e.Addr.IsValid() {
		return Endpoint{}, fmt.Errorf("mptcp endpoint reply: no address")
	}
	return e, nil
}

func native32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}

func parse(msg []byte) ([]syscall.NetlinkRouteAttr, error) {
	if len(msg) < unix.GENL_HDRLEN {
		return nil, fmt.Errorf("mptcp reply of %d bytes: shorter than its generic netlink header", len(msg))
	}
	attrs, err := nl.ParseRouteAttr(msg[unix.GENL_HDRLEN:])
	if err != nil {
		return nil, fmt.Errorf("mptcp reply: %w", err)
	}
	return attrs, nil
}
