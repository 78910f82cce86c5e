package agent

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// A lab host's interface is usable, as on a machine up a while, once its
// IPv6 link-local address has finished duplicate address detection: one
// to two seconds of kernel timer per interface (a random delay of up to a
// second, then a one-second probe), which was most of what a recipe paid
// for its first Require. A lab network is a bridge the lab just made, with
// only the lab's own veth ends on it: nothing there can hold the address.
// So Connect makes the interface with detection off for its link-local
// address and, once the kernel has given it that address, puts the
// interface's detection settings back to the namespace's defaults: the
// host then looks like one whose link-local address passed detection long
// ago, and every later address (AddIP, a link set down and up) is
// detected as on any machine.

// labLinkLocalBound bounds the wait for a new lab interface's link-local
// address (the kernel gives it at once: the veth has carrier as soon as
// both ends are up).
const labLinkLocalBound = 5 * time.Second

// dadKey is the sysctl of IPv6 duplicate address detection of dev
// ("default" for devices made later).
func dadKey(dev string) string { return "net/ipv6/conf/" + dev + "/accept_dad" }

// quietDAD turns duplicate address detection off for devices made from now
// on in the host's namespace, and returns the setting it replaced for
// settleDAD to put back. The host's dadMu is held until settleDAD.
func (h *host) quietDAD() (string, error) {
	h.dadMu.Lock()
	old, err := h.writeValue(kindSysctl, dadKey("default"), "0")
	if err != nil {
		h.dadMu.Unlock()
		return "", err
	}
	return old, nil
}

// settleDAD waits until interface ifname has its link-local address (if
// the kernel gives it one: IPv6 on, address generation on), then puts
// back the namespace's default detection setting, old, and sets the
// interface's own to it.
func (h *host) settleDAD(ifname, old string) error {
	defer h.dadMu.Unlock()
	werr := h.waitLinkLocal(ifname)
	err := h.replaceValue(kindSysctl, dadKey("default"), old)
	if err == nil {
		err = h.replaceValue(kindSysctl, dadKey(ifname), old)
	}
	if werr != nil {
		return werr
	}
	return err
}

// waitLinkLocal waits, within labLinkLocalBound, until ifname has an IPv6
// link-local address that is not tentative.
func (h *host) waitLinkLocal(ifname string) error {
	if !h.ipv6On(ifname) {
		return nil
	}
	deadline := time.Now().Add(labLinkLocalBound)
	wait := 200 * time.Microsecond
	for {
		l, err := h.nl.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("find %s on %s: %w", ifname, h.label(), err)
		}
		addrs, err := h.addrList(l, unix.AF_INET6)
		if err != nil {
			return fmt.Errorf("list addresses of %s on %s: %w", ifname, h.label(), err)
		}
		for _, a := range addrs {
			if a.IP.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s on %s has no usable IPv6 link-local address after %v", ifname, h.label(), labLinkLocalBound)
		}
		time.Sleep(wait)
		wait = min(2*wait, 20*time.Millisecond)
	}
}
