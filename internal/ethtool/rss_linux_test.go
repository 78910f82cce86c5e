package ethtool

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestParseRSS reads an RSS_GET reply laid out as the kernel fills it
// (net/ethtool/rss.c rss_fill_reply: hfunc u32, indir as a binary array
// of u32, hkey binary, input_xfrm u32), for a NIC of 4 queues with a
// 16-entry table and a 40-byte Toeplitz key. The layout is the kernel's,
// not a capture: the VM lab's virtio-net has RSS, but its 6.1 kernel no
// RSS_GET (TestCapturedRSS reads its ioctl answer instead), and veth has
// no RSS.
func TestParseRSS(t *testing.T) {
	indir := EqualIndir(16, 4)
	var ib []byte
	for _, q := range indir {
		ib = binary.NativeEndian.AppendUint32(ib, q)
	}
	key := make([]byte, 40)
	for i := range key {
		key[i] = byte(i)
	}
	dev := appendAttr(nil, unix.ETHTOOL_A_HEADER_DEV_NAME, []byte("eth0\x00"))
	b := testReply(
		appendAttr(nil, rssAHeader|nlaFNested, dev),
		testU32(rssAHfunc, 1),
		appendAttr(nil, rssAIndir, ib),
		appendAttr(nil, rssAHkey, key),
		testU32(rssAInputXfrm, 0))
	r, err := parseRSS(b)
	require.NoError(t, err)
	assert.Equal(t, indir, r.Indir)
	assert.Equal(t, key, r.Key)
	assert.Equal(t, "toeplitz", r.Hfunc)
	assert.True(t, r.xfrmKnown)
	assert.True(t, IsDefaultIndir(r.Indir))
	assert.False(t, IsDefaultIndir([]uint32{1, 1, 1, 1}), "all to queue 1 is not the default")
	assert.True(t, IsDefaultIndir([]uint32{0, 0, 0, 0}), "one queue: all to 0 is the default")

	_, err = parseRSS(testReply(appendAttr(nil, rssAIndir, []byte{1, 2, 3})))
	assert.ErrorContains(t, err, "not whole u32s")
	_, err = parseRSS([]byte{1})
	assert.Error(t, err)

	g := rssGetMsg("eth0")
	assert.Equal(t, byte(unix.ETHTOOL_MSG_RSS_GET), g[0])
	assert.Equal(t, []byte("eth0\x00"), testAttrs(t, testAttrs(t, g[4:])[rssAHeader|nlaFNested])[unix.ETHTOOL_A_HEADER_DEV_NAME])
}

// TestSrsshMsg checks struct ethtool_rxfh as ETHTOOL_SRSSH takes it:
// cmd, rss_context, indir_size, key_size, hfunc, input_xfrm, then the
// table and the key.
func TestSrsshMsg(t *testing.T) {
	b, err := srsshMsg(RSSChange{Indir: []uint32{0, 0, 0, 0}, Key: []byte{9, 8}, Hfunc: "xor"}, true)
	require.NoError(t, err)
	require.Len(t, b, 24+16+2)
	assert.Equal(t, uint32(unix.ETHTOOL_SRSSH), binary.NativeEndian.Uint32(b))
	assert.Equal(t, uint32(0), binary.NativeEndian.Uint32(b[4:]), "context 0")
	assert.Equal(t, uint32(4), binary.NativeEndian.Uint32(b[8:]))
	assert.Equal(t, uint32(2), binary.NativeEndian.Uint32(b[12:]))
	assert.Equal(t, byte(2), b[16], "ETH_RSS_HASH_XOR")
	assert.Equal(t, byte(0xff), b[17], "input_xfrm: no change")
	assert.Equal(t, []byte{9, 8}, b[40:])

	b, err = srsshMsg(RSSChange{DefaultIndir: true}, false)
	require.NoError(t, err)
	assert.Len(t, b, 24)
	assert.Equal(t, uint32(0), binary.NativeEndian.Uint32(b[8:]), "indir_size 0: the default table")
	assert.Equal(t, byte(0), b[16], "hfunc: no change")
	assert.Equal(t, byte(0), b[17], "an older kernel checks the byte is zero")

	b, _ = srsshMsg(RSSChange{Hfunc: "toeplitz"}, false)
	assert.Equal(t, uint32(0xffffffff), binary.NativeEndian.Uint32(b[8:]), "table: no change")
	_, err = srsshMsg(RSSChange{Hfunc: "sha1"}, false)
	assert.ErrorContains(t, err, `hash function "sha1" is none of toeplitz, xor, crc32`)
}

func TestFlowHashMsgs(t *testing.T) {
	bits, err := parseHashFields("sdfn")
	require.NoError(t, err)
	assert.Equal(t, uint64(1<<4|1<<5|1<<6|1<<7), bits)
	assert.Equal(t, "sdfn", formatHashFields(bits))
	_, err = parseHashFields("sx")
	assert.ErrorContains(t, err, `'x' is none of`)
	b := rxfhMsg(unix.ETHTOOL_SRXFH, flowTypes["udp4"], bits)
	require.Len(t, b, 192)
	assert.Equal(t, uint32(unix.ETHTOOL_SRXFH), binary.NativeEndian.Uint32(b))
	assert.Equal(t, uint32(2), binary.NativeEndian.Uint32(b[4:]), "UDP_V4_FLOW")
	assert.Equal(t, bits, binary.NativeEndian.Uint64(b[8:]))
	_, err = flowType("tcp")
	assert.ErrorContains(t, err, `flow type "tcp" is none of ah4, ah6, esp4`)
}

