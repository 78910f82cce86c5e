package agent

import (
	"sort"

	"github.com/vishvananda/netlink"
)

// Classifiers and actions are probed by their kernel module names
// (cls_u32, act_gact): "police" or "u32" alone would read as anything.

// probeClassifiers makes, for each classifier the agent can probe, a
// filter of that kind with no action at the ingress hook of ifindex.
var probeClassifiers = map[string]func(ifindex int) netlink.Filter{
	"cls_u32":      func(i int) netlink.Filter { return &netlink.U32{FilterAttrs: probeFilterAttrs(i)} },
	"cls_flower":   func(i int) netlink.Filter { return &netlink.Flower{FilterAttrs: probeFilterAttrs(i)} },
	"cls_matchall": func(i int) netlink.Filter { return &netlink.MatchAll{FilterAttrs: probeFilterAttrs(i)} },
}

// probeActions makes, for each action the agent can probe, an action of
// that kind; peer is a device to send to.
var probeActions = map[string]func(peer int) netlink.Action{
	"act_gact": func(int) netlink.Action {
		return &netlink.GenericAction{ActionAttrs: netlink.ActionAttrs{Action: netlink.TC_ACT_SHOT}}
	},
	"act_mirred": func(p int) netlink.Action { return netlink.NewMirredAction(p) },
	"act_police": func(int) netlink.Action {
		a := netlink.NewPoliceAction()
		a.Rate, a.Burst, a.ExceedAction = 1<<17, 1<<14, netlink.TC_POLICE_SHOT
		return a
	},
	"act_skbedit": func(int) netlink.Action {
		a := netlink.NewSkbEditAction()
		mark := uint32(1)
		a.Mark = &mark
		return a
	},
}

func probeFilterAttrs(ifindex int) netlink.FilterAttrs {
	return netlink.FilterAttrs{LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_INGRESS, Priority: 1, Protocol: 0x0003}
}

// probeTcNames are the names probeTc reports on.
func probeTcNames() []string {
	n := append(sortedKeys(probeClassifiers), sortedKeys(probeActions)...)
	sort.Strings(n)
	return n
}

// probeTc tries every classifier at an ingress qdisc on the device
// ifindex of h, and every action on a filter of the first classifier that
// worked (u32, else matchall, else flower). Without an ingress qdisc or a
// classifier, the actions count as missing: nothing could carry them.
func probeTc(h *host, ifindex int) map[string]bool {
	found := map[string]bool{}
	for _, k := range probeTcNames() {
		found[k] = false
	}
	ingress := probeQdiscs["ingress"](ifindex)
	if h.nl.QdiscAdd(ingress) != nil {
		return found
	}
	defer h.nl.QdiscDel(ingress)
	for _, kind := range sortedKeys(probeClassifiers) {
		f := probeClassifiers[kind](ifindex)
		found[kind] = h.nl.FilterAdd(f) == nil
		if found[kind] {
			h.nl.FilterDel(f)
		}
	}
	var carrier func(int) netlink.Filter
	for _, kind := range []string{"cls_u32", "cls_matchall", "cls_flower"} {
		if found[kind] {
			carrier = probeClassifiers[kind]
			break
		}
	}
	if carrier == nil {
		return found
	}
	for _, kind := range sortedKeys(probeActions) {
		f := carrier(ifindex)
		a := probeActions[kind](ifindex)
		switch f := f.(type) {
		case *netlink.U32:
			f.Actions = []netlink.Action{a}
		case *netlink.MatchAll:
			f.Actions = []netlink.Action{a}
		case *netlink.Flower:
			f.Actions = []netlink.Action{a}
		}
		found[kind] = h.nl.FilterAdd(f) == nil
		if found[kind] {
			h.nl.FilterDel(f)
		}
	}
	return found
}
