package devices

import ()

// Vxlan is a VXLAN tunnel endpoint: Ethernet over UDP. Give Remote for a
// point-to-point tunnel or a multicast Group (usually with Parent), not
// both.
type Vxlan struct {
	// Parent, if set, is the device the tunnel's packets leave through.
	Name, Parent string
	// ID is the VXLAN network identifier (VNI), 0..16777215.
	ID int
	// Remote is the unicast address of the other end, Local the source
	// address, Group a multicast group; all of one IP family.
	Remote, Local, Group string
	// Port is the UDP destination port, 0..65535; 0 means 4789 (IANA),
	// or 4790 with GPE.
	Port int
	// Learning of remote MAC addresses; nil means on (as "ip link"),
	// off with GPE (which refuses it).
	Learning *bool
	// TTL and Tos of the outer header, 0..255; 0 leaves the kernel's
	// choice (TTL 1 with a multicast group, inherited Tos).
	TTL, Tos int
	// L2miss and L3miss turn on netlink notifications of fdb and neighbour
	// misses.
	L2miss, L3miss bool
	// External is collect-metadata mode ("ip link add ... type vxlan
	// external"): one device for every VNI and remote, each packet's
	// taken from its route's encap (lnsttest.Encap) or a tc tunnel_key
	// action. ID, Remote and Group are then unset.
	External bool
	// GPE is VXLAN Generic Protocol Extension (RFC draft
	// ietf-nvo3-vxlan-gpe): the header's next-protocol field says what
	// it carries, so the device carries IP packets with no Ethernet
	// header. The kernel takes it only with External, and without
	// Learning, L2miss and L3miss.
	GPE bool
}

// LinkName returns the device's name.
func (v Vxlan) LinkName() string { return v.Name }

// Kind returns "vxlan".
func (Vxlan) Kind() string { return "vxlan" }

// Validate checks the name, Parent, ID, the addresses and their families,
// Port, TTL and Tos.
func (v Vxlan) Validate() error {
	c, err := newCheck(v.Kind(), v.Name)
	if err != nil {
		return err
	}
	if err := c.device("Parent", v.Parent, false); err != nil {
		return err
	}
	if err := c.intRange("ID", v.ID, 0, 1<<24-1); err != nil {
		return err
	}
	local, remote, err := c.endpoints(v.Local, v.Remote, anyFamily, "")
	if err != nil {
		return err
	}
	if remote.IsMulticast() {
		return c.fail("Remote", "%s is a multicast address; give it as Group", remote)
	}
	group, err := c.addr("Group", v.Group, anyFamily, "")
	if err != nil {
		return err
	}
	if group.IsValid() {
		switch {
		case !group.IsMulticast():
			return c.fail("Group", "%s is not a multicast address", group)
		case remote.IsValid():
			return c.fail("Group", "set with Remote %s; give one of them", remote)
		case local.IsValid() && familyOf(local) != familyOf(group):
			return c.fail("Group", "%s is an %s address but Local %s is %s", group, familyOf(group), local, familyOf(local))
		}
	}
	if err := c.intRange("Port", v.Port, 0, 65535); err != nil {
		return err
	}
	if err := c.intRange("TTL", v.TTL, 0, 255); err != nil {
		return err
	}
	if err := c.intRange("Tos", v.Tos, 0, 255); err != nil {
		return err
	}
	if v.External {
		switch {
		case v.ID != 0:
			return c.fail("ID", "%d set with External: the route's encap gives the VNI", v.ID)
		case remote.IsValid():
			return c.fail("Remote", "%s set with External: the route's encap gives the remote", remote)
		case group.IsValid():
			return c.fail("Group", "%s set with External, which has no multicast group", group)
		}
	}
	if v.GPE {
		switch {
		case !v.External:
			return c.fail("GPE", "needs External (the kernel has VXLAN-GPE in collect-metadata mode only)")
		case v.Learning != nil && *v.Learning:
			return c.fail("Learning", "on with GPE, which carries no Ethernet header to learn from")
		case v.L2miss || v.L3miss:
			return c.fail("L2miss", "L2miss and L3miss are not for GPE, which has no Ethernet header")
		}
	}
	return nil
}

