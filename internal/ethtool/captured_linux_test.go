package ethtool

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Tests of the parsers against answers real kernels gave (testdata,
// captured by TestCaptureAnswers; testdata/README.md): *_virtio from a
// VM lab guest (Debian's 6.1.0-57-cloud-amd64, virtio-net on QEMU 7.2
// with 4 queue pairs, mq=on, rss=on, one vCPU), *_veth from a fresh veth
// on this machine's 6.18 kernel (2 CPUs). Every value asserted is one the
// device reported.

// TestCapturedChannels: virtio-net has combined channels only, up to its
// 4 queue pairs, one in use (the guest's one CPU); a veth has rx and tx
// only, one each, up to the host's CPUs.
func TestCapturedChannels(t *testing.T) {
	cur, max, err := capturedParams(t, channels, "eth0", "channels_virtio.bin")
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"combined": 1}, cur)
	assert.Equal(t, map[string]uint32{"combined": 4}, max)

	cur, max, err = capturedParams(t, channels, "veth0", "channels_veth.bin")
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"rx": 1, "tx": 1}, cur)
	assert.Equal(t, map[string]uint32{"rx": 2, "tx": 2}, max)
}

// TestCapturedRingsCoalesce: virtio-net's rings are 256 of at most 256
// each way (QEMU's default queue size); its coalescing is one frame per
// interrupt, no timer, each way (tx-frames 1: napi_tx).
func TestCapturedRingsCoalesce(t *testing.T) {
	cur, max, err := capturedParams(t, rings, "eth0", "rings_virtio.bin")
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"rx": 256, "tx": 256}, cur)
	assert.Equal(t, map[string]uint32{"rx": 256, "tx": 256}, max)

	cur, _, err = capturedParams(t, coalesce, "eth0", "coalesce_virtio.bin")
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"rx-usecs": 0, "rx-frames": 1, "tx-usecs": 0, "tx-frames": 1}, cur)
}

// TestCapturedLinkModes: virtio-net without speed and duplex from QEMU
// reports both unknown (SPEED_UNKNOWN as u32, DUPLEX_UNKNOWN), autoneg
// off; a veth 10000 Mb/s full duplex, autoneg off.
func TestCapturedLinkModes(t *testing.T) {
	cur, _, err := capturedParams(t, linkModes, "eth0", "linkmodes_virtio.bin")
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"speed": 0xffffffff, "duplex": 255, "autoneg": 0}, cur)

	cur, _, err = capturedParams(t, linkModes, "veth0", "linkmodes_veth.bin")
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"speed": 10000, "duplex": 1, "autoneg": 0}, cur)
}

// TestCapturedNotSupported: the kernel answers a get of settings the
// driver lacks with an NLMSG_ERROR of EOPNOTSUPP (virtio-net and veth
// have no pause frames, veth no rings or coalescing); each becomes the
// error that names the device and says "not supported by its driver",
// which a recipe skips on.
func TestCapturedNotSupported(t *testing.T) {
	for _, c := range []struct {
		file string
		p    *paramSet
		want string
	}{
		{"pause_virtio_eopnotsupp.bin", pause, "read pause settings of eth0: not supported by its driver (ethtool -A)"},
		{"pause_veth_eopnotsupp.bin", pause, "read pause settings of eth0: not supported by its driver (ethtool -A)"},
		{"rings_veth_eopnotsupp.bin", rings, "read ring settings of eth0: not supported by its driver (ethtool -G)"},
		{"coalesce_veth_eopnotsupp.bin", coalesce, "read coalesce settings of eth0: not supported by its driver (ethtool -C)"},
	} {
		msgs, err := readAnswer(t, c.file)
		require.ErrorIs(t, err, unix.EOPNOTSUPP, "%s holds the kernel's EOPNOTSUPP", c.file)
		_, _, err = c.p.answer("eth0", msgs, err)
		assert.ErrorIs(t, err, unix.EOPNOTSUPP, c.file)
		assert.EqualError(t, err, c.want+": operation not supported", c.file)
	}
}

// readAnswer reads a captured answer as nl.NetlinkRequest.Execute gives
// it to the code under test: the payload of each message, or for an
// NLMSG_ERROR the errno the kernel answered with.
func readAnswer(t *testing.T, file string) ([][]byte, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	msgs, err := syscall.ParseNetlinkMessage(b)
	require.NoError(t, err, "%s: netlink messages", file)
	var payloads [][]byte
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.NLMSG_DONE:
			return payloads, nil
		case unix.NLMSG_ERROR:
			require.GreaterOrEqual(t, len(m.Data), 4, "%s: struct nlmsgerr", file)
			if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return nil, syscall.Errno(-errno)
			}
			return payloads, nil
		}
		payloads = append(payloads, m.Data)
	}
	return payloads, nil
}

// capturedParams reads the captured answer file to a get of p's
// settings of ifname as p's read does.
func capturedParams(t *testing.T, p *paramSet, ifname, file string) (cur, max map[string]uint32, err error) {
	t.Helper()
	msgs, err := readAnswer(t, file)
	return p.answer(ifname, msgs, err)
}

// readIoctlAnswer reads a captured SIOCETHTOOL struct as the kernel
// filled it.
func readIoctlAnswer(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	return b
}

