package sriov

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// testAttrs splits attributes: type (flags cleared) -> value.
func testAttrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	out := map[uint16][]byte{}
	for len(b) > 0 {
		require.GreaterOrEqual(t, len(b), 4)
		n := int(binary.NativeEndian.Uint16(b))
		require.GreaterOrEqual(t, n, 4)
		require.LessOrEqual(t, n, len(b))
		out[binary.NativeEndian.Uint16(b[2:])&^unix.NLA_F_NESTED] = b[4:n]
		b = b[min((n+3)&^3, len(b)):]
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// TestSetVFMsg checks the RTM_SETLINK of `ip link set eth0 vf 3 mac
// 02:00:00:00:00:03 vlan 100 qos 2 rate... spoofchk off trust on state
// disable`: an ifinfomsg with the PF's index, then IFLA_VFINFO_LIST >
// IFLA_VF_INFO > one struct ifla_vf_* per setting, each starting with the
// VF number (as iproute2 builds it: no NLA_F_NESTED).
func TestSetVFMsg(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:03")
	b, err := setVFMsg(7, 3, VFChange{MAC: mac, Vlan: ptr[uint32](100), Qos: ptr[uint32](2), MinRate: ptr[uint32](100), MaxRate: ptr[uint32](1000),
		Spoofchk: ptr(false), Trust: ptr(true), LinkState: "disable"})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(b), unix.SizeofIfInfomsg)
	assert.Equal(t, int32(7), int32(binary.NativeEndian.Uint32(b[4:])), "ifi_index")
	top := testAttrs(t, b[unix.SizeofIfInfomsg:])
	assert.Equal(t, uint16(unix.IFLA_VFINFO_LIST), binary.NativeEndian.Uint16(b[unix.SizeofIfInfomsg+2:]), "no NLA_F_NESTED")
	info := testAttrs(t, testAttrs(t, top[unix.IFLA_VFINFO_LIST])[unix.IFLA_VF_INFO])
	vfMac := info[unix.IFLA_VF_MAC]
	require.Len(t, vfMac, 36, "struct ifla_vf_mac: vf, mac[32]")
	assert.Equal(t, uint32(3), binary.NativeEndian.Uint32(vfMac))
	assert.Equal(t, []byte(mac), vfMac[4:10])
	assert.Equal(t, u32s(3, 100, 2), info[unix.IFLA_VF_VLAN])
	assert.Equal(t, u32s(3, 100, 1000), info[unix.IFLA_VF_RATE])
	assert.Equal(t, u32s(3, 0), info[unix.IFLA_VF_SPOOFCHK])
	assert.Equal(t, u32s(3, 1), info[unix.IFLA_VF_TRUST])
	assert.Equal(t, u32s(3, 2), info[unix.IFLA_VF_LINK_STATE], "IFLA_VF_LINK_STATE_DISABLE")

	for c, want := range map[*VFChange]string{
		{}:                        "nothing to change",
		{Vlan: ptr[uint32](4096)}: "want vlan 0-4095",
		{Qos: ptr[uint32](8)}:     "qos 0-7",
		{LinkState: "up"}:         `link state "up" is none of auto, enable, disable`,
		{MinRate: ptr[uint32](10), MaxRate: ptr[uint32](5)}: "min rate 10 above max rate 5",
	} {
		_, err := setVFMsg(7, 0, *c)
		assert.ErrorContains(t, err, want)
	}
	assert.ErrorContains(t, SetVF("enp1s0f0", 7, 4, 4, VFChange{Trust: ptr(true)}), "VF 4 of enp1s0f0: the device has 4 VFs (0 to 3)")
	assert.ErrorContains(t, SetVF("enp1s0f0", 7, 0, 0, VFChange{Trust: ptr(true)}), "the device has 0 VFs")
}

