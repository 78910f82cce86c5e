package agent

// A VM lab guest's NICs go up for the first time when the controller's
// WaitUsable sets them up, and setLink then waits for each one's IPv6
// link-local address to finish duplicate address detection: a random
// delay of up to a second and a one-second probe, most of what WaitUsable
// cost a two-guest lab (1.8 s of 8). The NICs are on a bridge of the lab's
// own with only the lab's guests on it, so, as for namespace hosts
// (labdad.go), ServeVM turns detection off for each NIC before it serves
// (quietFirstUp), and the NIC's first setLink up puts the setting back
// once the link-local address is there (settleFirstUp): the guest then
// looks like a machine up a while, and every later address or up is
// detected as on any machine.

// quietFirstUp turns duplicate address detection off for the interfaces
// names (still down) until each one's first setLink up.
func (h *host) quietFirstUp(names []string) error {
	h.dadMu.Lock()
	defer h.dadMu.Unlock()
	for _, n := range names {
		old, err := h.writeValue(kindSysctl, dadKey(n), "0")
		if err != nil {
			return err
		}
		if h.firstUp == nil {
			h.firstUp = map[string]string{}
		}
		h.firstUp[n] = old
	}
	return nil
}

// settleFirstUp puts back the detection setting of ifname that
// quietFirstUp turned off, once; later calls do nothing.
func (h *host) settleFirstUp(ifname string) error {
	h.dadMu.Lock()
	old, ok := h.firstUp[ifname]
	delete(h.firstUp, ifname)
	h.dadMu.Unlock()
	if !ok {
		return nil
	}
	return h.replaceValue(kindSysctl, dadKey(ifname), old)
}
