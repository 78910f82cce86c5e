package agent

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ipv6OnByNetlink is ipv6On from the device's IPv6 devconf array, which
// the kernel puts in the device's RTM_NEWLINK message (IFLA_AF_SPEC,
// IFLA_INET6_CONF): disable_ipv6 and addr_gen_mode as their sysctls show
// them. Reading the addr_gen_mode sysctl takes the RTNL lock, or retries
// the read until it can: while a lab builds other hosts (each namespace
// and veth pair takes that lock) a read spun for half a millisecond on
// average, most of the agent's CPU in a 50-host build. A device without
// IPv6 state (IPv6 off in the kernel) has no IPv6 there.
func (h *host) ipv6OnByNetlink(name string) (bool, error) {
	var msgs [][]byte
	err := h.do(func() error {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
		var err error
		msgs, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read link %s on %s: %w", name, h.label(), err)
	}
	if len(msgs) != 1 || len(msgs[0]) < unix.SizeofIfInfomsg {
		return false, fmt.Errorf("read link %s on %s: %d answers", name, h.label(), len(msgs))
	}
	attrs, err := nl.ParseRouteAttr(msgs[0][unix.SizeofIfInfomsg:])
	if err != nil {
		return false, err
	}
	for _, a := range attrs {
		if a.Attr.Type != unix.IFLA_AF_SPEC {
			continue
		}
		fams, err := nl.ParseRouteAttr(a.Value)
		if err != nil {
			return false, err
		}
		for _, f := range fams {
			if f.Attr.Type != unix.AF_INET6 {
				continue
			}
			inet6, err := nl.ParseRouteAttr(f.Value)
			if err != nil {
				return false, err
			}
			for _, c := range inet6 {
				if c.Attr.Type == unix.IFLA_INET6_CONF {
					return ipv6OnConf(c.Value)
				}
			}
		}
		return false, nil // no IPv6 state on the device
	}
	return false, errors.New("no IFLA_AF_SPEC in the link message")
}

// ipv6OnConf reads disable_ipv6 and addr_gen_mode from an IPv6 devconf
// array (snapInet6Conf names its entries).
func ipv6OnConf(arr []byte) (bool, error) {
	get := func(name string) (uint32, error) {
		i := slices.Index(snapInet6Conf, name)
		if i < 0 || 4*i+4 > len(arr) {
			return 0, fmt.Errorf("the IPv6 devconf array has no %s", name)
		}
		return u32(arr[4*i:]), nil
	}
	disabled, err := get("disable_ipv6")
	if err != nil {
		return false, err
	}
	mode, err := get("addr_gen_mode")
	if err != nil {
		return false, err
	}
	return disabled == 0 && mode != 1, nil
}