// TestParseVFInfo reads VFs from an RTM_NEWLINK laid out as the kernel
// fills it for a PF with 2 VFs (rtnl_fill_vfinfo: IFLA_NUM_VF, then
// IFLA_VFINFO_LIST with each VF's mac, vlan, rate, spoofchk, link state,
// trust), through the netlink library the agent reads links with. No
// device here has VFs (QEMU here has no SR-IOV NIC): the layout is the
// kernel's, not a capture. Real answers of devices without VFs are
// parsed by TestCapturedGetlink.
func TestParseVFInfo(t *testing.T) {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = 7
	b := msg.Serialize()
	b = append(b, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated("enp1s0f0")).Serialize()...)
	b = append(b, nl.NewRtAttr(unix.IFLA_NUM_VF, nl.Uint32Attr(2)).Serialize()...)
	list := nl.NewRtAttr(unix.IFLA_VFINFO_LIST, nil)
	for vf := uint32(0); vf < 2; vf++ {
		info := list.AddRtAttr(unix.IFLA_VF_INFO, nil)
		mac := make([]byte, 32)
		copy(mac, []byte{2, 0, 0, 0, 0, byte(vf)})
		info.AddRtAttr(unix.IFLA_VF_MAC, append(u32s(vf), mac...))
		info.AddRtAttr(unix.IFLA_VF_VLAN, u32s(vf, 100+vf, 0))
		info.AddRtAttr(unix.IFLA_VF_RATE, u32s(vf, 0, 1000))
		info.AddRtAttr(unix.IFLA_VF_SPOOFCHK, u32s(vf, 1))
		info.AddRtAttr(unix.IFLA_VF_LINK_STATE, u32s(vf, 0))
		info.AddRtAttr(unix.IFLA_VF_TRUST, u32s(vf, vf))
	}
	b = append(b, list.Serialize()...)
	l, err := netlink.LinkDeserialize(nil, b)
	require.NoError(t, err)
	vfs := FromLink(l)
	require.Len(t, vfs, 2)
	assert.Equal(t, VF{Index: 1, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Vlan: 101, MaxRate: 1000, Spoofchk: true, Trust: true, LinkState: "auto"}, vfs[1])
	assert.False(t, vfs[0].Trust)

	old := vfs[1]
	u := Undo(old, VFChange{Trust: ptr(false), Vlan: ptr[uint32](5)})
	assert.Equal(t, VFChange{Trust: ptr(true), Vlan: ptr[uint32](101), Qos: ptr[uint32](0)}, u)
}

// fakeSriov makes a bus device directory with sriov_numvfs and
// sriov_totalvfs as plain files: the kernel's EBUSY on a new count while
// VFs exist is not faked; SetNumVFs writes 0 first regardless.
func fakeSriov(t *testing.T, num, total string) string {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sriov_numvfs"), []byte(num+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sriov_totalvfs"), []byte(total+"\n"), 0o644))
	return dir
}

func readNum(t *testing.T, dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "sriov_numvfs"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// TestSetNumVFs: VFs made and removed against a fake sysfs; the undo
// (SetNumVFs back to the old count) removes them; a count above
// sriov_totalvfs names the device and the limit; a device without
// SR-IOV wraps EOPNOTSUPP.
func TestSetNumVFs(t *testing.T) {
	dir := fakeSriov(t, "0", "8")
	old, err := SetNumVFs("enp1s0f0", dir, 4)
	require.NoError(t, err)
	assert.Equal(t, 0, old)
	assert.Equal(t, "4", readNum(t, dir))
	_, err = SetNumVFs("enp1s0f0", dir, 9)
	assert.ErrorContains(t, err, "set VFs of enp1s0f0: 9 is above the device's sriov_totalvfs 8")
	assert.Equal(t, "4", readNum(t, dir), "nothing written")
	_, err = SetNumVFs("enp1s0f0", dir, old)
	require.NoError(t, err)
	assert.Equal(t, "0", readNum(t, dir), "undo removes the VFs")

	dir = fakeSriov(t, "2", "8")
	old, err = SetNumVFs("enp1s0f0", dir, 6)
	require.NoError(t, err)
	assert.Equal(t, 2, old)
	assert.Equal(t, "6", readNum(t, dir))

	require.NoError(t, os.MkdirAll(filepath.Join(dir, "virtfn1", "net", "enp1s0f0v1"), 0o755))
	assert.Equal(t, "enp1s0f0v1", VFNetdev(dir, 1))
	assert.Equal(t, "", VFNetdev(dir, 0))

	_, _, err = NumVFs("veth0", t.TempDir())
	assert.ErrorIs(t, err, unix.EOPNOTSUPP)
	assert.ErrorContains(t, err, "veth0 has no SR-IOV")
}
