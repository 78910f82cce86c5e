package ethtool

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// shortName is one of the group names `ethtool -K` accepts, with the
// pattern (path.Match syntax) ethtool matches against kernel feature names.
type shortName struct {
	name    string
	pattern string
}

// shortNames mirrors off_flag_def in ethtool's ethtool.c.
var shortNames = []shortName{
	{"rx", "rx-checksum"},
	{"tx", "tx-checksum-*"},
	{"sg", "tx-scatter-gather*"},
	{"tso", "tx-tcp*-segmentation"},
	{"ufo", "tx-udp-fragmentation"},
	{"gso", "tx-generic-segmentation"},
	{"gro", "rx-gro"},
	{"lro", "rx-lro"},
	{"rxvlan", "rx-vlan-hw-parse"},
	{"txvlan", "tx-vlan-hw-insert"},
	{"ntuple", "rx-ntuple-filter"},
	{"rxhash", "rx-hashing"},
}

// knownFeatures are the kernel's feature names (netdev_features_strings) in
// bit order as of Linux 6.18, plus names older kernels had (tx-lockless,
// netns-local, tx-udp-fragmentation, fcoe-mtu). Expand checks full names
// against it; Set also accepts any name the device itself reports.
var knownFeatures = []string{
	"tx-scatter-gather",
	"tx-checksum-ipv4",
	"tx-checksum-ip-generic",
	"tx-checksum-ipv6",
	"highdma",
	"tx-scatter-gather-fraglist",
	"tx-vlan-hw-insert",
	"rx-vlan-hw-parse",
	"rx-vlan-filter",
	"vlan-challenged",
	"tx-generic-segmentation",
	"rx-gro",
	"rx-lro",
	"tx-tcp-segmentation",
	"tx-gso-robust",
	"tx-tcp-ecn-segmentation",
	"tx-tcp-mangleid-segmentation",
	"tx-tcp6-segmentation",
	"tx-fcoe-segmentation",
	"tx-gre-segmentation",
	"tx-gre-csum-segmentation",
	"tx-ipxip4-segmentation",
	"tx-ipxip6-segmentation",
	"tx-udp_tnl-segmentation",
	"tx-udp_tnl-csum-segmentation",
	"tx-gso-partial",
	"tx-tunnel-remcsum-segmentation",
	"tx-sctp-segmentation",
	"tx-esp-segmentation",
	"tx-udp-segmentation",
	"tx-gso-list",
	"tx-tcp-accecn-segmentation",
	"tx-checksum-fcoe-crc",
	"tx-checksum-sctp",
	"rx-ntuple-filter",
	"rx-hashing",
	"rx-checksum",
	"tx-nocache-copy",
	"loopback",
	"rx-fcs",
	"rx-all",
	"tx-vlan-stag-hw-insert",
	"rx-vlan-stag-hw-parse",
	"rx-vlan-stag-filter",
	"l2-fwd-offload",
	"hw-tc-offload",
	"esp-hw-offload",
	"esp-tx-csum-hw-offload",
	"rx-udp_tunnel-port-offload",
	"tls-hw-tx-offload",
	"tls-hw-rx-offload",
	"rx-gro-hw",
	"tls-hw-record",
	"rx-gro-list",
	"macsec-hw-offload",
	"rx-udp-gro-forwarding",
	"hsr-tag-ins-offload",
	"hsr-tag-rm-offload",
	"hsr-fwd-offload",
	"hsr-dup-offload",
	// Gone from recent kernels, still found on older ones.
	"tx-lockless",
	"netns-local",
	"tx-udp-fragmentation",
	"fcoe-mtu",
}

// Expand returns the kernel feature names a Set name stands for: the
// members of an `ethtool -K` short name (rx, tx, sg, tso, ufo, gso, gro,
// lro, rxvlan, txvlan, ntuple, rxhash) among the known kernel names, or the
// name itself if it is a known kernel feature name. Which of them a device
// has is only known to Set.
func Expand(name string) ([]string, error) {
	if members, ok := expandIn(name, knownFeatures); ok {
		return members, nil
	}
	if slices.Contains(knownFeatures, name) {
		return []string{name}, nil
	}
	return nil, unknownError(name)
}

// expandIn returns the names among names that the short name short stands
// for, in the order of names; ok is false if short is not a short name.
func expandIn(short string, names []string) (members []string, ok bool) {
	i := slices.IndexFunc(shortNames, func(s shortName) bool { return s.name == short })
	if i < 0 {
		return nil, false
	}
	for _, n := range names {
		if matched, _ := path.Match(shortNames[i].pattern, n); matched {
			members = append(members, n)
		}
	}
	return members, true
}

func unknownError(name string) error {
	short := make([]string, len(shortNames))
	for i, s := range shortNames {
		short[i] = s.name
	}
	return fmt.Errorf("unknown ethtool feature %q: want a short name (%s) or a kernel feature name such as rx-gro",
		name, strings.Join(short, ", "))
}
