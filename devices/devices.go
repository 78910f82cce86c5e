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

// ValidationError is the error a Spec's Validate returns: what is wrong,
// with the kind, the device and the field it concerns. Its message reads
// "bond bond0 Mode: ...".
type ValidationError struct {
	Kind  string // link kind, "bond"
	Name  string // device name; "" when the name itself is wrong
	Field string // spec field, "Mode"; "" when the problem spans fields
	Err   error  // what is wrong
}

// Error returns "kind name Field: what is wrong", leaving out the parts
// that are empty.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind)
	if e.Name != "" {
		b.WriteString(" " + e.Name)
	}
	if e.Field != "" {
		b.WriteString(" " + e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns what is wrong.
func (e *ValidationError) Unwrap() error { return e.Err }

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
	case strings.ContainsAny(name, "/: \t\n\v\f\r\x00") || strings.IndexByte(name, 0xa0) >= 0:
		// The kernel's isspace (lib/ctype.c) also holds for byte 0xa0.
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
