package ethtool

import "fmt"

// Layouts of ethtool -S (ETHTOOL_GSTATS) and its string set.
const (
	cmdGStats  = 0x1d // ETHTOOL_GSTATS
	ethSSStats = 1    // ETH_SS_STATS
	// struct ethtool_stats { cmd; n_stats; u64 data[] }
	gstatsHdrLen = 4 + 4
)

func encodeSSetInfoOf(set uint32) []byte {
	buf := make([]byte, ssetInfoLen)
	native.PutUint32(buf[0:], cmdGSSetInfo)
	native.PutUint64(buf[8:], 1<<set)
	return buf
}

// decodeSSetInfoOf returns the size of string set set, 0 when the device
// has none.
func decodeSSetInfoOf(buf []byte, set uint32) int {
	if native.Uint64(buf[8:])&(1<<set) == 0 {
		return 0
	}
	return int(native.Uint32(buf[16:]))
}

func encodeGStringsOf(set uint32, n int) []byte {
	buf := make([]byte, gstringsHdrLen+n*ethGStringLen)
	native.PutUint32(buf[0:], cmdGStrings)
	native.PutUint32(buf[4:], set)
	native.PutUint32(buf[8:], uint32(n))
	return buf
}

func encodeGStats(n int) []byte {
	buf := make([]byte, gstatsHdrLen+8*n)
	native.PutUint32(buf[0:], cmdGStats)
	native.PutUint32(buf[4:], uint32(n))
	return buf
}

// decodeGStats pairs the values of an ETHTOOL_GSTATS answer with their
// names.
func decodeGStats(buf []byte, names []string) (map[string]uint64, error) {
	n := int(native.Uint32(buf[4:]))
	if n != len(names) || gstatsHdrLen+8*n > len(buf) {
		return nil, fmt.Errorf("kernel returned %d statistics for %d names", n, len(names))
	}
	out := make(map[string]uint64, n)
	for i, name := range names {
		out[name] = native.Uint64(buf[gstatsHdrLen+8*i:])
	}
	return out, nil
}
