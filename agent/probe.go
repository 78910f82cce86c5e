package agent

import (
	"net"
	"sort"

	"github.com/vishvananda/netlink"
)

// probeLinks makes, for each link kind the agent can probe, a minimal
// device of that kind; parent is the index of a veth to stack on.
var probeLinks = map[string]func(parent int) netlink.Link{
	"veth":   func(int) netlink.Link { return &netlink.Veth{LinkAttrs: probeAttrs(), PeerName: "probe1"} },
	"bridge": func(int) netlink.Link { return &netlink.Bridge{LinkAttrs: probeAttrs()} },
	"bond":   func(int) netlink.Link { return netlink.NewLinkBond(probeAttrs()) },
	"team":   func(int) netlink.Link { return &netlink.GenericLink{LinkAttrs: probeAttrs(), LinkType: "team"} },
	"dummy":  func(int) netlink.Link { return &netlink.Dummy{LinkAttrs: probeAttrs()} },
	"ifb":    func(int) netlink.Link { return &netlink.Ifb{LinkAttrs: probeAttrs()} },
	"vlan": func(p int) netlink.Link {
		return &netlink.Vlan{LinkAttrs: probeChild(p), VlanId: 10}
	},
	"vxlan": func(int) netlink.Link { return &netlink.Vxlan{LinkAttrs: probeAttrs(), VxlanId: 42, Port: 4789} },
	"macvlan": func(p int) netlink.Link {
		return &netlink.Macvlan{LinkAttrs: probeChild(p), Mode: netlink.MACVLAN_MODE_BRIDGE}
	},
	"macvtap": func(p int) netlink.Link {
		return &netlink.Macvtap{Macvlan: netlink.Macvlan{LinkAttrs: probeChild(p), Mode: netlink.MACVLAN_MODE_BRIDGE}}
	},
	"ipvlan": func(p int) netlink.Link {
		return &netlink.IPVlan{LinkAttrs: probeChild(p), Mode: netlink.IPVLAN_MODE_L2}
	},
	"gre": func(int) netlink.Link {
		return &netlink.Gretun{LinkAttrs: probeAttrs(), Local: net.ParseIP("198.18.0.1"), Remote: net.ParseIP("198.18.0.2")}
	},
	"gretap": func(int) netlink.Link {
		return &netlink.Gretap{LinkAttrs: probeAttrs(), Local: net.ParseIP("198.18.0.1"), Remote: net.ParseIP("198.18.0.2")}
	},
	"ip6gre": func(int) netlink.Link {
		return &netlink.Gretun{LinkAttrs: probeAttrs(), Local: net.ParseIP("2001:db8::1"), Remote: net.ParseIP("2001:db8::2")}
	},
	"ip6gretap": func(int) netlink.Link {
		return &netlink.Gretap{LinkAttrs: probeAttrs(), Local: net.ParseIP("2001:db8::1"), Remote: net.ParseIP("2001:db8::2")}
	},
	"ipip": func(int) netlink.Link {
		return &netlink.Iptun{LinkAttrs: probeAttrs(), Local: net.ParseIP("198.18.0.1"), Remote: net.ParseIP("198.18.0.2")}
	},
	"sit": func(int) netlink.Link {
		return &netlink.Sittun{LinkAttrs: probeAttrs(), Local: net.ParseIP("198.18.0.1"), Remote: net.ParseIP("198.18.0.2")}
	},
	"ip6tnl": func(int) netlink.Link {
		return &netlink.Ip6tnl{LinkAttrs: probeAttrs(), Local: net.ParseIP("2001:db8::1"), Remote: net.ParseIP("2001:db8::2")}
	},
	"vti": func(int) netlink.Link {
		return &netlink.Vti{LinkAttrs: probeAttrs(), Local: net.ParseIP("198.18.0.1"), Remote: net.ParseIP("198.18.0.2")}
	},
	"geneve": func(int) netlink.Link {
		return &netlink.Geneve{LinkAttrs: probeAttrs(), ID: 42, Remote: net.ParseIP("198.18.0.2")}
	},
	"vrf":       func(int) netlink.Link { return &netlink.Vrf{LinkAttrs: probeAttrs(), Table: 100} },
	"wireguard": func(int) netlink.Link { return &netlink.Wireguard{LinkAttrs: probeAttrs()} },
	"tun": func(int) netlink.Link {
		return &netlink.Tuntap{LinkAttrs: probeAttrs(), Mode: netlink.TUNTAP_MODE_TAP}
	},
}

