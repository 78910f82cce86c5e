package ethtool

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Captured kernel answers (testdata/*.bin, see testdata/README.md): each
// file holds the netlink messages a kernel sent back to one request, as
// read from the socket (each with its struct nlmsghdr), so that the
// answer's parsers are tested against what a device really reported.
// TestCaptureAnswers writes them; captured_linux_test.go reads them.

// exchange sends one request (a netlink message of type typ with payload)
// on a netlink socket of protocol proto and returns the kernel's answer
// as read: its datagrams, until a message that ends it.
func exchange(proto int, typ uint16, flags uint16, payload []byte) ([]byte, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	req := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(payload)))
	req = binary.NativeEndian.AppendUint16(req, typ)
	req = binary.NativeEndian.AppendUint16(req, unix.NLM_F_REQUEST|flags)
	req = binary.NativeEndian.AppendUint32(req, 1) // sequence
	req = binary.NativeEndian.AppendUint32(req, 0) // port: the kernel's
	req = append(req, payload...)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var answer []byte
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, err
		}
		answer = append(answer, buf[:n]...)
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_DONE || m.Header.Type == unix.NLMSG_ERROR || m.Header.Flags&unix.NLM_F_MULTI == 0 {
				return answer, nil
			}
		}
	}
}

// answerErrno is the errno of an answer that is one NLMSG_ERROR, 0 for
// a reply.
func answerErrno(b []byte) syscall.Errno {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil || len(msgs) == 0 || msgs[0].Header.Type != unix.NLMSG_ERROR || len(msgs[0].Data) < 4 {
		return 0
	}
	return syscall.Errno(-int32(binary.NativeEndian.Uint32(msgs[0].Data)))
}

// TestCaptureAnswers writes the kernel's answers to the get requests
// this package and internal/sriov send, for one device, into the
// directory LNST_CAPTURE_NETLINK names: <message>_<driver>.bin, or
// <message>_<driver>_<errno>.bin when the kernel answered with an error
// (pause_virtio_eopnotsupp.bin). The device is LNST_CAPTURE_DEV in the
// calling namespace (its driver named by sysfs, virtio_net as "virtio"),
// or without it a fresh veth in a throwaway namespace. The VM lab runs it
// in a guest through recipes' TestCaptureNICAnswers; testdata/README.md
// says how each file was made.
func TestCaptureAnswers(t *testing.T) {
	dir := os.Getenv("LNST_CAPTURE_NETLINK")
	if dir == "" {
		t.Skip("captures kernel answers only with LNST_CAPTURE_NETLINK=dir (testdata/README.md)")
	}
	dev := os.Getenv("LNST_CAPTURE_DEV")
	if dev != "" {
		captureDev(t, dir, dev, driverOf(t, dev))
		return
	}
	inThrowawayNetns(t, func() {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}
		require.NoError(t, netlink.LinkAdd(veth))
		captureDev(t, dir, "veth0", "veth")
	})
}

// driverOf names dev's driver as the capture files do: its sysfs driver,
// virtio_net as "virtio".
func driverOf(t *testing.T, dev string) string {
	link, err := os.Readlink("/sys/class/net/" + dev + "/device/driver")
	require.NoError(t, err, "driver of %s", dev)
	return strings.TrimSuffix(filepath.Base(link), "_net")
}

func captureDev(t *testing.T, dir, dev, driver string) {
	require.NoError(t, os.MkdirAll(dir, 0o755))
	gen, err := family()
	require.NoError(t, err)
	write := func(name string, b []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".bin"), b, 0o644))
		t.Logf("%s: %d bytes", name+".bin", len(b))
	}
	writeAnswer := func(msg string, b []byte) {
		name := msg + "_" + driver
		switch errno := answerErrno(b); errno {
		case 0:
		case unix.EOPNOTSUPP: // ErrnoName says ENOTSUP, its other name
			name += "_eopnotsupp"
		default:
			name += "_" + strings.ToLower(unix.ErrnoName(errno))
		}
		write(name, b)
	}
	for msg, req := range map[string][]byte{
		"channels":  channels.getMsg(dev),
		"rings":     rings.getMsg(dev),
		"coalesce":  coalesce.getMsg(dev),
		"pause":     pause.getMsg(dev),
		"linkmodes": linkModes.getMsg(dev),
		"rss":       rssGetMsg(dev),
	} {
		b, err := exchange(unix.NETLINK_GENERIC, gen, 0, req)
		require.NoError(t, err, msg)
		writeAnswer(msg, b)
	}
	// The ioctl answers (features, RSS before Linux 6.3, rx-flow-hash): the struct
	// as the kernel filled it. A device without them has no file.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	sizes := grsshMsg(0, 0)
	if _, err := ioctl(fd, dev, sizes); err != nil {
		t.Logf("ETHTOOL_GRSSH of %s: %v: no grssh file", dev, err)
	} else {
		b := grsshMsg(binary.NativeEndian.Uint32(sizes[8:]), binary.NativeEndian.Uint32(sizes[12:]))
		_, err := ioctl(fd, dev, b)
		require.NoError(t, err, "ETHTOOL_GRSSH of %s", dev)
		write("grssh_"+driver, b)
	}
	// Features: the GSSET_INFO, GSTRINGS and GFEATURES structs one read
	// takes, one after the other.
	var feats []byte
	_, err = readVia(dev, func(buf []byte) error {
		_, err := ioctl(fd, dev, buf)
		feats = append(feats, buf...)
		return err
	})
	require.NoError(t, err, "features of %s", dev)
	write("features_"+driver, feats)
	for _, flow := range []string{"tcp4", "udp6"} {
		b := rxfhMsg(unix.ETHTOOL_GRXFH, flowTypes[flow], 0)
		if _, err := ioctl(fd, dev, b); err != nil {
			t.Logf("ETHTOOL_GRXFH %s of %s: %v: no grxfh file", flow, dev, err)
			continue
		}
		write("grxfh_"+flow+"_"+driver, b)
	}
	// RTM_GETLINK as the agent reads links (the netlink library's
	// LinkByName): VF attributes asked for.
	l, err := netlink.LinkByName(dev)
	require.NoError(t, err)
	ifi := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(ifi[4:], uint32(l.Attrs().Index))
	ifi = appendAttr(ifi, unix.IFLA_EXT_MASK, binary.NativeEndian.AppendUint32(nil, nl.RTEXT_FILTER_VF))
	b, err := exchange(unix.NETLINK_ROUTE, unix.RTM_GETLINK, 0, ifi)
	require.NoError(t, err, "getlink")
	writeAnswer("getlink", b)
}