// TestCapturedRSS: Linux 6.1 has no ETHTOOL_MSG_RSS_GET (6.3 added it)
// and answers it with EOPNOTSUPP, so ReadRSS asks the ioctl; virtio-net's
// ETHTOOL_GRSSH answer is a 128-entry table all on queue 0 (the default
// spread over the one queue pair in use), a 40-byte Toeplitz key. The
// 6.18 kernel here answers RSS_GET of a veth with EOPNOTSUPP too (no
// get_rxfh): the ioctl is asked as well, and says not supported.
func TestCapturedRSS(t *testing.T) {
	grssh := readIoctlAnswer(t, "grssh_virtio.bin")
	asked := 0
	msgs, err := readAnswer(t, "rss_virtio_eopnotsupp.bin")
	r, err := rssAnswer("eth0", msgs, err, func() (RSS, error) { asked++; return parseGrssh(grssh) })
	require.NoError(t, err)
	assert.Equal(t, 1, asked, "the ioctl is asked once")
	assert.Equal(t, "toeplitz", r.Hfunc)
	assert.Equal(t, make([]uint32, 128), r.Indir)
	assert.True(t, IsDefaultIndir(r.Indir))
	key, _ := hex.DecodeString("f1a694e93929941f436907ebcffc2e039711587ae5b1d3ff9296a3548549e1f32b43b8abf20bc815")
	assert.Equal(t, key, r.Key)
	assert.False(t, r.xfrmKnown, "the ioctl path does not know input_xfrm")

	msgs, err = readAnswer(t, "rss_veth_eopnotsupp.bin")
	asked = 0
	_, err = rssAnswer("veth0", msgs, err, func() (RSS, error) { asked++; return RSS{}, unix.EOPNOTSUPP })
	assert.ErrorIs(t, err, unix.EOPNOTSUPP)
	assert.Equal(t, 1, asked, "veth's EOPNOTSUPP falls back to the ioctl too")
}

// TestCapturedFlowHash: virtio-net hashes TCP over IPv4 and UDP over
// IPv6 on addresses and ports (ETHTOOL_GRXFH: sdfn).
func TestCapturedFlowHash(t *testing.T) {
	for file, flow := range map[string]string{"grxfh_tcp4_virtio.bin": "tcp4", "grxfh_udp6_virtio.bin": "udp6"} {
		b := readIoctlAnswer(t, file)
		require.Len(t, b, rxnfcLen, file)
		assert.Equal(t, uint32(unix.ETHTOOL_GRXFH), binary.NativeEndian.Uint32(b), file)
		assert.Equal(t, flowTypes[flow], binary.NativeEndian.Uint32(b[4:]), file)
		assert.Equal(t, "sdfn", formatHashFields(binary.NativeEndian.Uint64(b[rxnfcData:])), file)
	}
}

// replayIoctls is a SIOCETHTOOL sender that answers each request from a
// captured file of the structs the kernel filled, in order: each must be
// the request's command and length.
func replayIoctls(t *testing.T, file string) func(buf []byte) error {
	t.Helper()
	b := readIoctlAnswer(t, file)
	return func(buf []byte) error {
		cmd := binary.NativeEndian.Uint32(buf)
		if len(b) < len(buf) || binary.NativeEndian.Uint32(b) != cmd {
			return fmt.Errorf("%s: no captured answer of %d bytes to ethtool command %#x here", file, len(buf), cmd)
		}
		copy(buf, b)
		b = b[len(buf):]
		return nil
	}
}

// TestCapturedFeatures reads features as virtio-net (6.1) and veth (6.18)
// reported them through GSSET_INFO, GSTRINGS and GFEATURES: 64 names
// each; virtio-net's rx-checksum is on and fixed (the host offers
// VIRTIO_NET_F_GUEST_CSUM), its rx-gro-hw on and changeable; a veth has
// no GRO by default and may turn it on.
func TestCapturedFeatures(t *testing.T) {
	d, err := readVia("eth0", replayIoctls(t, "features_virtio.bin"))
	require.NoError(t, err)
	require.Len(t, d.names, 64)
	f := d.features()
	var on []string
	for _, n := range sortedNames(f) {
		if f.Active[n] {
			on = append(on, n)
		}
	}
	assert.Equal(t, []string{"highdma", "rx-checksum", "rx-gro", "rx-gro-hw", "rx-vlan-filter", "tx-checksum-ip-generic",
		"tx-generic-segmentation", "tx-gso-robust", "tx-scatter-gather", "tx-tcp-ecn-segmentation", "tx-tcp-segmentation",
		"tx-tcp6-segmentation"}, on)
	assert.True(t, f.Fixed["rx-checksum"])
	assert.False(t, f.Fixed["rx-gro-hw"])
	_, err = d.plan(map[string]bool{"rx-checksum": false})
	assert.EqualError(t, err, "rx-checksum is fixed on eth0")
	changes, err := d.plan(map[string]bool{"lro": false, "rx-gro-hw": false})
	require.NoError(t, err, "lro is already off")
	assert.Equal(t, "rx-gro-hw off", d.describe(changes))

	d, err = readVia("veth0", replayIoctls(t, "features_veth.bin"))
	require.NoError(t, err)
	require.Len(t, d.names, 64)
	f = d.features()
	assert.False(t, f.Active["rx-gro"])
	assert.False(t, f.Fixed["rx-gro"])
	assert.True(t, f.Active["tx-udp-segmentation"])
	changes, err = d.plan(map[string]bool{"gro": true})
	require.NoError(t, err)
	assert.Equal(t, "rx-gro on", d.describe(changes))
}
