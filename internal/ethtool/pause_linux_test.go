package ethtool

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestPauseSetMsg(t *testing.T) {
	want := map[string]uint32{"rx": 1, "tx": 0, "autoneg": 0}
	require.NoError(t, pause.check("enp3s0f0", want))
	b := pause.setMsg("enp3s0f0", want)
	assert.Equal(t, []byte{unix.ETHTOOL_MSG_PAUSE_SET, unix.ETHTOOL_GENL_VERSION, 0, 0}, b[:4])
	attrs := testAttrs(t, b[4:])
	require.Len(t, attrs, 4, "header, autoneg, rx, tx")
	assert.Equal(t, []byte{1}, attrs[unix.ETHTOOL_A_PAUSE_RX])
	assert.Equal(t, []byte{0}, attrs[unix.ETHTOOL_A_PAUSE_TX])
	assert.Equal(t, []byte{0}, attrs[unix.ETHTOOL_A_PAUSE_AUTONEG])
	assert.Equal(t, []byte("enp3s0f0\x00"), testAttrs(t, attrs[unix.ETHTOOL_A_PAUSE_HEADER|nlaFNested])[unix.ETHTOOL_A_HEADER_DEV_NAME])
	assert.ErrorContains(t, pause.check("enp3s0f0", map[string]uint32{"rx": 2}), "rx is a flag: 0 or 1, not 2")
}

// TestPauseParseReply reads a reply as a NIC with pause frames gives it
// (mlx5, ice: ETHTOOL_A_PAUSE_AUTONEG, _RX, _TX as u8, and a nested
// stats attribute when asked for, left out here). No device here has
// pause frames (virtio-net and veth answer EOPNOTSUPP, captured in
// TestCapturedNotSupported): the reply is built by the kernel's layout
// (net/ethtool/pause.c pause_fill_reply), not captured.
func TestPauseParseReply(t *testing.T) {
	cur, _, err := pause.parseReply(testReply(
		pause.header("enp3s0f0"),
		appendAttr(nil, unix.ETHTOOL_A_PAUSE_AUTONEG, []byte{0}),
		appendAttr(nil, unix.ETHTOOL_A_PAUSE_RX, []byte{1}),
		appendAttr(nil, unix.ETHTOOL_A_PAUSE_TX, []byte{1}),
		appendAttr(nil, unix.ETHTOOL_A_PAUSE_STATS|nlaFNested, testU32(unix.ETHTOOL_A_PAUSE_STAT_TX_FRAMES, 5))))
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"autoneg": 0, "rx": 1, "tx": 1}, cur)
}

func TestLinkModesMsg(t *testing.T) {
	want := map[string]uint32{"speed": 10000, "duplex": 1, "autoneg": 0}
	require.NoError(t, linkModes.check("eth1", want))
	b := linkModes.setMsg("eth1", want)
	assert.Equal(t, byte(unix.ETHTOOL_MSG_LINKMODES_SET), b[0])
	attrs := testAttrs(t, b[4:])
	assert.Equal(t, uint32(10000), binary.NativeEndian.Uint32(attrs[unix.ETHTOOL_A_LINKMODES_SPEED]))
	assert.Equal(t, []byte{1}, attrs[unix.ETHTOOL_A_LINKMODES_DUPLEX])
	assert.Equal(t, []byte{0}, attrs[unix.ETHTOOL_A_LINKMODES_AUTONEG])
	assert.NoError(t, linkModes.check("eth1", map[string]uint32{"duplex": 255}), "unknown duplex is a byte, not a flag")
	assert.ErrorContains(t, linkModes.check("eth1", map[string]uint32{"duplex": 256}), "duplex is one byte")
	assert.ErrorContains(t, linkModes.check("eth1", map[string]uint32{"autoneg": 2}), "autoneg is a flag")
}

// TestLinkModesVeth reads a veth's link modes as the kernel gives them
// (veth reports 10000 Mb/s full duplex, autoneg off) and finds pause
// frames not supported.
func TestLinkModesVeth(t *testing.T) {
	inThrowawayNetns(t, func() {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Errorf("create veth0: %v", err)
			return
		}
		cur, err := LinkModes("veth0")
		if assert.NoError(t, err) {
			assert.Equal(t, map[string]uint32{"speed": 10000, "duplex": 1, "autoneg": 0}, cur)
		}
		_, err = Pause("veth0")
		assert.ErrorIs(t, err, unix.EOPNOTSUPP)
		assert.ErrorContains(t, err, "read pause settings of veth0: not supported by its driver (ethtool -A)")
		_, err = SetLinkModes("veth0", map[string]uint32{"speed": 1000})
		assert.ErrorIs(t, err, unix.EOPNOTSUPP, "veth has no set_link_ksettings")
	})
}
