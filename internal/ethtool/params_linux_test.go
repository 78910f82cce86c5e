package ethtool

import (
	"encoding/binary"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testAttrs splits a payload after its genetlink header into attributes:
// type -> value.
func testAttrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	out := map[uint16][]byte{}
	for len(b) > 0 {
		require.GreaterOrEqual(t, len(b), 4)
		n := int(binary.NativeEndian.Uint16(b))
		require.GreaterOrEqual(t, n, 4)
		require.LessOrEqual(t, n, len(b))
		out[binary.NativeEndian.Uint16(b[2:])] = b[4:n]
		b = b[min(align4(n), len(b)):]
	}
	return out
}

func TestRingsSetMsg(t *testing.T) {
	want := map[string]uint32{"rx": 512, "tx": 1024}
	require.NoError(t, rings.check("eth0", want))
	b := rings.setMsg("eth0", want)
	assert.Equal(t, []byte{unix.ETHTOOL_MSG_RINGS_SET, unix.ETHTOOL_GENL_VERSION, 0, 0}, b[:4])
	attrs := testAttrs(t, b[4:])
	require.Len(t, attrs, 3, "header, rx, tx")
	hdr := testAttrs(t, attrs[unix.ETHTOOL_A_RINGS_HEADER|nlaFNested])
	assert.Equal(t, []byte("eth0\x00"), hdr[unix.ETHTOOL_A_HEADER_DEV_NAME])
	assert.Equal(t, uint32(512), binary.NativeEndian.Uint32(attrs[unix.ETHTOOL_A_RINGS_RX]))
	assert.Equal(t, uint32(1024), binary.NativeEndian.Uint32(attrs[unix.ETHTOOL_A_RINGS_TX]))
	assert.Equal(t, 0, len(b)%4, "attributes are padded")
}

func TestCoalesceSetMsgFlagIsU8(t *testing.T) {
	b := coalesce.setMsg("veth0", map[string]uint32{"adaptive-rx": 1, "rx-usecs": 50})
	assert.Equal(t, byte(unix.ETHTOOL_MSG_COALESCE_SET), b[0])
	attrs := testAttrs(t, b[4:])
	assert.Equal(t, []byte{1}, attrs[unix.ETHTOOL_A_COALESCE_USE_ADAPTIVE_RX])
	assert.Equal(t, uint32(50), binary.NativeEndian.Uint32(attrs[unix.ETHTOOL_A_COALESCE_RX_USECS]))
	assert.Equal(t, 0, len(b)%4, "attributes are padded")
}

func TestGetMsg(t *testing.T) {
	b := coalesce.getMsg("a-long-name0")
	assert.Equal(t, byte(unix.ETHTOOL_MSG_COALESCE_GET), b[0])
	attrs := testAttrs(t, b[4:])
	require.Len(t, attrs, 1, "the header only")
	assert.Equal(t, []byte("a-long-name0\x00"), testAttrs(t, attrs[unix.ETHTOOL_A_COALESCE_HEADER|nlaFNested])[unix.ETHTOOL_A_HEADER_DEV_NAME])
}

func TestParamCheck(t *testing.T) {
	for _, tc := range []struct {
		set  *paramSet
		want map[string]uint32
		err  string
	}{
		{rings, nil, "no ring parameter given"},
		{rings, map[string]uint32{"rx-usecs": 1}, `"rx-usecs" is not a ring parameter (ethtool -G takes cqe-size, rx,`},
		{coalesce, map[string]uint32{"rx": 1}, `"rx" is not a coalesce parameter (ethtool -C takes adaptive-rx,`},
		{coalesce, map[string]uint32{"adaptive-tx": 2}, "adaptive-tx is a flag: 0 or 1, not 2"},
	} {
		err := tc.set.check("eth1", tc.want)
		if assert.Error(t, err, "%v", tc.want) {
			assert.Contains(t, err.Error(), "of eth1")
			assert.Contains(t, err.Error(), tc.err)
		}
	}
	assert.NoError(t, coalesce.check("eth1", map[string]uint32{"adaptive-tx": 1, "tx-usecs": 1 << 20}))
}