// Geneve is a Geneve tunnel endpoint: Ethernet over UDP to Remote.
type Geneve struct {
	Name string
	// ID is the virtual network identifier (VNI), 0..16777215.
	ID int
	// Remote is the address of the other end, required but with
	// External.
	Remote string
	// Port is the UDP destination port, 0..65535; 0 means 6081 (IANA).
	Port int
	// TTL of the outer header, 0..255; 0 leaves the kernel's choice.
	TTL int
	// External is collect-metadata mode: each packet's VNI and remote
	// come from its route's encap (lnsttest.Encap); ID and Remote are
	// then unset.
	External bool
}

// LinkName returns the device's name.
func (g Geneve) LinkName() string { return g.Name }

// Kind returns "geneve".
func (Geneve) Kind() string { return "geneve" }

// Validate checks the name, ID, Remote, Port and TTL.
func (g Geneve) Validate() error {
	c, err := newCheck(g.Kind(), g.Name)
	if err != nil {
		return err
	}
	if err := c.intRange("ID", g.ID, 0, 1<<24-1); err != nil {
		return err
	}
	switch {
	case g.External && g.ID != 0:
		return c.fail("ID", "%d set with External: the route's encap gives the VNI", g.ID)
	case g.External && g.Remote != "":
		return c.fail("Remote", "%s set with External: the route's encap gives the remote", g.Remote)
	case !g.External && g.Remote == "":
		return c.fail("Remote", "is required (or External)")
	}
	if _, err := c.addr("Remote", g.Remote, anyFamily, ""); err != nil {
		return err
	}
	if err := c.intRange("Port", g.Port, 0, 65535); err != nil {
		return err
	}
	return c.intRange("TTL", g.TTL, 0, 255)
}

// checkExternal checks a GRE tunnel's External: it takes no Remote, nor
// keys (the route's encap gives them).
func checkExternal(kind, name, remote string, ikey, okey uint32, external bool) error {
	c := check{kind, name}
	switch {
	case !external:
		return nil
	case remote != "":
		return c.fail("Remote", "%s set with External: the route's encap gives the remote", remote)
	case ikey != 0 || okey != 0:
		return c.fail("IKey", "IKey %d and OKey %d set with External: the route's encap gives the key", ikey, okey)
	}
	return nil
}

// checkTunnel checks the fields point-to-point IP tunnels share: Local and
// Remote of family f (other tells which kind to use instead), Parent, TTL.
func checkTunnel(kind, name, local, remote, parent string, ttl int, f family, other string) error {
	c, err := newCheck(kind, name)
	if err != nil {
		return err
	}
	if _, _, err := c.endpoints(local, remote, f, "use "+other); err != nil {
		return err
	}
	if err := c.device("Parent", parent, false); err != nil {
		return err
	}
	return c.intRange("TTL", ttl, 0, 255)
}

// Gre is an IPv4 GRE tunnel carrying IP packets (for Ethernet frames see
// Gretap, over IPv6 see Ip6gre).
type Gre struct {
	// Local and Remote are IPv4 addresses; Parent, if set, is the device
	// the tunnel's packets leave through.
	Name, Local, Remote, Parent string
	// IKey and OKey are the GRE keys of received and sent packets; 0: none.
	IKey, OKey uint32
	// TTL of the outer header, 0..255; 0 inherits the inner one.
	TTL int
	// External is collect-metadata mode ("external"): each packet's key
	// and remote come from its route's encap (lnsttest.Encap); Remote,
	// IKey and OKey are then unset.
	External bool
}

// LinkName returns the device's name.
func (g Gre) LinkName() string { return g.Name }

