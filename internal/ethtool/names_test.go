package ethtool

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExpand(t *testing.T) {
	for name, want := range map[string][]string{
		"rx":     {"rx-checksum"},
		"tx":     {"tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6", "tx-checksum-fcoe-crc", "tx-checksum-sctp"},
		"sg":     {"tx-scatter-gather", "tx-scatter-gather-fraglist"},
		"tso":    {"tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-tcp-accecn-segmentation"},
		"ufo":    {"tx-udp-fragmentation"},
		"gso":    {"tx-generic-segmentation"},
		"gro":    {"rx-gro"},
		"lro":    {"rx-lro"},
		"rxvlan": {"rx-vlan-hw-parse"},
		"txvlan": {"tx-vlan-hw-insert"},
		"ntuple": {"rx-ntuple-filter"},
		"rxhash": {"rx-hashing"},
		// Full kernel names stand for themselves, including ones that
		// look like a short name's members.
		"rx-gro":                {"rx-gro"},
		"tx-checksum-ipv4":      {"tx-checksum-ipv4"},
		"tx-lockless":           {"tx-lockless"},
		"rx-udp-gro-forwarding": {"rx-udp-gro-forwarding"},
	} {
		got, err := Expand(name)
		require.NoError(t, err, name)
		require.Equal(t, want, got, name)
	}
}

func TestExpandUnknown(t *testing.T) {
	for _, name := range []string{"", "GRO", "generic-receive-offload", "rx-gro ", "tx-checksum-*"} {
		_, err := Expand(name)
		require.Error(t, err, "%q", name)
		require.ErrorContains(t, err, "unknown ethtool feature "+`"`+name+`"`)
		require.ErrorContains(t, err, "rx, tx, sg, tso, ufo, gso, gro, lro, rxvlan, txvlan, ntuple, rxhash")
	}
}

func TestKnownFeaturesUnique(t *testing.T) {
	seen := make(map[string]bool)
	for _, n := range knownFeatures {
		require.False(t, seen[n], "duplicate %s", n)
		require.Less(t, len(n), ethGStringLen, n)
		seen[n] = true
	}
	for _, s := range shortNames {
		require.False(t, seen[s.name], "short name %s is also a kernel name", s.name)
		members, _ := expandIn(s.name, knownFeatures)
		require.NotEmpty(t, members, "short name %s matches no known feature", s.name)
	}
}
