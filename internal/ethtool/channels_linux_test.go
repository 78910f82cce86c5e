package ethtool

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestChannelsSetMsg(t *testing.T) {
	want := map[string]uint32{"combined": 8, "other": 1}
	require.NoError(t, channels.check("eth0", want))
	b := channels.setMsg("eth0", want)
	assert.Equal(t, []byte{unix.ETHTOOL_MSG_CHANNELS_SET, unix.ETHTOOL_GENL_VERSION, 0, 0}, b[:4])
	attrs := testAttrs(t, b[4:])
	require.Len(t, attrs, 3, "header, combined, other")
	hdr := testAttrs(t, attrs[unix.ETHTOOL_A_CHANNELS_HEADER|nlaFNested])
	assert.Equal(t, []byte("eth0\x00"), hdr[unix.ETHTOOL_A_HEADER_DEV_NAME])
	assert.Equal(t, uint32(8), binary.NativeEndian.Uint32(attrs[unix.ETHTOOL_A_CHANNELS_COMBINED_COUNT]))
	assert.Equal(t, uint32(1), binary.NativeEndian.Uint32(attrs[unix.ETHTOOL_A_CHANNELS_OTHER_COUNT]))
	assert.ErrorContains(t, channels.check("eth0", map[string]uint32{"rx-ring": 1}), `"rx-ring" is not a channels parameter (ethtool -L takes combined, other, rx, tx)`)
}

// The reply of a real veth and a real virtio-net to a channels get is
// parsed by TestCapturedChannels (captured_linux_test.go).

// TestChannelsVeth sets a veth's rx and tx queue counts (veth has them
// since Linux 5.14) and takes them back; a count above the maximum fails
// naming the device and the limit, a combined count as not supported.
func TestChannelsVeth(t *testing.T) {
	inThrowawayNetns(t, func() {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Errorf("create veth0: %v", err)
			return
		}
		cur, max, err := Channels("veth0")
		if err != nil {
			t.Errorf("Channels: %v", err)
			return
		}
		assert.Equal(t, uint32(1), cur["rx"])
		if max["rx"] < 2 {
			t.Logf("one CPU: veth0 has at most %d rx queue; only the errors are checked", max["rx"])
		} else {
			old, err := SetChannels("veth0", map[string]uint32{"rx": 2, "tx": 2})
			assert.NoError(t, err)
			assert.Equal(t, map[string]uint32{"rx": 1, "tx": 1}, old)
			cur, _, _ = Channels("veth0")
			assert.Equal(t, uint32(2), cur["rx"])
			assert.Equal(t, uint32(2), cur["tx"])
			_, err = SetChannels("veth0", old)
			assert.NoError(t, err)
			cur, _, _ = Channels("veth0")
			assert.Equal(t, map[string]uint32{"rx": 1, "tx": 1}, cur, "taken back")
		}
		_, err = SetChannels("veth0", map[string]uint32{"rx": max["rx"] + 1})
		assert.ErrorContains(t, err, "set channels of veth0: rx")
		assert.ErrorContains(t, err, "is above the device's maximum")
		_, err = SetChannels("veth0", map[string]uint32{"combined": 2})
		assert.ErrorIs(t, err, unix.EOPNOTSUPP)
		assert.ErrorContains(t, err, "no channels setting combined (it has rx, tx)")
	})
}