// Kind returns "gre".
func (Gre) Kind() string { return "gre" }

// Validate checks the name, the addresses (IPv4), Parent, TTL and
// External.
func (g Gre) Validate() error {
	if err := checkTunnel(g.Kind(), g.Name, g.Local, g.Remote, g.Parent, g.TTL, ipv4, "Ip6gre"); err != nil {
		return err
	}
	return checkExternal(g.Kind(), g.Name, g.Remote, g.IKey, g.OKey, g.External)
}

// Ip6gre is an IPv6 GRE tunnel carrying IP packets.
type Ip6gre struct {
	// Local and Remote are IPv6 addresses; Parent as for Gre.
	Name, Local, Remote, Parent string
	// IKey and OKey are as for Gre.
	IKey, OKey uint32
	// TTL is the outer hop limit, 0..255.
	TTL int
	// External is collect-metadata mode ("external"): each packet's key
	// and remote come from its route's encap (lnsttest.Encap); Remote,
	// IKey and OKey are then unset.
	External bool
}

// LinkName returns the device's name.
func (g Ip6gre) LinkName() string { return g.Name }

// Kind returns "ip6gre".
func (Ip6gre) Kind() string { return "ip6gre" }

// Validate checks the name, the addresses (IPv6), Parent, TTL and
// External.
func (g Ip6gre) Validate() error {
	if err := checkTunnel(g.Kind(), g.Name, g.Local, g.Remote, g.Parent, g.TTL, ipv6, "Gre"); err != nil {
		return err
	}
	return checkExternal(g.Kind(), g.Name, g.Remote, g.IKey, g.OKey, g.External)
}

// Gretap is an IPv4 GRE tunnel carrying Ethernet frames.
type Gretap struct {
	// Local, Remote and Parent are as for Gre.
	Name, Local, Remote, Parent string
	// IKey and OKey are as for Gre.
	IKey, OKey uint32
	// TTL is as for Gre.
	TTL int
	// External is collect-metadata mode ("external"): each packet's key
	// and remote come from its route's encap (lnsttest.Encap); Remote,
	// IKey and OKey are then unset.
	External bool
}

// LinkName returns the device's name.
func (g Gretap) LinkName() string { return g.Name }

// Kind returns "gretap".
func (Gretap) Kind() string { return "gretap" }

// Validate checks the name, the addresses (IPv4), Parent, TTL and
// External.
func (g Gretap) Validate() error {
	if err := checkTunnel(g.Kind(), g.Name, g.Local, g.Remote, g.Parent, g.TTL, ipv4, "Ip6gretap"); err != nil {
		return err
	}
	return checkExternal(g.Kind(), g.Name, g.Remote, g.IKey, g.OKey, g.External)
}

// Ip6gretap is an IPv6 GRE tunnel carrying Ethernet frames.
type Ip6gretap struct {
	// Local, Remote and Parent are as for Ip6gre.
	Name, Local, Remote, Parent string
	// IKey and OKey are as for Gre.
	IKey, OKey uint32
	// TTL is the outer hop limit, 0..255.
	TTL int
	// External is collect-metadata mode ("external"): each packet's key
	// and remote come from its route's encap (lnsttest.Encap); Remote,
	// IKey and OKey are then unset.
	External bool
}

// LinkName returns the device's name.
func (g Ip6gretap) LinkName() string { return g.Name }

// Kind returns "ip6gretap".
func (Ip6gretap) Kind() string { return "ip6gretap" }

// Validate checks the name, the addresses (IPv6), Parent, TTL and
// External.
func (g Ip6gretap) Validate() error {
	if err := checkTunnel(g.Kind(), g.Name, g.Local, g.Remote, g.Parent, g.TTL, ipv6, "Gretap"); err != nil {
		return err
	}
	return checkExternal(g.Kind(), g.Name, g.Remote, g.IKey, g.OKey, g.External)
}