func probeAttrs() netlink.LinkAttrs { return netlink.LinkAttrs{Name: "probe0"} }

func probeChild(parent int) netlink.LinkAttrs {
	return netlink.LinkAttrs{Name: "probe0", ParentIndex: parent}
}

// probeQdiscs makes, for each qdisc kind the agent can probe, a root
// qdisc of that kind on the device with index ifindex.
var probeQdiscs = map[string]func(ifindex int) netlink.Qdisc{
	"netem": func(i int) netlink.Qdisc {
		return netlink.NewNetem(probeQdiscAttrs(i), netlink.NetemQdiscAttrs{Latency: 1000})
	},
	"htb":      func(i int) netlink.Qdisc { return netlink.NewHtb(probeQdiscAttrs(i)) },
	"prio":     func(i int) netlink.Qdisc { return netlink.NewPrio(probeQdiscAttrs(i)) },
	"fq_codel": func(i int) netlink.Qdisc { return netlink.NewFqCodel(probeQdiscAttrs(i)) },
	"tbf": func(i int) netlink.Qdisc {
		return &netlink.Tbf{QdiscAttrs: probeQdiscAttrs(i), Rate: 1 << 20, Limit: 1 << 16, Buffer: 1 << 14}
	},
	"ingress": func(i int) netlink.Qdisc {
		return &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: i, Parent: netlink.HANDLE_INGRESS, Handle: netlink.MakeHandle(0xffff, 0)}}
	},
	"clsact": func(i int) netlink.Qdisc {
		return &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: i, Parent: netlink.HANDLE_INGRESS, Handle: netlink.MakeHandle(0xffff, 0)}}
	},
	"fq": func(i int) netlink.Qdisc { return netlink.NewFq(probeQdiscAttrs(i)) },
}

func probeQdiscAttrs(ifindex int) netlink.QdiscAttrs {
	return netlink.QdiscAttrs{LinkIndex: ifindex, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)}
}

// probeUserspace lists the link kinds a userspace tool makes, and how to
// probe each: ok is false when the tool cannot make one, and why says
// what is missing.
var probeUserspace = map[string]func() (ok bool, why string){
	ovsKind: probeOvs,
}

// probeKernel tries every link kind, qdisc, classifier and action in a
// throwaway namespace, and asks the tools of the kinds of probeUserspace
// whether they work.
func probeKernel() (kinds, qdiscs, tcKinds map[string]bool, err error) {
	h, err := newNamespaceHost("probe", false)
	if err != nil {
		return nil, nil, nil, err
	}
	defer h.close()
	parent := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "parent0"}, PeerName: "parent1"}
	parentIndex := 0
	if h.nl.LinkAdd(parent) == nil {
		if l, err := h.nl.LinkByName("parent0"); err == nil {
			parentIndex = l.Attrs().Index
		}
	}
	kinds = map[string]bool{}
	for _, kind := range sortedKeys(probeLinks) {
		l := probeLinks[kind](parentIndex)
		// linkAdd makes a tun/tap on the probe namespace's thread: netlink
		// makes those by ioctl in the calling thread's namespace.
		kinds[kind] = h.linkAdd(l) == nil
		if kinds[kind] {
			h.nl.LinkDel(l)
		}
	}
	for _, kind := range sortedKeys(probeUserspace) {
		kinds[kind], _ = probeUserspace[kind]()
	}
	qdiscs = map[string]bool{}
	if parentIndex != 0 {
		for _, kind := range sortedKeys(probeQdiscs) {
			q := probeQdiscs[kind](parentIndex)
			qdiscs[kind] = h.nl.QdiscAdd(q) == nil
			if qdiscs[kind] {
				h.nl.QdiscDel(q)
			}
		}
		tcKinds = probeTc(h, parentIndex)
	}
	return kinds, qdiscs, tcKinds, nil
}

func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// KernelFeatures lists every link kind, qdisc, classifier and action
// Probe reports on.
func KernelFeatures() []string {
	f := append(sortedKeys(probeLinks), sortedKeys(probeQdiscs)...)
	f = append(f, probeTcNames()...)
	f = append(f, sortedKeys(probeUserspace)...)
	sort.Strings(f)
	return f
}
