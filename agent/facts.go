package agent

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Facts describes a host. A namespace host of the lab shares the
// machine's kernel, distribution and CPUs; its NICs are its own.
func (s *Server) Facts(_ context.Context, req *pb.FactsRequest) (*pb.FactsReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, failed(fmt.Errorf("uname: %w", err))
	}
	r := &pb.FactsReply{
		Kernel:   unix.ByteSliceToString(u.Release[:]),
		Arch:     unix.ByteSliceToString(u.Machine[:]),
		Hostname: unix.ByteSliceToString(u.Nodename[:]),
		NumCpu:   int32(runtime.NumCPU()),
	}
	osr := osRelease()
	r.Distribution, r.OsId, r.OsVersionId = osr["PRETTY_NAME"], osr["ID"], osr["VERSION_ID"]
	if r.Distribution == "" {
		r.Distribution = osr["NAME"]
	}
	links, err := h.linkList()
	if err != nil {
		return nil, failed(fmt.Errorf("list devices of %s: %w", h.label(), err))
	}
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		r.Nics = append(r.Nics, h.nic(l))
	}
	return r, nil
}

// nic describes a device: driver and firmware from ethtool GDRVINFO,
// speed from sysfs.
func (h *host) nic(l netlink.Link) *pb.Nic {
	a := l.Attrs()
	n := &pb.Nic{Name: a.Name, Hwaddr: a.HardwareAddr}
	h.do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		info, err := unix.IoctlGetEthtoolDrvinfo(fd, a.Name)
		if err != nil {
			return err
		}
		n.Driver = unix.ByteSliceToString(info.Driver[:])
		n.FirmwareVersion = unix.ByteSliceToString(info.Fw_version[:])
		n.BusInfo = unix.ByteSliceToString(info.Bus_info[:])
		return nil
	})
	if n.Driver == "" {
		n.Driver = l.Type()
	}
	if v, err := h.readValue(kindSysfs, "/sys/class/net/"+a.Name+"/speed"); err == nil {
		if speed, err := strconv.ParseInt(v, 10, 64); err == nil && speed > 0 {
			n.SpeedMbps = speed
		}
	}
	return n
}

// osRelease reads /etc/os-release (or /usr/lib/os-release).
func osRelease() map[string]string {
	out := map[string]string{}
	f, err := os.Open("/etc/os-release")
	if err != nil {
		if f, err = os.Open("/usr/lib/os-release"); err != nil {
			return out
		}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		out[k] = v
	}
	return out
}

// bootID is the kernel's boot id: it changes when the machine reboots.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
