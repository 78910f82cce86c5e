package sriov

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

var pf = Handle{Bus: "pci", Dev: "0000:03:00.0"}

// TestEswitchMsgs checks `devlink dev eswitch set pci/0000:03:00.0 mode
// switchdev` as devlink builds it: genetlink header (cmd, version 1),
// bus and device names zero-terminated, the mode as u16.
func TestEswitchMsgs(t *testing.T) {
	b, err := eswitchSetMsg(pf, "switchdev")
	require.NoError(t, err)
	assert.Equal(t, []byte{unix.DEVLINK_CMD_ESWITCH_SET, 1, 0, 0}, b[:4])
	a := testAttrs(t, b[4:])
	assert.Equal(t, []byte("pci\x00"), a[unix.DEVLINK_ATTR_BUS_NAME])
	assert.Equal(t, []byte("0000:03:00.0\x00"), a[unix.DEVLINK_ATTR_DEV_NAME])
	require.Len(t, a[unix.DEVLINK_ATTR_ESWITCH_MODE], 2, "u16")
	assert.Equal(t, uint16(unix.DEVLINK_ESWITCH_MODE_SWITCHDEV), binary.NativeEndian.Uint16(a[unix.DEVLINK_ATTR_ESWITCH_MODE]))
	_, err = eswitchSetMsg(pf, "offload")
	assert.ErrorContains(t, err, `eswitch mode "offload" is none of legacy, switchdev`)
	g := eswitchGetMsg(pf)
	assert.Equal(t, byte(unix.DEVLINK_CMD_ESWITCH_GET), g[0])
	assert.Len(t, testAttrs(t, g[4:]), 2)
}

// devlinkReply builds a reply as the kernel fills it (devlink_nl_*_fill:
// bus and device names, then the command's attributes).
func devlinkReply(cmd uint8, as ...*nl.RtAttr) []byte {
	return genlMsg(cmd, append(handleAttrs(pf), as...)...)
}

// TestParseEswitchPorts reads an eswitch reply (mode, inline mode,
// encap mode) and a port dump of a PF in switchdev mode with one VF
// representor, laid out as the kernel fills them. No device here has
// devlink ports (virtio-net and veth have no devlink instance; Debian's
// kernels here lack netdevsim): the layout is the kernel's (uapi
// devlink.h, net/devlink), not a capture.
func TestParseEswitchPorts(t *testing.T) {
	mode, err := parseEswitch(devlinkReply(unix.DEVLINK_CMD_ESWITCH_GET,
		nl.NewRtAttr(unix.DEVLINK_ATTR_ESWITCH_MODE, nl.Uint16Attr(1)),
		nl.NewRtAttr(unix.DEVLINK_ATTR_ESWITCH_INLINE_MODE, []byte{0}),
		nl.NewRtAttr(unix.DEVLINK_ATTR_ESWITCH_ENCAP_MODE, []byte{1})))
	require.NoError(t, err)
	assert.Equal(t, "switchdev", mode)
	_, err = parseEswitch(devlinkReply(unix.DEVLINK_CMD_ESWITCH_GET))
	assert.ErrorContains(t, err, "no mode")

	phys, err := parsePort(devlinkReply(unix.DEVLINK_CMD_PORT_NEW,
		nl.NewRtAttr(unix.DEVLINK_ATTR_PORT_INDEX, nl.Uint32Attr(65535)),
		nl.NewRtAttr(unix.DEVLINK_ATTR_PORT_TYPE, nl.Uint16Attr(2)),
		nl.NewRtAttr(unix.DEVLINK_ATTR_PORT_NETDEV_NAME, nl.ZeroTerminated("enp3s0f0np0")),
		nl.NewRtAttr(unix.DEVLINK_ATTR_PORT_FLAVOUR, nl.Uint16Attr(0))))
	require.NoError(t, err)
	assert.Equal(t, Port{Handle: pf, Index: 65535, Netdev: "enp3s0f0np0", Flavour: "physical", VF: -1}, phys)
	rep, err := parsePort(devlinkReply(unix.DEVLINK_CMD_PORT_NEW,
		nl.NewRtAttr(unix.DEVLINK_ATTR_PORT_INDEX, nl.Uint32Attr(1)),
		nl.NewRtAttr(unix.DEVLINK_ATTR_PORT_NETDEV_NAME, nl.ZeroTerminated("eth5")),
		nl.NewRtAttr(unix.DEVLINK_ATTR_PORT_FLAVOUR, nl.Uint16Attr(unix.DEVLINK_PORT_FLAVOUR_PCI_VF)),
		nl.NewRtAttr(unix.DEVLINK_ATTR_PORT_PCI_PF_NUMBER, nl.Uint16Attr(0)),
		nl.NewRtAttr(unix.DEVLINK_ATTR_PORT_PCI_VF_NUMBER, nl.Uint16Attr(3))))
	require.NoError(t, err)
	assert.Equal(t, Port{Handle: pf, Index: 1, Netdev: "eth5", Flavour: "pcivf", VF: 3}, rep)
	r, err := Representor([]Port{phys, rep}, 3)
	require.NoError(t, err)
	assert.Equal(t, "eth5", r)
	_, err = Representor([]Port{phys, rep}, 2)
	assert.ErrorContains(t, err, "no devlink port is the representor of VF 2")
	_, err = parsePort(devlinkReply(unix.DEVLINK_CMD_PORT_NEW))
	assert.ErrorContains(t, err, "no port index")
}

// TestDevlinkNoDevice: this machine's devices have no devlink instance
// of that name; the family answers with an error naming the handle.
func TestDevlinkNoDevice(t *testing.T) {
	if _, err := family(); err != nil {
		t.Skipf("no devlink netlink family here: %v", err)
	}
	_, err := Eswitch(Handle{Bus: "pci", Dev: "0000:ff:1f.7"})
	assert.ErrorContains(t, err, "read eswitch mode of pci/0000:ff:1f.7")
	ports, err := Ports(Handle{Bus: "pci", Dev: "0000:ff:1f.7"})
	require.NoError(t, err, "a dump of every port, filtered")
	assert.Empty(t, ports)
}
