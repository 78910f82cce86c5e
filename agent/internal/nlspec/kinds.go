package nlspec

import (
	"fmt"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// macvlanModes maps a Macvlan or Macvtap Mode to netlink's.
var macvlanModes = map[string]netlink.MacvlanMode{
	"":         netlink.MACVLAN_MODE_DEFAULT,
	"private":  netlink.MACVLAN_MODE_PRIVATE,
	"vepa":     netlink.MACVLAN_MODE_VEPA,
	"bridge":   netlink.MACVLAN_MODE_BRIDGE,
	"passthru": netlink.MACVLAN_MODE_PASSTHRU,
	"source":   netlink.MACVLAN_MODE_SOURCE,
}

// ip6tnlEncapLimit is iproute2's default tunnel encapsulation limit.
const ip6tnlEncapLimit = 4

// centis is d in centiseconds, the unit of the bridge timers.
func centis(d time.Duration) int64 { return int64(d / (10 * time.Millisecond)) }

// vethLink maps a Veth.
func vethLink(v devices.Veth, _ resolver) (netlink.Link, error) {
	l := netlink.NewVeth(netlink.LinkAttrs{Name: v.Name})
	l.PeerName = v.PeerName
	return l, nil
}

// bridgeLink maps a Bridge.
func bridgeLink(b devices.Bridge, _ resolver) (netlink.Link, error) {
	l := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b.Name}}
	if b.VlanFiltering {
		// Sent only when on: a kernel without CONFIG_BRIDGE_VLAN_FILTERING
		// refuses the attribute even when it is off.
		l.VlanFiltering = ptrTo(true)
	}
	if b.AgeingTime != 0 {
		l.AgeingTime = ptrTo(uint32(centis(b.AgeingTime)))
	}
	if b.HelloTime != 0 {
		l.HelloTime = ptrTo(uint32(centis(b.HelloTime)))
	}
	if b.MulticastSnooping != nil {
		l.MulticastSnooping = ptrTo(*b.MulticastSnooping)
	}
	if b.VlanDefaultPVID != nil {
		l.VlanDefaultPVID = ptrTo(uint16(*b.VlanDefaultPVID))
	}
	return l, nil
}

// dummyLink maps a Dummy.
func dummyLink(d devices.Dummy, _ resolver) (netlink.Link, error) {
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: d.Name}}, nil
}

// vrfLink maps a Vrf.
func vrfLink(v devices.Vrf, _ resolver) (netlink.Link, error) {
	return &netlink.Vrf{LinkAttrs: netlink.LinkAttrs{Name: v.Name}, Table: v.Table}, nil
}

// tuntapLink maps a Tuntap.
func tuntapLink(t devices.Tuntap, _ resolver) (netlink.Link, error) {
	l := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: t.Name},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_DEFAULTS,
		Queues:    1,
		Owner:     uint32(t.Owner),
		Group:     uint32(t.Group),
	}
	if t.Mode == "tun" {
		l.Mode = netlink.TUNTAP_MODE_TUN
	}
	if t.Multiqueue {
		l.Flags = netlink.TUNTAP_MULTI_QUEUE_DEFAULTS
	}
	return l, nil
}

// bondLink maps a Bond.
func bondLink(b devices.Bond, r resolver) (netlink.Link, error) {
	l := netlink.NewLinkBond(netlink.LinkAttrs{Name: b.Name})
	if b.Mode != "" {
		l.Mode = netlink.StringToBondMode(b.Mode)
	}
	if b.Miimon != 0 {
		l.Miimon = int(b.Miimon / time.Millisecond)
	}
	if b.UpDelay != 0 {
		l.UpDelay = int(b.UpDelay / time.Millisecond)
	}
	if b.DownDelay != 0 {
		l.DownDelay = int(b.DownDelay / time.Millisecond)
	}
	if b.LACPRate != "" {
		l.LacpRate = netlink.StringToBondLacpRate(b.LACPRate)
	}
	if b.XmitHashPolicy != "" {
		l.XmitHashPolicy = netlink.StringToBondXmitHashPolicy(b.XmitHashPolicy)
	}
	if b.MinLinks != 0 {
		l.MinLinks = b.MinLinks
	}
	if b.Primary != "" {
		i, err := r.ifindex("Primary", b.Primary)
		if err != nil {
			return nil, err
		}
		l.Primary = i
	}
	return l, nil
}

// teamLink maps a Team.
func teamLink(t devices.Team, _ resolver) (netlink.Link, error) {
	return nil, fmt.Errorf("team %s: %w (start teamd with TeamdConfig)", t.Name, ErrNotNetlink)
}

