package devices

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Test WireGuard keys: 32 bytes each, base64.
var (
	key1 = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x01", 32)))
	key2 = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x02", 32)))
)

// validateCases has, for every kind, valid specs (err "") and invalid ones
// with the start of the error message they must give.
var validateCases = []struct {
	spec Spec
	err  string
}{
	{Veth{Name: "v0", PeerName: "v1"}, ""},
	{Veth{Name: "", PeerName: "v1"}, "veth Name: device name is empty"},
	{Veth{Name: "v0", PeerName: "v0"}, "veth v0: PeerName is the same as Name"},
	{Veth{Name: "v0", PeerName: "a/b"}, `veth v0 PeerName: device name "a/b" has a character`},
	{Veth{Name: "v0"}, "veth v0 PeerName: is required"},

	{Bridge{Name: "br0"}, ""},
	{Bridge{Name: "br0", STP: true, VlanFiltering: true, AgeingTime: 30 * time.Second, ForwardDelay: 4 * time.Second,
		HelloTime: 2 * time.Second, MulticastSnooping: ptrTo(false), VlanDefaultPVID: ptrTo(0)}, ""},
	{Bridge{Name: "averyverylongname"}, `bridge Name: device name "averyverylongname" is longer than 15 bytes`},
	{Bridge{Name: ".."}, `bridge Name: device name ".." is not allowed`},
	{Bridge{Name: "br0", AgeingTime: -time.Second}, "bridge br0 AgeingTime: -1s is negative"},
	{Bridge{Name: "br0", AgeingTime: 15 * time.Millisecond}, "bridge br0 AgeingTime: 15ms is not a whole number of 10ms"},
	{Bridge{Name: "br0", HelloTime: 500 * time.Millisecond}, "bridge br0 HelloTime: 500ms is below the minimum 1s"},
	{Bridge{Name: "br0", HelloTime: 11 * time.Second}, "bridge br0 HelloTime: 11s is above the maximum 10s"},
	{Bridge{Name: "br0", STP: true, ForwardDelay: time.Second}, "bridge br0 ForwardDelay: 1s is out of range 2s..30s (STP is on)"},
	{Bridge{Name: "br0", VlanDefaultPVID: ptrTo(4095)}, "bridge br0 VlanDefaultPVID: 4095 is out of range 0..4094"},

	{Dummy{Name: "d0"}, ""},
	{Ifb{Name: "ifb0"}, ""},
	{Ifb{Name: "a/b"}, `ifb Name: device name "a/b" has a character`},
	{Dummy{Name: "a:b"}, `dummy Name: device name "a:b" has a character`},

	{Vrf{Name: "vrf0", Table: 10}, ""},
	{Vrf{Name: "vrf0"}, "vrf vrf0 Table: is required (not 0)"},

	{Tuntap{Name: "tap0", Mode: "tap", Multiqueue: true, Owner: 1000, Group: 1000}, ""},
	{Tuntap{Name: "tun0", Mode: "tun"}, ""},
	{Tuntap{Name: "tun0"}, `tun tun0 Mode: "" is not one of "tun", "tap"`},
	{Tuntap{Name: "tun0", Mode: "tun", Owner: -1}, "tun tun0 Owner: -1 is out of range 0..4294967294"},
	{Tuntap{Name: "tun0", Mode: "tun", Group: -1}, "tun tun0 Group: -1 is out of range 0..4294967294"},

	{Bond{Name: "bond0"}, ""},
	{Bond{Name: "bond0", Mode: "802.3ad", Miimon: 100 * time.Millisecond, UpDelay: 200 * time.Millisecond,
		DownDelay: 300 * time.Millisecond, LACPRate: "fast", XmitHashPolicy: "layer3+4", MinLinks: 1}, ""},
	{Bond{Name: "bond0", Mode: "active-backup", Primary: "eth1"}, ""},
	{Bond{Name: "bond0", Mode: "active_backup"}, `bond bond0 Mode: "active_backup" is not one of "balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"`},
	{Bond{Name: "bond0", Miimon: 1500 * time.Microsecond}, "bond bond0 Miimon: 1.5ms is not a whole number of 1ms"},
	{Bond{Name: "bond0", Miimon: -time.Millisecond}, "bond bond0 Miimon: -1ms is negative"},
	{Bond{Name: "bond0", Miimon: 100 * time.Millisecond, UpDelay: 150 * time.Millisecond}, "bond bond0 UpDelay: 150ms is not a multiple of Miimon 100ms"},
	{Bond{Name: "bond0", Miimon: 100 * time.Millisecond, DownDelay: 50 * time.Millisecond}, "bond bond0 DownDelay: 50ms is not a multiple of Miimon 100ms"},
	{Bond{Name: "bond0", Mode: "802.3ad", LACPRate: "quick"}, `bond bond0 LACPRate: "quick" is not one of "slow", "fast"`},
	{Bond{Name: "bond0", Mode: "balance-rr", LACPRate: "fast"}, `bond bond0 LACPRate: applies only to Mode 802.3ad, not "balance-rr"`},
	{Bond{Name: "bond0", XmitHashPolicy: "layer4"}, `bond bond0 XmitHashPolicy: "layer4" is not one of "layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4"`},
	{Bond{Name: "bond0", Mode: "802.3ad", Primary: "eth1"}, `bond bond0 Primary: applies only to Mode active-backup, balance-tlb or balance-alb, not "802.3ad"`},
	{Bond{Name: "bond0", Mode: "active-backup", Primary: "bond0"}, "bond bond0 Primary: is the device itself"},
	{Bond{Name: "bond0", MinLinks: -1}, "bond bond0 MinLinks: -1 is out of range 0..2147483647"},

	{Team{Name: "team0"}, ""},
	{Team{Name: "team0", Runner: "lacp", LinkWatch: "arp_ping"}, ""},
	{Team{Name: "team0", Runner: "active-backup"}, `team team0 Runner: "active-backup" is not one of "activebackup", "roundrobin"`},
	{Team{Name: "team0", LinkWatch: "mii"}, `team team0 LinkWatch: "mii" is not one of "ethtool", "arp_ping", "nsna_ping"`},

	{Vlan{Name: "eth0.10", Parent: "eth0", ID: 10}, ""},
	{Vlan{Name: "eth0.10", Parent: "eth0", ID: 10, Protocol: "802.1ad"}, ""},
	{Vlan{Name: "eth0.10", ID: 10}, "vlan eth0.10 Parent: is required"},
	{Vlan{Name: "eth0.0", Parent: "eth0", ID: 0}, "vlan eth0.0 ID: 0 is out of range 1..4094"},
	{Vlan{Name: "eth0.4095", Parent: "eth0", ID: 4095}, "vlan eth0.4095 ID: 4095 is out of range 1..4094"},
	{Vlan{Name: "v", Parent: "eth0", ID: 1, Protocol: "802.1x"}, `vlan v Protocol: "802.1x" is not one of "802.1Q", "802.1ad"`},

	{Macvlan{Name: "mv0", Parent: "eth0", Mode: "bridge"}, ""},
	{Macvlan{Name: "mv0", Parent: "eth0"}, ""},
	{Macvlan{Name: "mv0", Mode: "bridge"}, "macvlan mv0 Parent: is required"},
	{Macvlan{Name: "mv0", Parent: "eth0", Mode: "l2"}, `macvlan mv0 Mode: "l2" is not one of "private", "vepa", "bridge", "passthru", "source"`},
	{Macvlan{Name: "mv0", Parent: "mv0"}, "macvlan mv0 Parent: is the device itself"},

	{Macvtap{Name: "mvt0", Parent: "eth0", Mode: "passthru"}, ""},
	{Macvtap{Name: "mvt0"}, "macvtap mvt0 Parent: is required"},
	{Macvtap{Name: "mvt0", Parent: "eth0", Mode: "hub"}, `macvtap mvt0 Mode: "hub" is not one of`},

	{Ipvlan{Name: "ipv0", Parent: "eth0", Mode: "l3s", Flag: "vepa"}, ""},
	{Ipvlan{Name: "ipv0", Parent: "eth0"}, ""},
	{Ipvlan{Name: "ipv0"}, "ipvlan ipv0 Parent: is required"},
	{Ipvlan{Name: "ipv0", Parent: "eth0", Mode: "l4"}, `ipvlan ipv0 Mode: "l4" is not one of "l2", "l3", "l3s"`},
	{Ipvlan{Name: "ipv0", Parent: "eth0", Flag: "passthru"}, `ipvlan ipv0 Flag: "passthru" is not one of "bridge", "private", "vepa"`},

	{Vxlan{Name: "vx0", ID: 42, Remote: "198.18.0.2", Local: "198.18.0.1"}, ""},
	{Vxlan{Name: "vx0", Parent: "eth0", ID: 1<<24 - 1, Group: "ff05::100", Local: "2001:db8::1", Port: 8472,
		Learning: ptrTo(false), TTL: 5, Tos: 1, L2miss: true, L3miss: true}, ""},
	{Vxlan{Name: "vx0", ID: 1 << 24}, "vxlan vx0 ID: 16777216 is out of range 0..16777215"},
	{Vxlan{Name: "vx0", ID: -1}, "vxlan vx0 ID: -1 is out of range 0..16777215"},
	{Vxlan{Name: "vx0", Remote: "198.18.0.300"}, `vxlan vx0 Remote: "198.18.0.300" is not an IP address`},
	{Vxlan{Name: "vx0", Local: "fe80::1%eth0"}, `vxlan vx0 Local: "fe80::1%eth0" has a zone`},
	{Vxlan{Name: "vx0", Remote: "2001:db8::2", Local: "198.18.0.1"}, "vxlan vx0 Remote: 2001:db8::2 is an IPv6 address but Local 198.18.0.1 is IPv4"},
	{Vxlan{Name: "vx0", Remote: "239.1.1.1"}, "vxlan vx0 Remote: 239.1.1.1 is a multicast address; give it as Group"},
	{Vxlan{Name: "vx0", Group: "198.18.0.1"}, "vxlan vx0 Group: 198.18.0.1 is not a multicast address"},
	{Vxlan{Name: "vx0", Group: "239.1.1.1", Remote: "198.18.0.2"}, "vxlan vx0 Group: set with Remote 198.18.0.2; give one of them"},
	{Vxlan{Name: "vx0", Group: "ff05::100", Local: "198.18.0.1"}, "vxlan vx0 Group: ff05::100 is an IPv6 address but Local 198.18.0.1 is IPv4"},
	{Vxlan{Name: "vx0", Port: 65536}, "vxlan vx0 Port: 65536 is out of range 0..65535"},
	{Vxlan{Name: "vx0", TTL: 256}, "vxlan vx0 TTL: 256 is out of range 0..255"},
	{Vxlan{Name: "vx0", Tos: -1}, "vxlan vx0 Tos: -1 is out of range 0..255"},
	{Vxlan{Name: "vx0", Parent: "a b"}, `vxlan vx0 Parent: device name "a b" has a character`},
	{Vxlan{Name: "vx0", External: true, Local: "198.18.0.1", Port: 4789}, ""},
	{Vxlan{Name: "vx0", External: true, ID: 42}, "vxlan vx0 ID: 42 set with External: the route's encap gives the VNI"},
	{Vxlan{Name: "vx0", External: true, Remote: "198.18.0.2"}, "vxlan vx0 Remote: 198.18.0.2 set with External: the route's encap gives the remote"},
	{Vxlan{Name: "vx0", External: true, Group: "239.1.1.1"}, "vxlan vx0 Group: 239.1.1.1 set with External, which has no multicast group"},
	{Vxlan{Name: "vx0", External: true, GPE: true}, ""},
	{Vxlan{Name: "vx0", ID: 42, Remote: "198.18.0.2", GPE: true}, "vxlan vx0 GPE: needs External (the kernel has VXLAN-GPE in collect-metadata mode only)"},
	{Vxlan{Name: "vx0", External: true, GPE: true, Learning: ptrTo(true)}, "vxlan vx0 Learning: on with GPE, which carries no Ethernet header to learn from"},
	{Vxlan{Name: "vx0", External: true, GPE: true, L3miss: true}, "vxlan vx0 L2miss: L2miss and L3miss are not for GPE, which has no Ethernet header"},

	{Geneve{Name: "gnv0", ID: 7, Remote: "2001:db8::2", Port: 6082, TTL: 64}, ""},
	{Geneve{Name: "gnv0", ID: 7}, "geneve gnv0 Remote: is required (or External)"},
	{Geneve{Name: "gnv0", External: true}, ""},
	{Geneve{Name: "gnv0", External: true, ID: 7}, "geneve gnv0 ID: 7 set with External: the route's encap gives the VNI"},
	{Geneve{Name: "gnv0", External: true, Remote: "198.18.0.2"}, "geneve gnv0 Remote: 198.18.0.2 set with External: the route's encap gives the remote"},
	{Geneve{Name: "gnv0", ID: 1 << 24, Remote: "198.18.0.2"}, "geneve gnv0 ID: 16777216 is out of range 0..16777215"},
	{Geneve{Name: "gnv0", Remote: "host"}, `geneve gnv0 Remote: "host" is not an IP address`},
	{Geneve{Name: "gnv0", Remote: "198.18.0.2", Port: -1}, "geneve gnv0 Port: -1 is out of range 0..65535"},
	{Geneve{Name: "gnv0", Remote: "198.18.0.2", TTL: 300}, "geneve gnv0 TTL: 300 is out of range 0..255"},

	{Gre{Name: "gre1", Local: "198.18.0.1", Remote: "198.18.0.2", IKey: 1, OKey: 2, TTL: 64}, ""},
	{Gre{Name: "gre1", Remote: "2001:db8::2"}, "gre gre1 Remote: 2001:db8::2 is an IPv6 address; gre needs IPv4 (use Ip6gre)"},
	{Gre{Name: "gre1", Local: "198.18.0.1", Remote: "198.18.0.2", TTL: 256}, "gre gre1 TTL: 256 is out of range 0..255"},
	{Gre{Name: "gre1", Remote: "198.18.0.2", Parent: "gre1"}, "gre gre1 Parent: is the device itself"},

	{Ip6gre{Name: "ip6gre1", Local: "2001:db8::1", Remote: "2001:db8::2"}, ""},
	{Ip6gre{Name: "ip6gre1", Local: "198.18.0.1"}, "ip6gre ip6gre1 Local: 198.18.0.1 is an IPv4 address; ip6gre needs IPv6 (use Gre)"},

	{Gretap{Name: "gt0", Local: "198.18.0.1", Remote: "198.18.0.2", Parent: "eth0"}, ""},
	{Gretap{Name: "gt0", External: true, Local: "198.18.0.1"}, ""},
	{Gretap{Name: "gt0", External: true, Remote: "198.18.0.2"}, "gretap gt0 Remote: 198.18.0.2 set with External: the route's encap gives the remote"},
	{Gre{Name: "gre1", External: true, OKey: 3}, "gre gre1 IKey: IKey 0 and OKey 3 set with External: the route's encap gives the key"},
	{Ip6gretap{Name: "gt6", External: true}, ""},
	{Gretap{Name: "gt0", Local: "2001:db8::1"}, "gretap gt0 Local: 2001:db8::1 is an IPv6 address; gretap needs IPv4 (use Ip6gretap)"},

	{Ip6gretap{Name: "gt6", Remote: "2001:db8::2"}, ""},
	{Ip6gretap{Name: "gt6", Remote: "198.18.0.2"}, "ip6gretap gt6 Remote: 198.18.0.2 is an IPv4 address; ip6gretap needs IPv6 (use Gretap)"},

	{IpIp{Name: "ipip1", Local: "198.18.0.1", Remote: "198.18.0.2", TTL: 64}, ""},
	{IpIp{Name: "ipip1", Remote: "2001:db8::2"}, "ipip ipip1 Remote: 2001:db8::2 is an IPv6 address; ipip needs IPv4 (use Ip6Tnl)"},

	{Sit{Name: "sit1", Local: "198.18.0.1", Remote: "198.18.0.2"}, ""},
	{Sit{Name: "sit1", Local: "198.18.0.1", Remote: "x"}, `sit sit1 Remote: "x" is not an IP address`},

	{Ip6Tnl{Name: "ip6t", Local: "2001:db8::1", Remote: "2001:db8::2", Proto: "ipip6"}, ""},
	{Ip6Tnl{Name: "ip6t", Local: "198.18.0.1"}, "ip6tnl ip6t Local: 198.18.0.1 is an IPv4 address; ip6tnl needs IPv6 (use IpIp or Sit)"},
	{Ip6Tnl{Name: "ip6t", Proto: "gre"}, `ip6tnl ip6t Proto: "gre" is not one of "ip6ip6", "ipip6", "any"`},

	{Vti{Name: "vti1", Local: "198.18.0.1", Remote: "198.18.0.2", IKey: 5, OKey: 6}, ""},
	{Vti{Name: "vti1", Local: "2001:db8::1", Remote: "2001:db8::2"}, "vti vti1 Local: 2001:db8::1 is an IPv6 address; vti needs IPv4 (use Vti6)"},

	{Vti6{Name: "vti61", Local: "2001:db8::1", Remote: "2001:db8::2"}, ""},
	{Vti6{Name: "vti61", Remote: "198.18.0.2"}, "vti6 vti61 Remote: 198.18.0.2 is an IPv4 address; vti6 needs IPv6 (use Vti)"},

	{Xfrm{Name: "ipsec0", Parent: "eth0", IfID: 42}, ""},
	{Xfrm{Name: "ipsec0"}, "xfrm ipsec0 IfID: is 0; the kernel needs an interface id of 1 or more"},

	{Macsec{Name: "macsec0", Parent: "eth0"}, ""},
	{Macsec{Name: "macsec0", Parent: "eth0", Cipher: "gcm-aes-xpn-256", ICVLen: 8, Encrypt: ptrTo(false), Validation: "check", ReplayWindow: ptrTo(uint32(0))}, ""},
	{Macsec{Name: "macsec0", Parent: "eth0", Cipher: "gcm-aes-512"}, `macsec macsec0 Cipher: "gcm-aes-512" is not one of`},

	{Wireguard{Name: "wg0"}, ""},
	{Wireguard{Name: "wg0", PrivateKey: key1, ListenPort: 51820, Peers: []WireguardPeer{{
		PublicKey: key2, Endpoint: "198.18.0.2:51820", AllowedIPs: []string{"198.18.1.0/24", "2001:db8:1::/64"},
		PersistentKeepalive: 25 * time.Second}}}, ""},
	{Wireguard{Name: "wg0", PrivateKey: "not base64!"}, "wireguard wg0 PrivateKey: is not base64"},
	{Wireguard{Name: "wg0", PrivateKey: base64.StdEncoding.EncodeToString([]byte("short"))}, "wireguard wg0 PrivateKey: is 5 bytes, want 32"},
	{Wireguard{Name: "wg0", ListenPort: 70000}, "wireguard wg0 ListenPort: 70000 is out of range 0..65535"},
	{Wireguard{Name: "wg0", Peers: []WireguardPeer{{}}}, "wireguard wg0 Peers[0].PublicKey: is required"},
	{Wireguard{Name: "wg0", Peers: []WireguardPeer{{PublicKey: key2}, {PublicKey: key2}}}, "wireguard wg0 Peers[1].PublicKey: is the same as Peers[0]'s"},
	{Wireguard{Name: "wg0", Peers: []WireguardPeer{{PublicKey: key2, Endpoint: "198.18.0.2"}}}, `wireguard wg0 Peers[0].Endpoint: "198.18.0.2" is not host:port`},
	{Wireguard{Name: "wg0", Peers: []WireguardPeer{{PublicKey: key2, Endpoint: "198.18.0.2:0"}}}, `wireguard wg0 Peers[0].Endpoint: "198.18.0.2:0" is not host:port with a port 1..65535`},
	{Wireguard{Name: "wg0", Peers: []WireguardPeer{{PublicKey: key2, AllowedIPs: []string{"198.18.1.0/24", "198.18.2.0"}}}}, `wireguard wg0 Peers[0].AllowedIPs[1]: "198.18.2.0" is not a prefix`},
	{Wireguard{Name: "wg0", Peers: []WireguardPeer{{PublicKey: key2, PersistentKeepalive: 1500 * time.Millisecond}}}, "wireguard wg0 Peers[0].PersistentKeepalive: 1.5s is not a whole number of 1s"},

	{OvsBridge{Name: "ovsbr0"}, ""},
	{OvsBridge{Name: ""}, "openvswitch Name: device name is empty"},
}

