package nlspec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// testIndex resolves the devices of a fake host.
func testIndex(name string) (int, error) {
	i, ok := map[string]int{"eth0": 2, "eth1": 3}[name]
	if !ok {
		return 0, fmt.Errorf("no device %q", name)
	}
	return i, nil
}

func wantBond(name string, set func(b *netlink.Bond)) *netlink.Bond {
	b := netlink.NewLinkBond(netlink.LinkAttrs{Name: name})
	set(b)
	return b
}

func wantVeth(name, peer string) *netlink.Veth {
	v := netlink.NewVeth(netlink.LinkAttrs{Name: name})
	v.PeerName = peer
	return v
}

func attrs(name string) netlink.LinkAttrs { return netlink.LinkAttrs{Name: name} }

func child(name string, parent int) netlink.LinkAttrs {
	return netlink.LinkAttrs{Name: name, ParentIndex: parent}
}

func ip4(s string) net.IP { return net.ParseIP(s).To4() }
func ip6(s string) net.IP { return net.ParseIP(s) }

// netlinkCases has, for every kind netlink creates, specs and the link
// NetlinkLink must build for them.
var netlinkCases = []struct {
	spec devices.Spec
	want netlink.Link
}{
	{devices.Veth{Name: "v0", PeerName: "v1"}, wantVeth("v0", "v1")},

	{devices.Bridge{Name: "br0"}, &netlink.Bridge{LinkAttrs: attrs("br0")}},
	{devices.Bridge{Name: "br0", STP: true, VlanFiltering: true, AgeingTime: 30 * time.Second, ForwardDelay: 4 * time.Second,
		HelloTime: 2 * time.Second, MulticastSnooping: ptrTo(false), VlanDefaultPVID: ptrTo(10)},
		&netlink.Bridge{LinkAttrs: attrs("br0"), VlanFiltering: ptrTo(true), AgeingTime: ptrTo(uint32(3000)),
			HelloTime: ptrTo(uint32(200)), MulticastSnooping: ptrTo(false), VlanDefaultPVID: ptrTo(uint16(10))}},

	{devices.Dummy{Name: "d0"}, &netlink.Dummy{LinkAttrs: attrs("d0")}},
	{devices.Ifb{Name: "ifb0"}, &netlink.Ifb{LinkAttrs: attrs("ifb0")}},

	{devices.Vrf{Name: "vrf0", Table: 10}, &netlink.Vrf{LinkAttrs: attrs("vrf0"), Table: 10}},

	{devices.Tuntap{Name: "tun0", Mode: "tun", Owner: 1000, Group: 100},
		&netlink.Tuntap{LinkAttrs: attrs("tun0"), Mode: netlink.TUNTAP_MODE_TUN, Flags: netlink.TUNTAP_DEFAULTS, Queues: 1, Owner: 1000, Group: 100}},
	{devices.Tuntap{Name: "tap0", Mode: "tap", Multiqueue: true},
		&netlink.Tuntap{LinkAttrs: attrs("tap0"), Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_MULTI_QUEUE_DEFAULTS, Queues: 1}},

	{devices.Bond{Name: "bond0"}, netlink.NewLinkBond(attrs("bond0"))},
	{devices.Bond{Name: "bond0", Mode: "802.3ad", Miimon: 100 * time.Millisecond, UpDelay: 200 * time.Millisecond,
		DownDelay: 300 * time.Millisecond, LACPRate: "fast", XmitHashPolicy: "layer3+4", MinLinks: 2},
		wantBond("bond0", func(b *netlink.Bond) {
			b.Mode = netlink.BOND_MODE_802_3AD
			b.Miimon, b.UpDelay, b.DownDelay = 100, 200, 300
			b.LacpRate = netlink.BOND_LACP_RATE_FAST
			b.XmitHashPolicy = netlink.BOND_XMIT_HASH_POLICY_LAYER3_4
			b.MinLinks = 2
		})},
	{devices.Bond{Name: "bond0", Mode: "active-backup", Primary: "eth1", Miimon: time.Second},
		wantBond("bond0", func(b *netlink.Bond) {
			b.Mode = netlink.BOND_MODE_ACTIVE_BACKUP
			b.Miimon = 1000
			b.Primary = 3
		})},
	{devices.Bond{Name: "bond0", Mode: "balance-rr"}, wantBond("bond0", func(b *netlink.Bond) { b.Mode = netlink.BOND_MODE_BALANCE_RR })},
	{devices.Bond{Name: "bond0", Mode: "balance-xor", XmitHashPolicy: "encap3+4"}, wantBond("bond0", func(b *netlink.Bond) {
		b.Mode = netlink.BOND_MODE_BALANCE_XOR
		b.XmitHashPolicy = netlink.BOND_XMIT_HASH_POLICY_ENCAP3_4
	})},
	{devices.Bond{Name: "bond0", Mode: "broadcast"}, wantBond("bond0", func(b *netlink.Bond) { b.Mode = netlink.BOND_MODE_BROADCAST })},
	{devices.Bond{Name: "bond0", Mode: "balance-tlb"}, wantBond("bond0", func(b *netlink.Bond) { b.Mode = netlink.BOND_MODE_BALANCE_TLB })},
	{devices.Bond{Name: "bond0", Mode: "balance-alb"}, wantBond("bond0", func(b *netlink.Bond) { b.Mode = netlink.BOND_MODE_BALANCE_ALB })},

	{devices.Vlan{Name: "eth0.10", Parent: "eth0", ID: 10},
		&netlink.Vlan{LinkAttrs: child("eth0.10", 2), VlanId: 10, VlanProtocol: netlink.VLAN_PROTOCOL_8021Q}},
	{devices.Vlan{Name: "eth1.20", Parent: "eth1", ID: 20, Protocol: "802.1ad"},
		&netlink.Vlan{LinkAttrs: child("eth1.20", 3), VlanId: 20, VlanProtocol: netlink.VLAN_PROTOCOL_8021AD}},

	{devices.Macvlan{Name: "mv0", Parent: "eth0"}, &netlink.Macvlan{LinkAttrs: child("mv0", 2), Mode: netlink.MACVLAN_MODE_DEFAULT}},
	{devices.Macvlan{Name: "mv0", Parent: "eth0", Mode: "private"}, &netlink.Macvlan{LinkAttrs: child("mv0", 2), Mode: netlink.MACVLAN_MODE_PRIVATE}},
	{devices.Macvlan{Name: "mv0", Parent: "eth0", Mode: "vepa"}, &netlink.Macvlan{LinkAttrs: child("mv0", 2), Mode: netlink.MACVLAN_MODE_VEPA}},
	{devices.Macvlan{Name: "mv0", Parent: "eth0", Mode: "bridge"}, &netlink.Macvlan{LinkAttrs: child("mv0", 2), Mode: netlink.MACVLAN_MODE_BRIDGE}},
	{devices.Macvlan{Name: "mv0", Parent: "eth0", Mode: "passthru"}, &netlink.Macvlan{LinkAttrs: child("mv0", 2), Mode: netlink.MACVLAN_MODE_PASSTHRU}},
	{devices.Macvlan{Name: "mv0", Parent: "eth0", Mode: "source"}, &netlink.Macvlan{LinkAttrs: child("mv0", 2), Mode: netlink.MACVLAN_MODE_SOURCE}},

	{devices.Macvtap{Name: "mvt0", Parent: "eth1", Mode: "bridge"},
		&netlink.Macvtap{Macvlan: netlink.Macvlan{LinkAttrs: child("mvt0", 3), Mode: netlink.MACVLAN_MODE_BRIDGE}}},

	{devices.Ipvlan{Name: "ipv0", Parent: "eth0"},
		&netlink.IPVlan{LinkAttrs: child("ipv0", 2), Mode: netlink.IPVLAN_MODE_L3, Flag: netlink.IPVLAN_FLAG_BRIDGE}},
	{devices.Ipvlan{Name: "ipv0", Parent: "eth0", Mode: "l2", Flag: "private"},
		&netlink.IPVlan{LinkAttrs: child("ipv0", 2), Mode: netlink.IPVLAN_MODE_L2, Flag: netlink.IPVLAN_FLAG_PRIVATE}},
	{devices.Ipvlan{Name: "ipv0", Parent: "eth0", Mode: "l3s", Flag: "vepa"},
		&netlink.IPVlan{LinkAttrs: child("ipv0", 2), Mode: netlink.IPVLAN_MODE_L3S, Flag: netlink.IPVLAN_FLAG_VEPA}},

	{devices.Vxlan{Name: "vx0", ID: 42, Remote: "198.18.0.2", Local: "198.18.0.1"},
		&netlink.Vxlan{LinkAttrs: attrs("vx0"), VxlanId: 42, SrcAddr: ip4("198.18.0.1"), Group: ip4("198.18.0.2"), Learning: true, Port: 4789}},
	{devices.Vxlan{Name: "vx0", Parent: "eth0", ID: 7, Group: "ff05::100", Local: "2001:db8::1", Port: 8472,
		Learning: ptrTo(false), TTL: 5, Tos: 1, L2miss: true, L3miss: true},
		&netlink.Vxlan{LinkAttrs: attrs("vx0"), VxlanId: 7, VtepDevIndex: 2, SrcAddr: ip6("2001:db8::1"), Group: ip6("ff05::100"),
			TTL: 5, TOS: 1, L2miss: true, L3miss: true, Port: 8472}},
	{devices.Vxlan{Name: "vx0", ID: 8, Learning: ptrTo(true)}, &netlink.Vxlan{LinkAttrs: attrs("vx0"), VxlanId: 8, Learning: true, Port: 4789}},

	{devices.Vxlan{Name: "vx0", External: true},
		&netlink.Vxlan{LinkAttrs: attrs("vx0"), FlowBased: true, Learning: true, Port: 4789}},
	{devices.Vxlan{Name: "vx0", External: true, GPE: true, Local: "198.18.0.1"},
		&VxlanGPE{Vxlan: netlink.Vxlan{LinkAttrs: attrs("vx0"), FlowBased: true, SrcAddr: ip4("198.18.0.1"), Port: 4790}}},
	{devices.Geneve{Name: "gnv0", External: true},
		&netlink.Geneve{LinkAttrs: attrs("gnv0"), FlowBased: true, Dport: 6081}},
	{devices.Gre{Name: "gre9", External: true},
		&netlink.Gretun{LinkAttrs: attrs("gre9"), Local: ip4("0.0.0.0"), PMtuDisc: 1, FlowBased: true}},
	{devices.Ip6gretap{Name: "gt9", External: true, Local: "2001:db8::1"},
		&netlink.Gretap{LinkAttrs: attrs("gt9"), Local: ip6("2001:db8::1"), FlowBased: true}},
	{devices.Geneve{Name: "gnv0", ID: 7, Remote: "2001:db8::2"},
		&netlink.Geneve{LinkAttrs: attrs("gnv0"), ID: 7, Remote: ip6("2001:db8::2"), Dport: 6081}},
	{devices.Geneve{Name: "gnv0", ID: 1<<24 - 1, Remote: "198.18.0.2", Port: 6082, TTL: 64},
		&netlink.Geneve{LinkAttrs: attrs("gnv0"), ID: 1<<24 - 1, Remote: ip4("198.18.0.2"), Dport: 6082, Ttl: 64}},

	{devices.Gre{Name: "gre1", Local: "198.18.0.1", Remote: "198.18.0.2", Parent: "eth0", IKey: 1, OKey: 2, TTL: 64},
		&netlink.Gretun{LinkAttrs: attrs("gre1"), Link: 2, IKey: 1, OKey: 2, Local: ip4("198.18.0.1"), Remote: ip4("198.18.0.2"), Ttl: 64, PMtuDisc: 1}},
	{devices.Gre{Name: "gre1", Remote: "198.18.0.2"},
		&netlink.Gretun{LinkAttrs: attrs("gre1"), Local: ip4("0.0.0.0"), Remote: ip4("198.18.0.2"), PMtuDisc: 1}},

	{devices.Ip6gre{Name: "ip6gre1", Local: "2001:db8::1", Remote: "2001:db8::2", IKey: 3, TTL: 10},
		&netlink.Gretun{LinkAttrs: attrs("ip6gre1"), IKey: 3, Local: ip6("2001:db8::1"), Remote: ip6("2001:db8::2"), Ttl: 10}},
	{devices.Ip6gre{Name: "ip6gre1", Remote: "2001:db8::2", Parent: "eth1"},
		&netlink.Gretun{LinkAttrs: attrs("ip6gre1"), Link: 3, Remote: ip6("2001:db8::2")}},

	{devices.Gretap{Name: "gt0", Local: "198.18.0.1", Remote: "198.18.0.2", Parent: "eth0", OKey: 9},
		&netlink.Gretap{LinkAttrs: attrs("gt0"), Link: 2, OKey: 9, Local: ip4("198.18.0.1"), Remote: ip4("198.18.0.2"), PMtuDisc: 1}},
	{devices.Gretap{Name: "gt0", Remote: "198.18.0.2"},
		&netlink.Gretap{LinkAttrs: attrs("gt0"), Local: ip4("0.0.0.0"), Remote: ip4("198.18.0.2"), PMtuDisc: 1}},

	{devices.Ip6gretap{Name: "gt6", Local: "2001:db8::1", Remote: "2001:db8::2", TTL: 3},
		&netlink.Gretap{LinkAttrs: attrs("gt6"), Local: ip6("2001:db8::1"), Remote: ip6("2001:db8::2"), Ttl: 3}},

	{devices.IpIp{Name: "ipip1", Local: "198.18.0.1", Remote: "198.18.0.2", Parent: "eth0", TTL: 64},
		&netlink.Iptun{LinkAttrs: attrs("ipip1"), Link: 2, Local: ip4("198.18.0.1"), Remote: ip4("198.18.0.2"), Ttl: 64, PMtuDisc: 1, Proto: unix.IPPROTO_IPIP}},

	{devices.Sit{Name: "sit1", Local: "198.18.0.1", Remote: "198.18.0.2", TTL: 64},
		&netlink.Sittun{LinkAttrs: attrs("sit1"), Local: ip4("198.18.0.1"), Remote: ip4("198.18.0.2"), Ttl: 64, PMtuDisc: 1, Proto: unix.IPPROTO_IPV6}},

	{devices.Ip6Tnl{Name: "ip6t", Local: "2001:db8::1", Remote: "2001:db8::2"},
		&netlink.Ip6tnl{LinkAttrs: attrs("ip6t"), Local: ip6("2001:db8::1"), Remote: ip6("2001:db8::2"), EncapLimit: 4}},
	{devices.Ip6Tnl{Name: "ip6t", Remote: "2001:db8::2", Parent: "eth0", Proto: "ip6ip6", TTL: 64},
		&netlink.Ip6tnl{LinkAttrs: attrs("ip6t"), Link: 2, Remote: ip6("2001:db8::2"), Ttl: 64, Proto: unix.IPPROTO_IPV6, EncapLimit: 4}},
	{devices.Ip6Tnl{Name: "ip6t", Remote: "2001:db8::2", Proto: "ipip6"},
		&netlink.Ip6tnl{LinkAttrs: attrs("ip6t"), Remote: ip6("2001:db8::2"), Proto: unix.IPPROTO_IPIP, EncapLimit: 4}},
	{devices.Ip6Tnl{Name: "ip6t", Remote: "2001:db8::2", Proto: "any"},
		&netlink.Ip6tnl{LinkAttrs: attrs("ip6t"), Remote: ip6("2001:db8::2"), EncapLimit: 4}},

	{devices.Vti{Name: "vti1", Local: "198.18.0.1", Remote: "198.18.0.2", IKey: 5, OKey: 6},
		&netlink.Vti{LinkAttrs: attrs("vti1"), IKey: 5, OKey: 6, Local: ip4("198.18.0.1"), Remote: ip4("198.18.0.2")}},
	{devices.Vti{Name: "vti1", Remote: "198.18.0.2", Parent: "eth0"},
		&netlink.Vti{LinkAttrs: attrs("vti1"), Link: 2, Local: ip4("0.0.0.0"), Remote: ip4("198.18.0.2")}},

	{devices.Vti6{Name: "vti61", Local: "2001:db8::1", Remote: "2001:db8::2", IKey: 5},
		&netlink.Vti{LinkAttrs: attrs("vti61"), IKey: 5, Local: ip6("2001:db8::1"), Remote: ip6("2001:db8::2")}},

	{devices.Xfrm{Name: "ipsec0", Parent: "eth0", IfID: 42}, &netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: "ipsec0", ParentIndex: 2}, Ifid: 42}},

	{devices.Wireguard{Name: "wg0", PrivateKey: "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", ListenPort: 51820}, &netlink.Wireguard{LinkAttrs: attrs("wg0")}},
}