// ovsBridgeLink maps a OvsBridge.
func ovsBridgeLink(o devices.OvsBridge, _ resolver) (netlink.Link, error) {
	return nil, fmt.Errorf("openvswitch %s: %w (run ovs-vsctl add-br)", o.Name, ErrNotNetlink)
}

// vlanLink maps a Vlan.
func vlanLink(v devices.Vlan, r resolver) (netlink.Link, error) {
	la, err := r.attrs(v.Parent)
	if err != nil {
		return nil, err
	}
	proto := netlink.VLAN_PROTOCOL_8021Q
	if v.Protocol == "802.1ad" {
		proto = netlink.VLAN_PROTOCOL_8021AD
	}
	return &netlink.Vlan{LinkAttrs: la, VlanId: v.ID, VlanProtocol: proto}, nil
}

// macvlanLink maps a Macvlan.
func macvlanLink(m devices.Macvlan, r resolver) (netlink.Link, error) {
	la, err := r.attrs(m.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Macvlan{LinkAttrs: la, Mode: macvlanModes[m.Mode]}, nil
}

// macvtapLink maps a Macvtap.
func macvtapLink(m devices.Macvtap, r resolver) (netlink.Link, error) {
	la, err := r.attrs(m.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Macvtap{Macvlan: netlink.Macvlan{LinkAttrs: la, Mode: macvlanModes[m.Mode]}}, nil
}

// ipvlanLink maps a Ipvlan.
func ipvlanLink(i devices.Ipvlan, r resolver) (netlink.Link, error) {
	la, err := r.attrs(i.Parent)
	if err != nil {
		return nil, err
	}
	l := &netlink.IPVlan{LinkAttrs: la, Mode: netlink.IPVLAN_MODE_L3, Flag: netlink.IPVLAN_FLAG_BRIDGE}
	switch i.Mode {
	case "l2":
		l.Mode = netlink.IPVLAN_MODE_L2
	case "l3s":
		l.Mode = netlink.IPVLAN_MODE_L3S
	}
	switch i.Flag {
	case "private":
		l.Flag = netlink.IPVLAN_FLAG_PRIVATE
	case "vepa":
		l.Flag = netlink.IPVLAN_FLAG_VEPA
	}
	return l, nil
}

// vxlanLink maps a Vxlan.
func vxlanLink(v devices.Vxlan, r resolver) (netlink.Link, error) {
	parent, err := r.ifindex("Parent", v.Parent)
	if err != nil {
		return nil, err
	}
	l := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: v.Name},
		VxlanId:      v.ID,
		VtepDevIndex: parent,
		SrcAddr:      ip(v.Local, false),
		Group:        ip(v.Remote, false), // IFLA_VXLAN_GROUP carries a unicast remote too
		TTL:          v.TTL,
		TOS:          v.Tos,
		Learning:     v.Learning == nil || *v.Learning,
		L2miss:       v.L2miss,
		L3miss:       v.L3miss,
		Port:         v.Port,
	}
	if v.Group != "" {
		l.Group = ip(v.Group, false)
	}
	l.FlowBased = v.External
	if v.GPE {
		l.Learning = false
		if l.Port == 0 {
			l.Port = 4790
		}
		return &VxlanGPE{Vxlan: *l}, nil
	}
	if l.Port == 0 {
		l.Port = 4789
	}
	return l, nil
}

// geneveLink maps a Geneve.
func geneveLink(g devices.Geneve, _ resolver) (netlink.Link, error) {
	l := &netlink.Geneve{
		LinkAttrs: netlink.LinkAttrs{Name: g.Name},
		ID:        uint32(g.ID),
		Remote:    ip(g.Remote, false),
		Ttl:       uint8(g.TTL),
		Dport:     uint16(g.Port),
		FlowBased: g.External,
	}
	if l.Dport == 0 {
		l.Dport = 6081
	}
	return l, nil
}

