package agent

import (
	"errors"
	"fmt"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A network namespace's first VRF makes the kernel add an "l3mdev" policy
// rule to each routing family ("1000: from all lookup [l3mdev-table]"),
// which sends the traffic of a VRF's devices to the VRF's table. The
// kernel never removes the rules, and adds none for later VRFs of the
// namespace, even when they were deleted. So the agent keeps the rules as
// the host had them: when it makes a VRF it adds the IPv4 and IPv6 rules
// the host lacks (its VRF routes whatever came before), and the VRF's undo
// removes, once no VRF is left on the host, the rules of the families that
// had none before the VRF was made (undo.L3mdev).

// l3mdevPref is the priority the kernel gives its l3mdev rules.
const l3mdevPref = 1000

// l3mdevFamilies are the rule families the kernel gives an l3mdev rule:
// IPv4, IPv6 and their multicast routing (where the kernel has multiple
// multicast tables).
var l3mdevFamilies = []int{unix.AF_INET, unix.AF_INET6, rtnlFamilyIPMR, rtnlFamilyIP6MR}

// RTNL_FAMILY_IPMR and RTNL_FAMILY_IP6MR (linux/rtnetlink.h).
const (
	rtnlFamilyIPMR  = 128
	rtnlFamilyIP6MR = 129
)

// l3mdevRuleMsg builds the rule header and attributes of the kernel's
// l3mdev rule for family: what RTM_DELRULE removes, whoever added it, and,
// with the kernel's protocol, what RTM_NEWRULE adds.
func l3mdevRuleMsg(family int) []nl.NetlinkRequestData {
	msg := nl.NewRtMsg()
	msg.Family = uint8(family)
	msg.Table = unix.RT_TABLE_UNSPEC
	msg.Type = nl.FR_ACT_TO_TBL    // the action, in a rule header
	msg.Protocol, msg.Scope = 0, 0 // reserved in a rule header
	return []nl.NetlinkRequestData{
		msg,
		nl.NewRtAttr(nl.FRA_PRIORITY, nl.Uint32Attr(l3mdevPref)),
		nl.NewRtAttr(nl.FRA_L3MDEV, nl.Uint8Attr(1)),
	}
}

// errFamilyUnsupported marks a rule family the kernel does not have.
var errFamilyUnsupported = errors.New("rule family not supported by the kernel")

// hasL3mdevRule reports whether the host has an l3mdev rule of family.
// A family the kernel keeps no rules for is errFamilyUnsupported.
func (h *host) hasL3mdevRule(family int) (bool, error) {
	var msgs [][]byte
	err := h.do(func() error {
		req := nl.NewNetlinkRequest(unix.RTM_GETRULE, unix.NLM_F_DUMP|unix.NLM_F_REQUEST)
		req.AddData(&nl.RtMsg{RtMsg: unix.RtMsg{Family: uint8(family)}})
		var err error
		msgs, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWRULE)
		return err
	})
	if errors.Is(err, unix.EAFNOSUPPORT) {
		return false, errFamilyUnsupported
	}
	if err != nil {
		return false, fmt.Errorf("list rules of family %d on %s: %w", family, h.label(), err)
	}
	for _, m := range msgs {
		if isL3mdevRule(m) {
			return true, nil
		}
	}
	return false, nil
}

// isL3mdevRule reports whether the RTM_NEWRULE payload m (rule header and
// attributes) is an l3mdev rule.
func isL3mdevRule(m []byte) bool {
	if len(m) < unix.SizeofRtMsg {
		return false
	}
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofRtMsg:])
	if err != nil {
		return false
	}
	for _, a := range attrs {
		if a.Attr.Type == nl.FRA_L3MDEV && len(a.Value) > 0 && a.Value[0] != 0 {
			return true
		}
	}
	return false
}

// l3mdevRule adds (RTM_NEWRULE) or removes (RTM_DELRULE) the l3mdev rule
// of family.
func (h *host) l3mdevRule(op, family int) error {
	flags := unix.NLM_F_ACK
	if op == unix.RTM_NEWRULE {
		flags |= unix.NLM_F_CREATE | unix.NLM_F_EXCL
	}
	return h.do(func() error {
		req := nl.NewNetlinkRequest(op, flags)
		for _, d := range l3mdevRuleMsg(family) {
			req.AddData(d)
		}
		if op == unix.RTM_NEWRULE {
			req.AddData(nl.NewRtAttr(nl.FRA_PROTOCOL, nl.Uint8Attr(unix.RTPROT_KERNEL)))
		}
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
}

// l3mdevMissing lists the families that have no l3mdev rule on the host;
// families the kernel has no rules for are left out.
func (h *host) l3mdevMissing() ([]int, error) {
	var missing []int
	for _, f := range l3mdevFamilies {
		ok, err := h.hasL3mdevRule(f)
		if errors.Is(err, errFamilyUnsupported) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			missing = append(missing, f)
		}
	}
	return missing, nil
}

// l3mdevBefore returns, for a VRF spec, the families whose l3mdev rules
// the VRF's undo removes: those the host has none of yet. Other kinds
// need none.
func (h *host) l3mdevBefore(spec devices.Spec) ([]int, error) {
	if _, ok := spec.(devices.Vrf); !ok {
		return nil, nil
	}
	return h.l3mdevMissing()
}

// ensureL3mdev adds the IPv4 and IPv6 l3mdev rules the host lacks: the
// kernel adds them only for a namespace's first VRF.
func (h *host) ensureL3mdev() error {
	for _, f := range []int{unix.AF_INET, unix.AF_INET6} {
		ok, err := h.hasL3mdevRule(f)
		switch {
		case errors.Is(err, errFamilyUnsupported), err == nil && ok:
			continue
		case err != nil:
			return err
		}
		if err := h.l3mdevRule(unix.RTM_NEWRULE, f); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add the l3mdev rule of family %d on %s: %w", f, h.label(), err)
		}
	}
	return nil
}

// dropL3mdev removes the l3mdev rules of families, unless a VRF is still
// on the host (it needs them).
func (h *host) dropL3mdev(families []int) error {
	links, err := h.linkList()
	if err != nil {
		return fmt.Errorf("list devices on %s: %w", h.label(), err)
	}
	for _, l := range links {
		if _, ok := l.(*netlink.Vrf); ok {
			return nil
		}
	}
	var errs []error
	for _, f := range families {
		err := h.l3mdevRule(unix.RTM_DELRULE, f)
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EAFNOSUPPORT) {
			errs = append(errs, fmt.Errorf("remove the l3mdev rule of family %d on %s: %w", f, h.label(), err))
		}
	}
	return errors.Join(errs...)
}