func TestNetlinkLink(t *testing.T) {
	for _, c := range netlinkCases {
		got, err := Link(c.spec, testIndex)
		if !assert.NoError(t, err, "%#v", c.spec) {
			continue
		}
		assert.Equal(t, c.want, got, "%#v", c.spec)
		// The netlink type must be the one that makes the spec's kind.
		want := c.spec.Kind()
		if want == "tun" {
			want = "tuntap" // netlink's name for its Tuntap type
		}
		assert.Equal(t, want, got.Type(), "%#v", c.spec)
	}
}

// TestNetlinkLinkCoversEveryKind checks that every kind is mapped above or
// has no netlink create.
func TestNetlinkLinkCoversEveryKind(t *testing.T) {
	mapped := map[string]bool{"team": true, "openvswitch": true, "macsec": true} // ErrNotNetlink, tested below
	for _, c := range netlinkCases {
		mapped[c.spec.Kind()] = true
	}
	for _, k := range devices.Kinds() {
		assert.True(t, mapped[k], "no netlink case for kind %s", k)
	}
}

func TestNetlinkLinkNotNetlink(t *testing.T) {
	for _, spec := range []devices.Spec{devices.Team{Name: "team0", Runner: "lacp"}, devices.OvsBridge{Name: "ovsbr0"}, devices.Macsec{Name: "macsec0", Parent: "eth0"}} {
		l, err := Link(spec, testIndex)
		assert.Nil(t, l)
		assert.ErrorIs(t, err, ErrNotNetlink, "%#v", spec)
		assert.Contains(t, err.Error(), spec.Kind()+" "+spec.LinkName()+":")
	}
}

