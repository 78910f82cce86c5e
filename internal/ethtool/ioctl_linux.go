package ethtool

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ifreqData is struct ifreq with ifr_data set, as SIOCETHTOOL wants it. It
// mirrors the unexported ifreqData of golang.org/x/sys/unix: the pointer
// lives in a pointer-typed field so the garbage collector sees it, and the
// padding brings the struct to sizeof(struct ifreq), which the kernel copies
// in whole.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [unsafe.Sizeof(unix.Ifreq{}) - unix.IFNAMSIZ - unsafe.Sizeof(unsafe.Pointer(nil))]byte
}

// ioctl sends one SIOCETHTOOL request whose struct is buf (starting with its
// u32 cmd) for device ifname, and returns the ioctl's non-negative result.
func ioctl(fd int, ifname string, buf []byte) (int, error) {
	// NewIfreq checks the name length the way the rest of x/sys does.
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, fmt.Errorf("device name %q: %w", ifname, err)
	}
	var req ifreqData
	copy(req.name[:], ifr.Name())
	req.data = unsafe.Pointer(&buf[0])
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req)))
	runtime.KeepAlive(buf)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