// IpIp is an IPv4-in-IPv4 tunnel.
type IpIp struct {
	// Local and Remote are IPv4 addresses; Parent as for Gre.
	Name, Local, Remote, Parent string
	// TTL is as for Gre.
	TTL int
}

// LinkName returns the device's name.
func (t IpIp) LinkName() string { return t.Name }

// Kind returns "ipip".
func (IpIp) Kind() string { return "ipip" }

// Validate checks the name, the addresses (IPv4), Parent and TTL.
func (t IpIp) Validate() error {
	return checkTunnel(t.Kind(), t.Name, t.Local, t.Remote, t.Parent, t.TTL, ipv4, "Ip6Tnl")
}

// Sit is an IPv6-in-IPv4 tunnel (mode ip6ip, as "ip link add type sit").
type Sit struct {
	// Local and Remote are IPv4 addresses; Parent as for Gre.
	Name, Local, Remote, Parent string
	// TTL is as for Gre.
	TTL int
}

// LinkName returns the device's name.
func (t Sit) LinkName() string { return t.Name }

// Kind returns "sit".
func (Sit) Kind() string { return "sit" }

// Validate checks the name, the addresses (IPv4), Parent and TTL.
func (t Sit) Validate() error {
	return checkTunnel(t.Kind(), t.Name, t.Local, t.Remote, t.Parent, t.TTL, ipv4, "Ip6Tnl")
}

// Ip6Tnl is an IPv4- or IPv6-in-IPv6 tunnel.
type Ip6Tnl struct {
	// Local and Remote are IPv6 addresses; Parent as for Gre.
	Name, Local, Remote, Parent string
	// Proto is the inner protocol: "ip6ip6", "ipip6" or "any" (the
	// default).
	Proto string
	// TTL is the outer hop limit, 0..255; 0 inherits the inner one.
	TTL int
}

// LinkName returns the device's name.
func (t Ip6Tnl) LinkName() string { return t.Name }

// Kind returns "ip6tnl".
func (Ip6Tnl) Kind() string { return "ip6tnl" }

// Validate checks the name, the addresses (IPv6), Parent, TTL and Proto.
func (t Ip6Tnl) Validate() error {
	if err := checkTunnel(t.Kind(), t.Name, t.Local, t.Remote, t.Parent, t.TTL, ipv6, "IpIp or Sit"); err != nil {
		return err
	}
	return check{t.Kind(), t.Name}.oneOf("Proto", t.Proto, "", "ip6ip6", "ipip6", "any")
}

// Vti is an IPv4 virtual tunnel interface for IPsec: traffic routed to it
// is matched by the xfrm policies with its keys as marks.
type Vti struct {
	// Local and Remote are IPv4 addresses; Parent as for Gre.
	Name, Local, Remote, Parent string
	// IKey and OKey mark received and sent packets for xfrm policies.
	IKey, OKey uint32
}

// LinkName returns the device's name.
func (v Vti) LinkName() string { return v.Name }

// Kind returns "vti".
func (Vti) Kind() string { return "vti" }

// Validate checks the name, the addresses (IPv4) and Parent.
func (v Vti) Validate() error {
	return checkTunnel(v.Kind(), v.Name, v.Local, v.Remote, v.Parent, 0, ipv4, "Vti6")
}

// Vti6 is the IPv6 variant of Vti.
type Vti6 struct {
	// Local and Remote are IPv6 addresses; Parent as for Gre.
	Name, Local, Remote, Parent string
	// IKey and OKey are as for Vti.
	IKey, OKey uint32
}

// LinkName returns the device's name.
func (v Vti6) LinkName() string { return v.Name }

// Kind returns "vti6".
func (Vti6) Kind() string { return "vti6" }

// Validate checks the name, the addresses (IPv6) and Parent.
func (v Vti6) Validate() error {
	return checkTunnel(v.Kind(), v.Name, v.Local, v.Remote, v.Parent, 0, ipv6, "Vti")
}