func TestNetlinkLinkErrors(t *testing.T) {
	_, err := Link(devices.Vlan{Name: "v", Parent: "eth9", ID: 5}, testIndex)
	assert.EqualError(t, err, `vlan v Parent: resolve "eth9": no device "eth9"`)

	_, err = Link(devices.Bond{Name: "bond0", Mode: "active-backup", Primary: "eth9"}, testIndex)
	assert.EqualError(t, err, `bond bond0 Primary: resolve "eth9": no device "eth9"`)

	_, err = Link(devices.Macvlan{Name: "mv0", Parent: "eth0"}, nil)
	assert.EqualError(t, err, `macvlan mv0 Parent: no index function to resolve "eth0"`)

	_, err = Link(devices.Vxlan{Name: "vx0", Parent: "eth0"}, func(string) (int, error) { return 0, nil })
	assert.EqualError(t, err, `vxlan vx0 Parent: resolve "eth0": bad ifindex 0`)

	_, err = Link(devices.Vlan{Name: "v", Parent: "eth0", ID: 5000}, testIndex)
	var ve *devices.ValidationError
	assert.True(t, errors.As(err, &ve), "invalid spec: %v", err)

	_, err = Link(nil, testIndex)
	assert.Error(t, err)

	_, err = Link(foreign{}, testIndex)
	assert.EqualError(t, err, "foo f0: nlspec.foreign has no netlink mapping")
}

