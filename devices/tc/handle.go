package tc

import (
	"fmt"
	"strconv"
	"strings"
)

// Special handles, as the kernel numbers them.
const (
	// HandleRoot is the parent of a device's root qdisc.
	HandleRoot uint32 = 0xffffffff
	// HandleIngress is the parent of an ingress or clsact qdisc.
	HandleIngress uint32 = 0xfffffff1
	// HandleClsactIngress and HandleClsactEgress are the parents of a
	// clsact qdisc's filters on receive and on send.
	HandleClsactIngress uint32 = 0xfffffff2
	HandleClsactEgress  uint32 = 0xfffffff3
)

// ParseHandle parses a handle as tc writes it: "root", "ingress", "egress"
// (a clsact's egress hook), "none" (0), "1:" (a qdisc, minor 0), "1:10" (a
// class), ":10" (major 0). Numbers are hexadecimal, as in tc.
func ParseHandle(s string) (uint32, error) {
	switch s {
	case "root":
		return HandleRoot, nil
	case "ingress":
		return HandleIngress, nil
	case "egress":
		return HandleClsactEgress, nil
	case "none":
		return 0, nil
	}
	major, minor, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("handle %q is not \"root\", \"ingress\", \"egress\" or major:minor in hexadecimal (\"1:\", \"1:10\")", s)
	}
	var maj, min uint64
	var err error
	if major != "" {
		if maj, err = strconv.ParseUint(major, 16, 16); err != nil {
			return 0, fmt.Errorf("handle %q: major %q is not a hexadecimal number up to ffff", s, major)
		}
	}
	if minor != "" {
		if min, err = strconv.ParseUint(minor, 16, 16); err != nil {
			return 0, fmt.Errorf("handle %q: minor %q is not a hexadecimal number up to ffff", s, minor)
		}
	}
	if major == "" && minor == "" {
		return 0, fmt.Errorf("handle %q has neither major nor minor", s)
	}
	return uint32(maj)<<16 | uint32(min), nil
}

// FormatHandle writes a handle as tc does: "root", "ingress", "1:",
// "1:10"; the clsact hooks as "ffff:fff2" and "ffff:fff3".
func FormatHandle(h uint32) string {
	switch h {
	case HandleRoot:
		return "root"
	case HandleIngress:
		return "ingress"
	case 0:
		return "none"
	}
	maj, min := h>>16, h&0xffff
	if min == 0 {
		return fmt.Sprintf("%x:", maj)
	}
	return fmt.Sprintf("%x:%x", maj, min)
}

// Rate is a rate in bits per second.
type Rate uint64

// Rate units, in bits per second, as tc names them (kbit is 1000 bit/s).
const (
	Bit  Rate = 1
	Kbit      = 1000 * Bit
	Mbit      = 1000 * Kbit
	Gbit      = 1000 * Mbit
)

// BytesPerSecond is the rate in bytes per second, the kernel's unit.
func (r Rate) BytesPerSecond() uint64 { return uint64(r) / 8 }

// String writes the rate as tc does: "8Mbit", "1500Kbit", "12bit".
func (r Rate) String() string {
	switch {
	case r != 0 && r%Gbit == 0:
		return fmt.Sprintf("%dGbit", r/Gbit)
	case r != 0 && r%Mbit == 0:
		return fmt.Sprintf("%dMbit", r/Mbit)
	case r != 0 && r%Kbit == 0:
		return fmt.Sprintf("%dKbit", r/Kbit)
	}
	return fmt.Sprintf("%dbit", uint64(r))
}
