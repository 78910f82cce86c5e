package ethtool

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestStatsLayout(t *testing.T) {
	require.Equal(t, unix.ETHTOOL_GSTATS, cmdGStats)
	buf := encodeSSetInfoOf(ethSSStats)
	assert.Equal(t, uint64(1<<ethSSStats), native.Uint64(buf[8:]))
	assert.Zero(t, decodeSSetInfoOf(make([]byte, ssetInfoLen), ethSSStats), "no set: no statistics")
	native.PutUint32(buf[16:], 2)
	assert.Equal(t, 2, decodeSSetInfoOf(buf, ethSSStats))

	g := encodeGStringsOf(ethSSStats, 2)
	assert.Equal(t, uint32(ethSSStats), native.Uint32(g[4:]))
	assert.Len(t, g, gstringsHdrLen+2*ethGStringLen)

	s := encodeGStats(2)
	assert.Equal(t, uint32(cmdGStats), native.Uint32(s))
	native.PutUint64(s[8:], 7)
	native.PutUint64(s[16:], 1<<40)
	got, err := decodeGStats(s, []string{"rx_drops", "peer_ifindex"})
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"rx_drops": 7, "peer_ifindex": 1 << 40}, got)
	_, err = decodeGStats(s, []string{"one"})
	assert.Error(t, err)
}