// foreign is a Spec from outside the package's kinds.
type foreign struct{}

func (foreign) LinkName() string { return "f0" }
func (foreign) Kind() string     { return "foo" }
func (foreign) Validate() error  { return nil }

func TestNetlinkLinkPointer(t *testing.T) {
	l, err := Link(&devices.Dummy{Name: "d0"}, nil)
	require.NoError(t, err)
	assert.Equal(t, &netlink.Dummy{LinkAttrs: attrs("d0")}, l)
}

func TestSysfsSettings(t *testing.T) {
	assert.Nil(t, SysfsSettings(devices.Bridge{Name: "br0"}))
	assert.Nil(t, SysfsSettings(devices.Dummy{Name: "d0"}))
	assert.Equal(t, []SysfsSetting{{"bridge/stp_state", "1"}}, SysfsSettings(devices.Bridge{Name: "br0", STP: true}))
	assert.Equal(t, []SysfsSetting{{"bridge/forward_delay", "400"}, {"bridge/stp_state", "1"}},
		SysfsSettings(&devices.Bridge{Name: "br0", STP: true, ForwardDelay: 4 * time.Second}))
}

// FuzzLink checks that every spec Unmarshal accepts (so one that
// validates) maps to a netlink link, or says its kind has no netlink
// create, and that SysfsSettings takes it.
func FuzzLink(f *testing.F) {
	kinds := devices.Kinds()
	index := map[string]uint8{}
	for i, k := range kinds {
		index[k] = uint8(i)
	}
	for _, c := range netlinkCases {
		kind, data, err := devices.Marshal(c.spec)
		if err != nil {
			f.Fatalf("marshal %#v: %v", c.spec, err)
		}
		f.Add(index[kind], data)
	}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		if int(k) >= len(kinds) {
			return
		}
		spec, err := devices.Unmarshal(kinds[k], data)
		if err != nil {
			return
		}
		if _, err := Link(spec, func(string) (int, error) { return 7, nil }); err != nil && !errors.Is(err, ErrNotNetlink) {
			t.Fatalf("Link(%#v) of a valid spec: %v", spec, err)
		}
		_ = SysfsSettings(spec)
	})
}

