package devices

import "github.com/lnst-go/lnst/devices/internal/specwire"

// registry maps every kind the package models to its Spec type. It is
// never written after it is built.
var registry = specwire.New[Spec]("device", "devices",
	Veth{}, Bridge{}, Dummy{}, Vrf{}, Tuntap{}, Ifb{},
	Bond{}, Team{},
	Vlan{}, Macvlan{}, Macvtap{}, Ipvlan{},
	Vxlan{}, Geneve{}, Gre{}, Ip6gre{}, Gretap{}, Ip6gretap{}, IpIp{}, Sit{}, Ip6Tnl{}, Vti{}, Vti6{}, Xfrm{}, Macsec{},
	Wireguard{}, OvsBridge{},
)

// Kinds returns every link kind the package models, sorted ("bond",
// "bridge", ...).
func Kinds() []string { return registry.Kinds() }

// Marshal encodes spec for the wire: its kind and the JSON of the struct.
// spec must be one of the package's types (or a pointer to one).
func Marshal(spec Spec) (kind string, data []byte, err error) { return registry.Marshal(spec) }

// Unmarshal decodes what Marshal encoded and validates it. An unknown kind,
// a field the kind's type lacks or an invalid spec is an error.
func Unmarshal(kind string, data []byte) (Spec, error) {
	return specwire.Unmarshal[Spec](registry, kind, data)
}