func TestValidate(t *testing.T) {
	for _, c := range validateCases {
		err := c.spec.Validate()
		if c.err == "" {
			assert.NoError(t, err, "%#v", c.spec)
			continue
		}
		if assert.Error(t, err, "%#v", c.spec) {
			assert.True(t, strings.HasPrefix(err.Error(), c.err), "%#v:\n got  %s\n want %s...", c.spec, err, c.err)
			var ve *ValidationError
			assert.True(t, errors.As(err, &ve), "%T is not a *ValidationError", err)
		}
	}
}

// TestValidateCoversEveryKind checks that every kind has a valid and an
// invalid case above.
func TestValidateCoversEveryKind(t *testing.T) {
	valid, invalid := map[string]bool{}, map[string]bool{}
	for _, c := range validateCases {
		if c.err == "" {
			valid[c.spec.Kind()] = true
		} else {
			invalid[c.spec.Kind()] = true
		}
	}
	for _, k := range Kinds() {
		assert.True(t, valid[k], "no valid case for kind %s", k)
		assert.True(t, invalid[k], "no invalid case for kind %s", k)
	}
}

func TestValidationError(t *testing.T) {
	inner := errors.New("is wrong")
	err := &ValidationError{Kind: "bond", Name: "bond0", Field: "Mode", Err: inner}
	assert.Equal(t, "bond bond0 Mode: is wrong", err.Error())
	assert.ErrorIs(t, err, inner)
	assert.Equal(t, "veth: is wrong", (&ValidationError{Kind: "veth", Err: inner}).Error())
}

func TestCheckName(t *testing.T) {
	require.NoError(t, CheckName("enp3s0f0"))
	require.NoError(t, CheckName("exactly15bytes_"))
	for _, bad := range []string{"", ".", "..", "a/b", "a:b", "a b", "a\tb", "sixteen_bytes___"} {
		assert.Error(t, CheckName(bad), "%q", bad)
	}
}

func ptrTo[T any](v T) *T { return &v }

// foreign is a Spec from outside the package's kinds.
type foreign struct{}

func (foreign) LinkName() string { return "f0" }
func (foreign) Kind() string     { return "foo" }
func (foreign) Validate() error  { return nil }