// TestGPERequest checks the RTM_NEWLINK of a VXLAN-GPE device at the
// attribute level: kind vxlan, collect metadata on, learning off, the UDP
// port big-endian, and the IFLA_VXLAN_GPE flag netlink cannot send.
func TestGPERequest(t *testing.T) {
	l, err := Link(devices.Vxlan{Name: "gpe0", External: true, GPE: true, Local: "2001:db8::1", TTL: 9}, nil)
	require.NoError(t, err)
	gpe, ok := l.(*VxlanGPE)
	require.True(t, ok, "a GPE Vxlan maps to %T", l)
	req := GPERequest(gpe)
	msg := req.Serialize()
	assert.Equal(t, uint16(unix.RTM_NEWLINK), binary.NativeEndian.Uint16(msg[4:]))
	assert.Equal(t, uint16(unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK), binary.NativeEndian.Uint16(msg[6:]))
	attrs, err := nl.ParseRouteAttr(msg[unix.SizeofNlMsghdr+unix.SizeofIfInfomsg:])
	require.NoError(t, err)
	got := map[uint16][]byte{}
	for _, a := range attrs {
		got[a.Attr.Type] = a.Value
	}
	assert.Equal(t, "gpe0\x00", string(got[unix.IFLA_IFNAME]))
	info, err := nl.ParseRouteAttr(got[unix.IFLA_LINKINFO])
	require.NoError(t, err)
	require.Len(t, info, 2)
	assert.Equal(t, "vxlan", string(info[0].Value))
	data, err := nl.ParseRouteAttr(info[1].Value)
	require.NoError(t, err)
	vx := map[uint16][]byte{}
	for _, a := range data {
		vx[a.Attr.Type] = a.Value
	}
	assert.Equal(t, []byte{}, vx[iflaVxlanGPE], "IFLA_VXLAN_GPE, an empty flag")
	assert.Equal(t, []byte{1}, vx[nl.IFLA_VXLAN_FLOWBASED], "collect metadata")
	assert.Equal(t, []byte{0}, vx[nl.IFLA_VXLAN_LEARNING], "learning")
	assert.Equal(t, []byte{0x12, 0xb6}, vx[nl.IFLA_VXLAN_PORT], "port 4790, big-endian")
	assert.Equal(t, []byte{9}, vx[nl.IFLA_VXLAN_TTL])
	assert.Equal(t, []byte(ip6("2001:db8::1")), vx[nl.IFLA_VXLAN_LOCAL6])
	assert.NotContains(t, vx, uint16(nl.IFLA_VXLAN_LOCAL))
}
