package ethtool

import (
	"encoding/binary"
	"fmt"
)

// Layouts of the ethtool requests from <linux/ethtool.h>; all fields are
// host-endian u32 unless noted.
const (
	cmdGStrings   = 0x1b // ETHTOOL_GSTRINGS
	cmdGSSetInfo  = 0x37 // ETHTOOL_GSSET_INFO
	cmdGFeatures  = 0x3a // ETHTOOL_GFEATURES
	cmdSFeatures  = 0x3b // ETHTOOL_SFEATURES
	ethSSFeatures = 4    // ETH_SS_FEATURES
	ethGStringLen = 32   // ETH_GSTRING_LEN

	// Flags ETHTOOL_SFEATURES returns as a positive ioctl result.
	flagUnsupported = 1 << 0 // ETHTOOL_F_UNSUPPORTED: some valid bits are not changeable
	flagWish        = 1 << 1 // ETHTOOL_F_WISH: some requested values did not become active

	// struct ethtool_sset_info { cmd; reserved; u64 sset_mask; u32 data[] }
	ssetInfoLen = 4 + 4 + 8 + 4
	// struct ethtool_gstrings { cmd; string_set; len; u8 data[] }
	gstringsHdrLen = 4 + 4 + 4
	// struct ethtool_gfeatures / ethtool_sfeatures { cmd; size; blocks[] }
	featuresHdrLen = 4 + 4
	// struct ethtool_get_features_block { available; requested; active; never_changed }
	getBlockLen = 4 * 4
	// struct ethtool_set_features_block { valid; requested }
	setBlockLen = 2 * 4
)

var native = binary.NativeEndian

// blockCount is the number of 32-bit words holding n feature bits.
func blockCount(n int) int { return (n + 31) / 32 }

// bitAt reports whether feature index i is set in words; indices past the
// end are unset.
func bitAt(words []uint32, i int) bool {
	if i/32 >= len(words) {
		return false
	}
	return words[i/32]&(1<<(i%32)) != 0
}

// pack turns feature values by index into the valid and requested words of
// ETHTOOL_SFEATURES: valid marks the indices present in bits, requested
// their values. size is the number of words.
func pack(size int, bits map[int]bool) (valid, requested []uint32, err error) {
	valid = make([]uint32, size)
	requested = make([]uint32, size)
	for i, on := range bits {
		if i < 0 || i/32 >= size {
			return nil, nil, fmt.Errorf("feature index %d out of range for %d words", i, size)
		}
		valid[i/32] |= 1 << (i % 32)
		if on {
			requested[i/32] |= 1 << (i % 32)
		}
	}
	return valid, requested, nil
}

// unpack maps names[i] to bit i of words.
func unpack(words []uint32, names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for i, n := range names {
		m[n] = bitAt(words, i)
	}
	return m
}

// blocks is the state ETHTOOL_GFEATURES reports, one word per 32 features
// in each slice.
type blocks struct {
	available, requested, active, neverChanged []uint32
}

// fixed reports whether feature i cannot be changed, by the rule ethtool
// uses for "[fixed]": not in the device's hw_features, or never changeable.
func (b blocks) fixed(i int) bool {
	return !bitAt(b.available, i) || bitAt(b.neverChanged, i)
}

func encodeSSetInfo() []byte {
	buf := make([]byte, ssetInfoLen)
	native.PutUint32(buf[0:], cmdGSSetInfo)
	native.PutUint64(buf[8:], 1<<ethSSFeatures)
	return buf
}

func decodeSSetInfo(buf []byte) (int, error) {
	if native.Uint64(buf[8:])&(1<<ethSSFeatures) == 0 {
		return 0, fmt.Errorf("kernel has no features string set")
	}
	return int(native.Uint32(buf[16:])), nil
}

func encodeGStrings(n int) []byte {
	buf := make([]byte, gstringsHdrLen+n*ethGStringLen)
	native.PutUint32(buf[0:], cmdGStrings)
	native.PutUint32(buf[4:], ethSSFeatures)
	native.PutUint32(buf[8:], uint32(n))
	return buf
}

func decodeGStrings(buf []byte) ([]string, error) {
	n := int(native.Uint32(buf[8:]))
	if gstringsHdrLen+n*ethGStringLen > len(buf) {
		return nil, fmt.Errorf("kernel reported %d strings, room for %d", n, (len(buf)-gstringsHdrLen)/ethGStringLen)
	}
	names := make([]string, n)
	for i := range names {
		s := buf[gstringsHdrLen+i*ethGStringLen:][:ethGStringLen]
		end := 0
		for end < len(s) && s[end] != 0 {
			end++
		}
		names[i] = string(s[:end])
	}
	return names, nil
}

func encodeGFeatures(size int) []byte {
	buf := make([]byte, featuresHdrLen+size*getBlockLen)
	native.PutUint32(buf[0:], cmdGFeatures)
	native.PutUint32(buf[4:], uint32(size))
	return buf
}

// decodeGFeatures reads the blocks of a GFEATURES reply made with
// encodeGFeatures, and the kernel's own word count (which SFEATURES
// requires exactly).
func decodeGFeatures(buf []byte) (b blocks, kernelSize int) {
	size := (len(buf) - featuresHdrLen) / getBlockLen
	b = blocks{
		available:    make([]uint32, size),
		requested:    make([]uint32, size),
		active:       make([]uint32, size),
		neverChanged: make([]uint32, size),
	}
	for i := range size {
		p := buf[featuresHdrLen+i*getBlockLen:]
		b.available[i] = native.Uint32(p[0:])
		b.requested[i] = native.Uint32(p[4:])
		b.active[i] = native.Uint32(p[8:])
		b.neverChanged[i] = native.Uint32(p[12:])
	}
	return b, int(native.Uint32(buf[4:]))
}

func encodeSFeatures(valid, requested []uint32) []byte {
	buf := make([]byte, featuresHdrLen+len(valid)*setBlockLen)
	native.PutUint32(buf[0:], cmdSFeatures)
	native.PutUint32(buf[4:], uint32(len(valid)))
	for i := range valid {
		p := buf[featuresHdrLen+i*setBlockLen:]
		native.PutUint32(p[0:], valid[i])
		native.PutUint32(p[4:], requested[i])
	}
	return buf
}
