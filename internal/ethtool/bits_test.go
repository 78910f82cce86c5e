package ethtool

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBlockCount(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 1, 32: 1, 33: 2, 64: 2, 65: 3} {
		require.Equal(t, want, blockCount(n), "blockCount(%d)", n)
	}
}

func TestPack(t *testing.T) {
	valid, requested, err := pack(3, map[int]bool{0: true, 31: true, 33: false, 95: true})
	require.NoError(t, err)
	require.Equal(t, []uint32{1 | 1<<31, 1 << 1, 1 << 31}, valid)
	require.Equal(t, []uint32{1 | 1<<31, 0, 1 << 31}, requested)

	_, _, err = pack(2, map[int]bool{64: true})
	require.ErrorContains(t, err, "feature index 64 out of range")
	_, _, err = pack(2, map[int]bool{-1: true})
	require.Error(t, err)
}

func TestUnpack(t *testing.T) {
	names := make([]string, 40)
	for i := range names {
		names[i] = string(rune('a'+i%26)) + string(rune('0'+i/26))
	}
	got := unpack([]uint32{1<<0 | 1<<5, 1 << 7}, names)
	require.Len(t, got, 40)
	for i, n := range names {
		require.Equal(t, i == 0 || i == 5 || i == 39, got[n], "bit %d (%s)", i, n)
	}
	// Bits past the words read as off.
	require.False(t, bitAt([]uint32{^uint32(0)}, 32))
}

func TestPackUnpackRoundTrip(t *testing.T) {
	names := make([]string, 70)
	bits := make(map[int]bool)
	for i := range names {
		names[i] = string(rune('A' + i))
		bits[i] = i%3 == 0
	}
	valid, requested, err := pack(blockCount(len(names)), bits)
	require.NoError(t, err)
	for i := range names {
		require.True(t, bitAt(valid, i), "valid bit %d", i)
	}
	got := unpack(requested, names)
	for i, n := range names {
		require.Equal(t, bits[i], got[n], "bit %d", i)
	}
}

func TestFixed(t *testing.T) {
	b := blocks{available: []uint32{0b011}, neverChanged: []uint32{0b010}}
	require.False(t, b.fixed(0), "available, changeable")
	require.True(t, b.fixed(1), "available but never_changed")
	require.True(t, b.fixed(2), "not available")
}

func TestSSetInfoLayout(t *testing.T) {
	buf := encodeSSetInfo()
	require.Len(t, buf, 20)
	require.Equal(t, uint32(cmdGSSetInfo), native.Uint32(buf))
	require.Equal(t, uint64(1<<4), native.Uint64(buf[8:]))

	native.PutUint32(buf[16:], 66)
	n, err := decodeSSetInfo(buf)
	require.NoError(t, err)
	require.Equal(t, 66, n)

	native.PutUint64(buf[8:], 0)
	_, err = decodeSSetInfo(buf)
	require.ErrorContains(t, err, "no features string set")
}

func TestGStringsLayout(t *testing.T) {
	buf := encodeGStrings(3)
	require.Len(t, buf, 12+3*32)
	require.Equal(t, []uint32{cmdGStrings, ethSSFeatures, 3},
		[]uint32{native.Uint32(buf), native.Uint32(buf[4:]), native.Uint32(buf[8:])})
	copy(buf[12:], "rx-gro")
	copy(buf[12+32:], "tx-scatter-gather-fraglist-xxxxx") // exactly 32 bytes, no NUL
	copy(buf[12+64:], "")
	names, err := decodeGStrings(buf)
	require.NoError(t, err)
	require.Equal(t, []string{"rx-gro", "tx-scatter-gather-fraglist-xxxxx", ""}, names)

	native.PutUint32(buf[8:], 4)
	_, err = decodeGStrings(buf)
	require.ErrorContains(t, err, "reported 4 strings")
}

func TestFeaturesLayout(t *testing.T) {
	buf := encodeGFeatures(2)
	require.Len(t, buf, 8+2*16)
	require.Equal(t, uint32(cmdGFeatures), native.Uint32(buf))
	require.Equal(t, uint32(2), native.Uint32(buf[4:]))
	for i, v := range []uint32{1, 2, 3, 4, 5, 6, 7, 8} {
		native.PutUint32(buf[8+4*i:], v)
	}
	native.PutUint32(buf[4:], 2) // the kernel writes its own size back
	b, size := decodeGFeatures(buf)
	require.Equal(t, 2, size)
	require.Equal(t, blocks{
		available:    []uint32{1, 5},
		requested:    []uint32{2, 6},
		active:       []uint32{3, 7},
		neverChanged: []uint32{4, 8},
	}, b)

	buf = encodeSFeatures([]uint32{0xa, 0xb}, []uint32{0xc, 0xd})
	want := binary.NativeEndian.AppendUint32(nil, cmdSFeatures)
	for _, v := range []uint32{2, 0xa, 0xc, 0xb, 0xd} {
		want = binary.NativeEndian.AppendUint32(want, v)
	}
	require.Equal(t, want, buf)
}