// TestNtupleMsg checks struct ethtool_rxnfc as ETHTOOL_SRXCLSRLINS takes
// it (ethtool -N eth0 flow-type tcp4 dst-ip 198.18.0.2 dst-port 5201
// action 3): flow_type at 16, h_u.tcp_ip4_spec at 20 with its mask m_u
// at 92, ring_cookie at 168, location at 176 (RX_CLS_LOC_ANY).
func TestNtupleMsg(t *testing.T) {
	b, err := ntupleMsg(Ntuple{Flow: "tcp4", Dst: netip.MustParseAddr("198.18.0.2"), DstPort: 5201, Queue: 3})
	require.NoError(t, err)
	require.Len(t, b, 192)
	assert.Equal(t, uint32(unix.ETHTOOL_SRXCLSRLINS), binary.NativeEndian.Uint32(b))
	assert.Equal(t, uint32(1), binary.NativeEndian.Uint32(b[16:]), "TCP_V4_FLOW")
	assert.Equal(t, []byte{0, 0, 0, 0, 198, 18, 0, 2}, b[20:28], "ip4src any, ip4dst")
	assert.Equal(t, []byte{0, 0, 0x14, 0x51}, b[28:32], "psrc any, pdst 5201 big-endian")
	assert.Equal(t, []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff}, b[92:104], "masks")
	assert.Equal(t, uint64(3), binary.NativeEndian.Uint64(b[168:]))
	assert.Equal(t, uint32(0xffffffff), binary.NativeEndian.Uint32(b[176:]))
	b, _ = ntupleMsg(Ntuple{Flow: "udp4", Src: netip.MustParseAddr("198.18.0.1"), Drop: true})
	assert.Equal(t, ^uint64(0), binary.NativeEndian.Uint64(b[168:]), "RX_CLS_FLOW_DISC")
	_, err = ntupleMsg(Ntuple{Flow: "tcp6"})
	assert.ErrorContains(t, err, "tcp4 or udp4")
	_, err = ntupleMsg(Ntuple{Flow: "tcp4", Dst: netip.MustParseAddr("2001:db8::1")})
	assert.ErrorContains(t, err, "not IPv4")
	d := delNtupleMsg(7)
	assert.Equal(t, uint32(unix.ETHTOOL_SRXCLSRLDEL), binary.NativeEndian.Uint32(d))
	assert.Equal(t, uint32(7), binary.NativeEndian.Uint32(d[176:]))
}

// TestRSSVeth: a veth has no RSS, rx-flow-hash or ntuple filters; each
// says so wrapping EOPNOTSUPP.
func TestRSSVeth(t *testing.T) {
	inThrowawayNetns(t, func() {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Errorf("create veth0: %v", err)
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Errorf("socket: %v", err)
			return
		}
		defer unix.Close(fd)
		_, err = ReadRSS(fd, "veth0")
		assert.ErrorIs(t, err, unix.EOPNOTSUPP)
		assert.ErrorContains(t, err, "read RSS of veth0: not supported by its driver")
		_, err = FlowHash(fd, "veth0", "tcp4")
		assert.ErrorIs(t, err, unix.EOPNOTSUPP)
		assert.ErrorContains(t, err, "read rx-flow-hash tcp4 of veth0: not supported by its driver")
		_, err = AddNtuple(fd, "veth0", Ntuple{Flow: "tcp4", DstPort: 5201, Queue: 1})
		assert.ErrorIs(t, err, unix.EOPNOTSUPP)
	})
}

// TestGrssh checks struct ethtool_rxfh of ETHTOOL_GRSSH both ways: the
// sizes request, then a reply filled as the kernel does
// (ethtool_get_rxfh: sizes, hfunc, the table, the key).
func TestGrssh(t *testing.T) {
	b := grsshMsg(0, 0)
	require.Len(t, b, 24)
	assert.Equal(t, uint32(unix.ETHTOOL_GRSSH), binary.NativeEndian.Uint32(b))
	b = grsshMsg(4, 3)
	require.Len(t, b, 24+16+3)
	b[16] = 1
	for i, q := range []uint32{0, 1, 0, 1} {
		binary.NativeEndian.PutUint32(b[24+4*i:], q)
	}
	copy(b[40:], []byte{7, 8, 9})
	r, err := parseGrssh(b)
	require.NoError(t, err)
	assert.Equal(t, RSS{Indir: []uint32{0, 1, 0, 1}, Key: []byte{7, 8, 9}, Hfunc: "toeplitz"}, r)
	_, err = parseGrssh(b[:30])
	assert.ErrorContains(t, err, "for 4 entries and a 3-byte key")
}