// testReply builds a get reply payload.
func testReply(attrs ...[]byte) []byte {
	b := []byte{0, 1, 0, 0}
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func testU32(typ uint16, v uint32) []byte {
	return appendAttr(nil, typ, binary.NativeEndian.AppendUint32(nil, v))
}

func TestParseReply(t *testing.T) {
	b := testReply(
		rings.header("eth0"),
		testU32(unix.ETHTOOL_A_RINGS_RX_MAX, 4096),
		testU32(unix.ETHTOOL_A_RINGS_TX_MAX, 4096),
		testU32(unix.ETHTOOL_A_RINGS_RX, 256),
		testU32(unix.ETHTOOL_A_RINGS_TX, 512),
		appendAttr(nil, unix.ETHTOOL_A_RINGS_TCP_DATA_SPLIT, []byte{0}), // not named here
	)
	cur, max, err := rings.parseReply(b)
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"rx": 256, "tx": 512}, cur)
	assert.Equal(t, map[string]uint32{"rx": 4096, "tx": 4096}, max)

	cur, _, err = coalesce.parseReply(testReply(
		appendAttr(nil, unix.ETHTOOL_A_COALESCE_USE_ADAPTIVE_RX, []byte{1}),
		testU32(unix.ETHTOOL_A_COALESCE_RX_MAX_FRAMES, 64)))
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"adaptive-rx": 1, "rx-frames": 64}, cur)

	for name, bad := range map[string][]byte{
		"short header":      {0, 1},
		"short attribute":   testReply([]byte{8, 0}),
		"length past end":   testReply([]byte{16, 0, 6, 0, 1, 0, 0, 0}),
		"length below head": testReply([]byte{2, 0, 6, 0}),
		"u32 of 2 bytes":    testReply(appendAttr(nil, unix.ETHTOOL_A_RINGS_RX, []byte{1, 2})),
	} {
		_, _, err := rings.parseReply(bad)
		assert.Error(t, err, name)
	}
}

// inThrowawayNetns runs f on a locked thread in a new network namespace,
// which ends when f returns.
func inThrowawayNetns(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("requires root to create a network namespace")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread is never unlocked: it ends with the goroutine, and
		// never runs other goroutines in the namespace.
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			t.Errorf("new network namespace: %v", err)
			return
		}
		defer ns.Close()
		f()
	}()
	<-done
}

// TestCoalesceTap sets and takes back a tap device's coalescing (tun has
// rx-frames: its batching) and finds that a veth has no ring settings.
func TestCoalesceTap(t *testing.T) {
	inThrowawayNetns(t, func() {
		tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "tap0"}, Mode: netlink.TUNTAP_MODE_TAP}
		if err := netlink.LinkAdd(tap); err != nil {
			t.Errorf("create tap0: %v", err)
			return
		}
		for _, f := range tap.Fds {
			f.Close()
		}
		cur, err := Coalesce("tap0")
		if err != nil {
			t.Errorf("Coalesce: %v", err)
			return
		}
		assert.Equal(t, map[string]uint32{"rx-frames": 0}, cur)
		old, err := SetCoalesce("tap0", map[string]uint32{"rx-frames": 32})
		assert.NoError(t, err)
		assert.Equal(t, map[string]uint32{"rx-frames": 0}, old)
		cur, _ = Coalesce("tap0")
		assert.Equal(t, uint32(32), cur["rx-frames"])
		old2, err := SetCoalesce("tap0", map[string]uint32{"rx-frames": 32})
		assert.NoError(t, err)
		assert.Empty(t, old2, "nothing changed")
		_, err = SetCoalesce("tap0", old)
		assert.NoError(t, err)
		cur, _ = Coalesce("tap0")
		assert.Equal(t, uint32(0), cur["rx-frames"], "taken back")

		_, err = SetCoalesce("tap0", map[string]uint32{"tx-usecs": 5})
		assert.ErrorIs(t, err, unix.EOPNOTSUPP)
		assert.ErrorContains(t, err, "no coalesce setting tx-usecs (it has rx-frames)")

		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Errorf("create veth0: %v", err)
			return
		}
		_, _, err = Rings("veth0")
		if err == nil {
			t.Log("this kernel's veth has ring settings")
			return
		}
		assert.ErrorIs(t, err, unix.EOPNOTSUPP)
		assert.ErrorContains(t, err, "read ring settings of veth0: not supported by its driver")
		_, err = Coalesce("nosuch0")
		assert.ErrorContains(t, err, "nosuch0")
	})
}
