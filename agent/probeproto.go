package agent

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Transport protocols a recipe may need (Kernel("sctp")) or use where the
// kernel has them (the ENRT recipes' SCTP streams): probed by opening a
// socket, which loads the protocol's module on a kernel that has it as one
// (net-pf-2-proto-132 for sctp).

func init() {
	probeUserspace["sctp"] = func() (bool, string) {
		return probeSocket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP, "socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP)")
	}
}

// probeSocket reports whether a socket of family, type and protocol can
// be opened, and why not: what names the call and the kernel's answer.
func probeSocket(family, typ, proto int, what string) (bool, string) {
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return false, fmt.Sprintf("%s: %v", what, err)
	}
	unix.Close(fd)
	return true, ""
}
