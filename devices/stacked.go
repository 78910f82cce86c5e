package devices

// Vlan is an 802.1Q (or 802.1ad) VLAN device on top of Parent.
type Vlan struct {
	Name, Parent string
	// ID is the VLAN id, 1..4094.
	ID int
	// Protocol is "802.1Q" (the default) or "802.1ad" (QinQ outer tag).
	Protocol string
}

// LinkName returns the device's name.
func (v Vlan) LinkName() string { return v.Name }

// Kind returns "vlan".
func (Vlan) Kind() string { return "vlan" }

// Validate checks the name, Parent, ID and Protocol.
func (v Vlan) Validate() error {
	c, err := newCheck(v.Kind(), v.Name)
	if err != nil {
		return err
	}
	if err := c.device("Parent", v.Parent, true); err != nil {
		return err
	}
	if err := c.intRange("ID", v.ID, 1, 4094); err != nil {
		return err
	}
	return c.oneOf("Protocol", v.Protocol, "", "802.1Q", "802.1ad")
}

// checkMacvlan checks the fields Macvlan and Macvtap share.
func checkMacvlan(kind, name, parent, mode string) error {
	c, err := newCheck(kind, name)
	if err != nil {
		return err
	}
	if err := c.device("Parent", parent, true); err != nil {
		return err
	}
	return c.oneOf("Mode", mode, "", "private", "vepa", "bridge", "passthru", "source")
}

// Macvlan is a device with its own MAC address on top of Parent.
type Macvlan struct {
	Name, Parent string
	// Mode is "private", "vepa" (the kernel default), "bridge",
	// "passthru" or "source".
	Mode string
}

// LinkName returns the device's name.
func (m Macvlan) LinkName() string { return m.Name }

// Kind returns "macvlan".
func (Macvlan) Kind() string { return "macvlan" }

// Validate checks the name, Parent and Mode.
func (m Macvlan) Validate() error { return checkMacvlan(m.Kind(), m.Name, m.Parent, m.Mode) }

// Macvtap is a Macvlan with a character device (/dev/tapN) for user space,
// as virtual machines use.
type Macvtap struct {
	Name, Parent string
	// Mode is as for Macvlan.
	Mode string
}

// LinkName returns the device's name.
func (m Macvtap) LinkName() string { return m.Name }

// Kind returns "macvtap".
func (Macvtap) Kind() string { return "macvtap" }

// Validate checks the name, Parent and Mode.
func (m Macvtap) Validate() error { return checkMacvlan(m.Kind(), m.Name, m.Parent, m.Mode) }

// Ipvlan is a device sharing Parent's MAC address, switching on IP
// addresses.
type Ipvlan struct {
	Name, Parent string
	// Mode is "l2", "l3" (the default) or "l3s".
	Mode string
	// Flag is "bridge" (the default), "private" or "vepa".
	Flag string
}

// LinkName returns the device's name.
func (i Ipvlan) LinkName() string { return i.Name }

// Kind returns "ipvlan".
func (Ipvlan) Kind() string { return "ipvlan" }

// Validate checks the name, Parent, Mode and Flag.
func (i Ipvlan) Validate() error {
	c, err := newCheck(i.Kind(), i.Name)
	if err != nil {
		return err
	}
	if err := c.device("Parent", i.Parent, true); err != nil {
		return err
	}
	if err := c.oneOf("Mode", i.Mode, "", "l2", "l3", "l3s"); err != nil {
		return err
	}
	return c.oneOf("Flag", i.Flag, "", "bridge", "private", "vepa")
}