// greLink maps a Gre.
func greLink(g devices.Gre, r resolver) (netlink.Link, error) {
	parent, err := r.ifindex("Parent", g.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Gretun{
		LinkAttrs: netlink.LinkAttrs{Name: g.Name},
		Link:      uint32(parent),
		IKey:      g.IKey,
		OKey:      g.OKey,
		Local:     ip(g.Local, true),
		Remote:    ip(g.Remote, false),
		Ttl:       uint8(g.TTL),
		PMtuDisc:  1,
		FlowBased: g.External,
	}, nil
}

// ip6greLink maps a Ip6gre.
func ip6greLink(g devices.Ip6gre, r resolver) (netlink.Link, error) {
	parent, err := r.ifindex("Parent", g.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Gretun{
		LinkAttrs: netlink.LinkAttrs{Name: g.Name},
		Link:      uint32(parent),
		IKey:      g.IKey,
		OKey:      g.OKey,
		Local:     ip(g.Local, false),
		Remote:    ip(g.Remote, false),
		Ttl:       uint8(g.TTL),
		FlowBased: g.External,
	}, nil
}

// gretapLink maps a Gretap.
func gretapLink(g devices.Gretap, r resolver) (netlink.Link, error) {
	parent, err := r.ifindex("Parent", g.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Gretap{
		LinkAttrs: netlink.LinkAttrs{Name: g.Name},
		Link:      uint32(parent),
		IKey:      g.IKey,
		OKey:      g.OKey,
		Local:     ip(g.Local, true),
		Remote:    ip(g.Remote, false),
		Ttl:       uint8(g.TTL),
		PMtuDisc:  1,
		FlowBased: g.External,
	}, nil
}

// ip6gretapLink maps a Ip6gretap.
func ip6gretapLink(g devices.Ip6gretap, r resolver) (netlink.Link, error) {
	parent, err := r.ifindex("Parent", g.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Gretap{
		LinkAttrs: netlink.LinkAttrs{Name: g.Name},
		Link:      uint32(parent),
		IKey:      g.IKey,
		OKey:      g.OKey,
		Local:     ip(g.Local, false),
		Remote:    ip(g.Remote, false),
		Ttl:       uint8(g.TTL),
		FlowBased: g.External,
	}, nil
}

// ipIpLink maps a IpIp.
func ipIpLink(t devices.IpIp, r resolver) (netlink.Link, error) {
	parent, err := r.ifindex("Parent", t.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Iptun{
		LinkAttrs: netlink.LinkAttrs{Name: t.Name},
		Link:      uint32(parent),
		Local:     ip(t.Local, false),
		Remote:    ip(t.Remote, false),
		Ttl:       uint8(t.TTL),
		PMtuDisc:  1,
		Proto:     unix.IPPROTO_IPIP,
	}, nil
}

// sitLink maps a Sit.
func sitLink(t devices.Sit, r resolver) (netlink.Link, error) {
	parent, err := r.ifindex("Parent", t.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Sittun{
		LinkAttrs: netlink.LinkAttrs{Name: t.Name},
		Link:      uint32(parent),
		Local:     ip(t.Local, false),
		Remote:    ip(t.Remote, false),
		Ttl:       uint8(t.TTL),
		PMtuDisc:  1,
		Proto:     unix.IPPROTO_IPV6,
	}, nil
}

// ip6TnlLink maps a Ip6Tnl.
func ip6TnlLink(t devices.Ip6Tnl, r resolver) (netlink.Link, error) {
	parent, err := r.ifindex("Parent", t.Parent)
	if err != nil {
		return nil, err
	}
	l := &netlink.Ip6tnl{
		LinkAttrs:  netlink.LinkAttrs{Name: t.Name},
		Link:       uint32(parent),
		Local:      ip(t.Local, false),
		Remote:     ip(t.Remote, false),
		Ttl:        uint8(t.TTL),
		EncapLimit: ip6tnlEncapLimit,
	}
	switch t.Proto {
	case "ip6ip6":
		l.Proto = unix.IPPROTO_IPV6
	case "ipip6":
		l.Proto = unix.IPPROTO_IPIP
	}
	return l, nil
}

// vtiLink maps a Vti.
func vtiLink(v devices.Vti, r resolver) (netlink.Link, error) {
	parent, err := r.ifindex("Parent", v.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Vti{
		LinkAttrs: netlink.LinkAttrs{Name: v.Name},
		Link:      uint32(parent),
		IKey:      v.IKey,
		OKey:      v.OKey,
		Local:     ip(v.Local, true),
		Remote:    ip(v.Remote, false),
	}, nil
}

// vti6Link maps a Vti6.
func vti6Link(v devices.Vti6, r resolver) (netlink.Link, error) {
	parent, err := r.ifindex("Parent", v.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Vti{
		LinkAttrs: netlink.LinkAttrs{Name: v.Name},
		Link:      uint32(parent),
		IKey:      v.IKey,
		OKey:      v.OKey,
		Local:     ip(v.Local, false),
		Remote:    ip(v.Remote, false),
	}, nil
}

// wireguardLink maps a Wireguard.
func wireguardLink(w devices.Wireguard, _ resolver) (netlink.Link, error) {
	return &netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: w.Name}}, nil
}
