package sriov

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// capturedLink reads a captured RTM_GETLINK answer (testdata, written by
// internal/ethtool's TestCaptureAnswers; its testdata/README.md says how)
// as the agent reads a link: the netlink library's parse of the
// RTM_NEWLINK payload, and its raw attributes.
func capturedLink(t *testing.T, file string) (netlink.Link, map[uint16][]byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	msgs, err := syscall.ParseNetlinkMessage(b)
	require.NoError(t, err)
	require.Len(t, msgs, 1, "%s: one RTM_NEWLINK", file)
	require.Equal(t, uint16(unix.RTM_NEWLINK), msgs[0].Header.Type, file)
	l, err := netlink.LinkDeserialize(nil, msgs[0].Data)
	require.NoError(t, err, file)
	as, err := nl.ParseRouteAttr(msgs[0].Data[unix.SizeofIfInfomsg:])
	require.NoError(t, err, file)
	attrs := map[uint16][]byte{}
	for _, a := range as {
		attrs[a.Attr.Type] = a.Value
	}
	return l, attrs
}

// TestCapturedGetlink parses RTM_GETLINK answers (VF attributes asked
// for) of devices without SR-IOV: virtio-net in a VM lab guest (Linux
// 6.1) says IFLA_NUM_VF 0 (it has a parent bus device) and sends no
// IFLA_VFINFO_LIST; a veth here (Linux 6.18, no parent) sends neither.
// Both read as no VFs. The VF list itself has no capture: no device here
// has VFs, so TestParseVFInfo builds it from the uapi layout.
func TestCapturedGetlink(t *testing.T) {
	l, attrs := capturedLink(t, "getlink_virtio.bin")
	assert.Equal(t, "eth0", l.Attrs().Name)
	assert.Equal(t, "device", l.Type())
	assert.Equal(t, 4, l.Attrs().NumTxQueues, "virtio-net allocates its 4 queue pairs")
	assert.Equal(t, 4, l.Attrs().NumRxQueues)
	require.Contains(t, attrs, uint16(unix.IFLA_NUM_VF))
	assert.Equal(t, uint32(0), nl.NativeEndian().Uint32(attrs[unix.IFLA_NUM_VF]))
	assert.NotContains(t, attrs, uint16(unix.IFLA_VFINFO_LIST))
	assert.Empty(t, FromLink(l))

	l, attrs = capturedLink(t, "getlink_veth.bin")
	assert.Equal(t, "veth0", l.Attrs().Name)
	assert.Equal(t, "veth", l.Type())
	assert.NotContains(t, attrs, uint16(unix.IFLA_NUM_VF), "no parent device")
	assert.NotContains(t, attrs, uint16(unix.IFLA_VFINFO_LIST))
	assert.Empty(t, FromLink(l))
}
