package devices

import (
	"math"
	"time"
)

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
	c, err := newCheck(v.Kind(), v.Name)
	if err != nil {
		return err
	}
	if v.Name == v.PeerName {
		return c.fail("", "PeerName is the same as Name")
	}
	return c.device("PeerName", v.PeerName, true)
}

// Bridge is a software Ethernet bridge. Zero values leave the kernel's
// defaults.
type Bridge struct {
	Name string
	// STP turns on the spanning tree protocol (written to sysfs after
	// creation: netlink cannot set it).
	STP bool
	// VlanFiltering turns on 802.1Q VLAN filtering on the bridge's ports
	// (the kernel needs CONFIG_BRIDGE_VLAN_FILTERING).
	VlanFiltering bool
	// AgeingTime is how long a learnt address stays in the forwarding
	// database (kernel default 300s); 10ms resolution.
	AgeingTime time.Duration
	// ForwardDelay is the STP listening and learning time, 2s..30s when
	// STP is on (written to sysfs after creation); 10ms resolution.
	ForwardDelay time.Duration
	// HelloTime is the STP hello interval, 1s..10s; 10ms resolution.
	HelloTime time.Duration
	// MulticastSnooping turns IGMP/MLD snooping on or off; nil leaves the
	// kernel default (on).
	MulticastSnooping *bool
	// VlanDefaultPVID is the port VLAN id given to new ports, 0 (none) to
	// 4094; nil leaves the kernel default (1). Needs VLAN filtering
	// support in the kernel.
	VlanDefaultPVID *int
}

// LinkName returns the bridge's name.
func (b Bridge) LinkName() string { return b.Name }

// Kind returns "bridge".
func (Bridge) Kind() string { return "bridge" }

// maxCentis is the longest duration a uint32 of centiseconds holds.
const maxCentis = time.Duration(math.MaxUint32) * 10 * time.Millisecond

// Validate checks the name, the timers and the default PVID.
func (b Bridge) Validate() error {
	c, err := newCheck(b.Kind(), b.Name)
	if err != nil {
		return err
	}
	const cs = 10 * time.Millisecond
	if err := c.duration("AgeingTime", b.AgeingTime, cs, maxCentis); err != nil {
		return err
	}
	if err := c.duration("HelloTime", b.HelloTime, cs, 10*time.Second); err != nil {
		return err
	}
	if b.HelloTime != 0 && b.HelloTime < time.Second {
		return c.fail("HelloTime", "%v is below the minimum 1s", b.HelloTime)
	}
	if err := c.duration("ForwardDelay", b.ForwardDelay, cs, maxCentis); err != nil {
		return err
	}
	if b.STP && b.ForwardDelay != 0 && (b.ForwardDelay < 2*time.Second || b.ForwardDelay > 30*time.Second) {
		return c.fail("ForwardDelay", "%v is out of range 2s..30s (STP is on)", b.ForwardDelay)
	}
	if b.VlanDefaultPVID != nil {
		return c.intRange("VlanDefaultPVID", *b.VlanDefaultPVID, 0, 4094)
	}
	return nil
}

// Dummy is a device that drops everything sent to it.
type Dummy struct {
	Name string
}

// LinkName returns the device's name.
func (d Dummy) LinkName() string { return d.Name }

// Kind returns "dummy".
func (Dummy) Kind() string { return "dummy" }

// Validate checks the name.
func (d Dummy) Validate() error {
	_, err := newCheck(d.Kind(), d.Name)
	return err
}

// Vrf is a virtual routing and forwarding domain: devices enslaved to it
// route with its Table.
type Vrf struct {
	Name string
	// Table is the routing table id, required (not 0).
	Table uint32
}

// LinkName returns the device's name.
func (v Vrf) LinkName() string { return v.Name }

// Kind returns "vrf".
func (Vrf) Kind() string { return "vrf" }

// Validate checks the name and that Table is set.
func (v Vrf) Validate() error {
	c, err := newCheck(v.Kind(), v.Name)
	if err != nil {
		return err
	}
	if v.Table == 0 {
		return c.fail("Table", "is required (not 0)")
	}
	return nil
}

// Tuntap is a persistent TUN (layer 3) or TAP (layer 2) device. netlink
// makes it through /dev/net/tun, not through the netlink socket: LinkAdd
// creates it in the network namespace of the calling thread, whatever the
// Handle's namespace, so call it from a thread in the target namespace.
// After LinkAdd the *netlink.Tuntap's Fds hold the queues' files, which the
// caller closes (the device stays).
type Tuntap struct {
	Name string
	// Mode is "tun" or "tap".
	Mode string
	// Multiqueue makes a multi-queue device (IFF_MULTI_QUEUE).
	Multiqueue bool
	// Owner and Group are the uid and gid allowed to attach; netlink
	// always sets them, so 0 means root.
	Owner, Group int
}

// LinkName returns the device's name.
func (t Tuntap) LinkName() string { return t.Name }

// Kind returns "tun", the kernel's name of the kind for both modes.
func (Tuntap) Kind() string { return "tun" }

// Validate checks the name, Mode, Owner and Group.
func (t Tuntap) Validate() error {
	c, err := newCheck(t.Kind(), t.Name)
	if err != nil {
		return err
	}
	if err := c.oneOf("Mode", t.Mode, "tun", "tap"); err != nil {
		return err
	}
	if err := c.intRange("Owner", t.Owner, 0, math.MaxUint32-1); err != nil {
		return err
	}
	return c.intRange("Group", t.Group, 0, math.MaxUint32-1)
}
