package mptcp

import (
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
)

// TestAddAddrMsg checks the bytes of an ADD_ADDR request against the
// layout of include/uapi/linux/mptcp_pm.h (as `ip mptcp endpoint add
// 198.18.2.1 id 3 subflow dev <ifindex 5>` sends it).
func TestAddAddrMsg(t *testing.T) {
	msg, err := AddAddrMsg(Endpoint{ID: 3, Addr: netip.MustParseAddr("198.18.2.1"), Flags: []string{"subflow"}, IfIndex: 5})
	require.NoError(t, err)
	assert.Equal(t, []byte{
		CmdAddAddr, Version, 0, 0,
		44, 0, 1, 0x80, // nested AttrAddr, 4+40 bytes
		6, 0, 1, 0, 2, 0, 0, 0, // family AF_INET, padded
		5, 0, 2, 0, 3, 0, 0, 0, // id 3, padded
		8, 0, 3, 0, 198, 18, 2, 1, // addr4
		8, 0, 6, 0, 2, 0, 0, 0, // flags subflow
		8, 0, 7, 0, 5, 0, 0, 0, // ifindex 5
	}, msg)

	msg, err = AddAddrMsg(Endpoint{Addr: netip.MustParseAddr("2001:db8::1"), Port: 1000, Flags: []string{"signal", "backup"}})
	require.NoError(t, err)
	e, err := ParseEndpoint(msg)
	require.NoError(t, err, "a request parses as the reply it is like")
	assert.Equal(t, Endpoint{Addr: netip.MustParseAddr("2001:db8::1"), Port: 1000, Flags: []string{"signal", "backup"}}, e)
}

func TestDelAddrAndLimitsMsg(t *testing.T) {
	msg, err := DelAddrMsg(9)
	require.NoError(t, err)
	assert.Equal(t, []byte{CmdDelAddr, Version, 0, 0, 12, 0, 1, 0x80, 5, 0, 2, 0, 9, 0, 0, 0}, msg)
	_, err = DelAddrMsg(0)
	assert.ErrorContains(t, err, "id 0")

	msg, err = SetLimitsMsg(Limits{Subflows: 2, AddAddrAccepted: 1})
	require.NoError(t, err)
	assert.Equal(t, []byte{CmdSetLimits, Version, 0, 0, 8, 0, 2, 0, 1, 0, 0, 0, 8, 0, 3, 0, 2, 0, 0, 0}, msg)
	l, err := ParseLimits(msg)
	require.NoError(t, err)
	assert.Equal(t, Limits{Subflows: 2, AddAddrAccepted: 1}, l)
}

func TestValidate(t *testing.T) {
	a := netip.MustParseAddr("198.18.1.1")
	assert.NoError(t, Endpoint{Addr: a, Flags: []string{"signal", "subflow", "backup", "fullmesh"}}.Validate())
	assert.ErrorContains(t, Endpoint{}.Validate(), "no address")
	assert.ErrorContains(t, Endpoint{Addr: a, Flags: []string{"laminar"}}.Validate(), `flag "laminar"`)
	assert.ErrorContains(t, Endpoint{Addr: netip.MustParseAddr("fe80::1%eth0")}.Validate(), "zone")
	assert.ErrorContains(t, Endpoint{Addr: a, IfIndex: -1}.Validate(), "negative")
	assert.NoError(t, Limits{Subflows: 8, AddAddrAccepted: 8}.Validate())
	assert.ErrorContains(t, Limits{Subflows: 9}.Validate(), "at most 8")
	_, err := AddAddrMsg(Endpoint{})
	assert.Error(t, err)
	_, err = ParseEndpoint([]byte{1, 2})
	assert.Error(t, err)
}

// TestKernel adds, lists and deletes an endpoint and sets limits in a
// new network namespace, against the kernel.
func TestKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	if _, err := os.Stat("/proc/sys/net/mptcp"); err != nil {
		t.Skip("the kernel has no MPTCP (/proc/sys/net/mptcp)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	require.NoError(t, err)
	defer orig.Close()
	ns, err := netns.New()
	require.NoError(t, err)
	defer ns.Close()
	defer netns.Set(orig)

	got, err := AddEndpoint(Endpoint{Addr: netip.MustParseAddr("198.18.5.1"), Flags: []string{"signal"}})
	require.NoError(t, err)
	assert.NotZero(t, got.ID)
	assert.Equal(t, []string{"signal"}, got.Flags)
	all, err := Endpoints()
	require.NoError(t, err)
	assert.Equal(t, []Endpoint{got}, all)
	require.NoError(t, DelEndpoint(got.ID))
	all, err = Endpoints()
	require.NoError(t, err)
	assert.Empty(t, all)
	assert.Error(t, DelEndpoint(got.ID), "deleted already")

	old, err := SetLimits(Limits{Subflows: 3, AddAddrAccepted: 4})
	require.NoError(t, err)
	now, err := GetLimits()
	require.NoError(t, err)
	assert.Equal(t, Limits{Subflows: 3, AddAddrAccepted: 4}, now)
	_, err = SetLimits(old)
	require.NoError(t, err)
}
