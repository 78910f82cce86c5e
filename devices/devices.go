// Package devices is the lnst-go device model: one Spec type per link kind
// that a recipe can create on a host (Host.Create), and Info, what a host
// reports about a device.
package devices

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Spec describes a soft device to create. Each link kind has its own Spec
// type with the kind's options as typed fields.
type Spec interface {
	// LinkName is the name the device will have.
	LinkName() string
	// Kind is the kernel's name of the link kind ("veth", "bridge").
	Kind() string
	// Validate reports what is wrong with the spec, naming the field.
	Validate() error
}

// Veth is a pair of virtual Ethernet devices connected to each other.
type Veth struct {
	Name, PeerName string
}

// LinkName returns the name of the first device of the pair.
func (v Veth) LinkName() string { return v.Name }

// Kind returns "veth".
func (Veth) Kind() string { return "veth" }

// Validate checks both names.
func (v Veth) Validate() error {
	if err := CheckName(v.Name); err != nil {
		return fmt.Errorf("veth Name: %w", err)
	}
	if err := CheckName(v.PeerName); err != nil {
		return fmt.Errorf("veth %s PeerName: %w", v.Name, err)
	}
	if v.Name == v.PeerName {
		return fmt.Errorf("veth %s: PeerName is the same as Name", v.Name)
	}
	return nil
}

// Bridge is a software Ethernet bridge.
type Bridge struct {
	Name string
	// STP turns on the spanning tree protocol.
	STP bool
	// VlanFiltering turns on 802.1Q VLAN filtering on the bridge's ports.
	VlanFiltering bool
}

// LinkName returns the bridge's name.
func (b Bridge) LinkName() string { return b.Name }

// Kind returns "bridge".
func (Bridge) Kind() string { return "bridge" }

// Validate checks the name.
func (b Bridge) Validate() error {
	if err := CheckName(b.Name); err != nil {
		return fmt.Errorf("bridge Name: %w", err)
	}
	return nil
}

// CheckName reports whether name can name a Linux network device: 1 to 15
// bytes, no '/', ':' or white space, not "." or "..".
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("device name is empty")
	case len(name) > 15:
		return fmt.Errorf("device name %q is longer than 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("device name %q is not allowed", name)
	case strings.ContainsAny(name, "/: \t\n\x00"):
		return fmt.Errorf("device name %q has a character not allowed in device names ('/', ':' or white space)", name)
	}
	return nil
}

// Info is what a host reports about one of its devices.
type Info struct {
	Index  int
	Type   string // link kind: "veth", "bridge", "device" for a NIC
	Name   string
	HWAddr net.HardwareAddr
	State  string // "up" or "down" (administrative state)
	Driver string
	MTU    int
	IPs    []netip.Prefix
	Master string // name of the master device, "" if none
	Stats  LinkStats
}

// LinkStats are a device's counters.
type LinkStats struct {
	RxPackets, TxPackets uint64
	RxBytes, TxBytes     uint64
	RxErrors, TxErrors   uint64
	RxDropped, TxDropped uint64
}
