package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/lnst-go/lnst/devices/tc"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// SnapshotHosts reads, for each named host, what a recipe may change and
// must put back, as the whole-run clean check compares it (lnsttest's
// cleancheck.go): links (flags, MTU, master, state, addresses and every
// other attribute but counters, timers and the queue and GSO sizes),
// addresses, routes of both families in every table, rules, permanent
// neighbours, each link's ethtool features, rings, coalescing, channels
// and RSS, its qdiscs, classes and filters, each queue's RPS and XPS CPUs,
// every interrupt's CPU list (the machine's), its nftables ruleset,
// MPTCP endpoints and limits, xfrm states and policies and L2TP tunnels
// and sessions (snapextra.go), and every sysctl under /proc/sys/net the
// host's namespace shows. It reads them with netlink
// dumps, ioctls and file reads on the host's thread, as the shell script
// it replaces read them with a dozen processes; the hosts are read in
// parallel, at most as many at once as the machine has CPUs. Each line
// starts with what it is about (link:, addr, route, rule, neigh,
// ethtool-X, qdisc, tc-class, tc-filter, nft, mptcp-endpoint,
// mptcp-limits, xfrm-state, xfrm-policy, l2tp, or a file path and its value
// after ':'), so that a diff of two snapshots names what changed.
func (s *Server) SnapshotHosts(_ context.Context, req *pb.SnapshotRequest) (*pb.SnapshotReply, error) {
	hosts := make([]*host, len(req.Hosts))
	for i, name := range req.Hosts {
		h, err := s.host(name)
		if err != nil {
			return nil, err
		}
		hosts[i] = h
	}
	irqs, irqErr := snapIRQs()
	genl, genlErr := snapGenl()
	r := &pb.SnapshotReply{Hosts: make([]*pb.SnapshotHost, len(hosts))}
	one := func(i int, tmpl, out *snapSysTree) bool {
		h := hosts[i]
		sn := &snapWriter{genl: genl, sysTmpl: tmpl, sysOut: out}
		if genlErr != nil {
			sn.errs = append(sn.errs, genlErr.Error())
		}
		err := h.do(func() error { return h.snapshot(sn) })
		if err != nil {
			sn.errs = append(sn.errs, err.Error())
		}
		sn.lines = append(sn.lines, irqs...)
		if irqErr != nil {
			sn.errs = append(sn.errs, irqErr.Error())
		}
		r.Hosts[i] = &pb.SnapshotHost{Host: req.Hosts[i], Text: strings.Join(sn.lines, "\n") + "\n", Errors: sn.errs}
		return len(sn.errs) == 0
	}
	par := max(1, runtime.NumCPU())
	if req.Fresh {
		par = max(par, 8)
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	todo := make([]int, len(hosts))
	for i := range todo {
		todo[i] = i
	}
	var tmpl *snapSysTree
	if req.Fresh && len(hosts) >= 3 {
		tmpl, todo = s.freshTemplate(hosts, one)
	}
	for _, i := range todo {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			one(i, tmpl, nil)
		})
	}
	wg.Wait()
	return r, nil
}

// snapWriter collects a snapshot's lines and what it could not read.
type snapWriter struct {
	lines []string
	errs  []string
	names map[int32]string // link names by index
	// genl are the ids of the generic netlink families the snapshot
	// reads (snapGenl), by name.
	genl map[string]uint16
	// covered are, by sysctl directory, the files whose values came by
	// netlink (snapconf.go).
	covered map[string]map[string]bool
	// sysTmpl, if set, gives the namespace-wide sysctls; sysOut, if set,
	// records them as read (snapfresh.go).
	sysTmpl, sysOut *snapSysTree
}

func (w *snapWriter) add(format string, args ...any) {
	w.lines = append(w.lines, fmt.Sprintf(format, args...))
}

func (w *snapWriter) fail(what string, err error) {
	w.errs = append(w.errs, fmt.Sprintf("%s: %v", what, err))
}

// name is the name of link index i, or "if<i>" when it is not here.
func (w *snapWriter) name(i int32) string {
	if n, ok := w.names[i]; ok {
		return n
	}
	return "if" + strconv.Itoa(int(i))
}

// snapshot writes the host's snapshot; it runs on the host's thread.
func (h *host) snapshot(w *snapWriter) error {
	links, err := snapDump(unix.RTM_GETLINK, nl.NewIfInfomsg(unix.AF_UNSPEC))
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	w.names, w.covered = map[int32]string{}, map[string]map[string]bool{}
	var devs []string
	for _, m := range links {
		if len(m) < unix.SizeofIfInfomsg {
			continue
		}
		ifi := nl.DeserializeIfInfomsg(m)
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
		if err != nil {
			return fmt.Errorf("parse link: %w", err)
		}
		for _, a := range attrs {
			if a.Attr.Type == unix.IFLA_IFNAME {
				w.names[ifi.Index] = cstr(a.Value)
				devs = append(devs, cstr(a.Value))
			}
		}
	}
	for _, m := range links {
		if len(m) >= unix.SizeofIfInfomsg {
			w.link(m)
		}
	}
	w.addrs()
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		w.routes(fam)
		w.rules(fam)
	}
	w.neighs()
	snapEthtool(w, devs)
	w.tc(devs)
	snapQueues(w, devs)
	w.neighParms()
	w.extra()
	snapSysctls(w)
	return nil
}

// snapDump sends a dump request of type typ with header hdr in the
// calling thread's network namespace and returns the messages.
func snapDump(typ int, hdr nl.NetlinkRequestData) ([][]byte, error) {
	req := nl.NewNetlinkRequest(typ, unix.NLM_F_DUMP)
	req.AddData(hdr)
	return req.Execute(unix.NETLINK_ROUTE, 0)
}

// snapNdmsgLen is the size of struct ndmsg.
const snapNdmsgLen = 12

// snapRaw is a request header given as bytes.
type snapRaw []byte

func (r snapRaw) Len() int          { return len(r) }
func (r snapRaw) Serialize() []byte { return r }

// cstr is a netlink string attribute without its NUL.
func cstr(b []byte) string { return string(trimNul(b)) }

func u32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}

// attrHex renders an attribute whose meaning the snapshot does not parse.
func attrHex(prefix string, a netlinkAttr) string {
	return fmt.Sprintf("%s%d=%s", prefix, a.Attr.Type, hex.EncodeToString(a.Value))
}

// linkSkip are the link attributes left out: counters, carrier change
// counts, and the queue counts, queue length and GSO/GRO/TSO sizes the
// script also left out (they are set by the kernel as devices and qdiscs
// come and go). IFLA_PAD is padding.
var linkSkip = map[uint16]bool{
	unix.IFLA_STATS: true, unix.IFLA_STATS64: true, unix.IFLA_TXQLEN: true,
	unix.IFLA_NUM_TX_QUEUES: true, unix.IFLA_NUM_RX_QUEUES: true,
	unix.IFLA_GSO_MAX_SEGS: true, unix.IFLA_GSO_MAX_SIZE: true, unix.IFLA_PAD: true,
	unix.IFLA_CARRIER_CHANGES: true, unix.IFLA_CARRIER_UP_COUNT: true, unix.IFLA_CARRIER_DOWN_COUNT: true,
	unix.IFLA_GRO_MAX_SIZE: true, unix.IFLA_TSO_MAX_SIZE: true, unix.IFLA_TSO_MAX_SEGS: true,
	unix.IFLA_GSO_IPV4_MAX_SIZE: true, unix.IFLA_GRO_IPV4_MAX_SIZE: true,
	unix.IFLA_IFNAME: true, unix.IFLA_LINK: true, unix.IFLA_LINKINFO: true, unix.IFLA_AF_SPEC: true,
}

// linkNames names the link attributes the snapshot renders readably.
var linkNames = map[uint16]string{
	unix.IFLA_MTU: "mtu", unix.IFLA_MIN_MTU: "minmtu", unix.IFLA_MAX_MTU: "maxmtu",
	unix.IFLA_GROUP: "group", unix.IFLA_PROMISCUITY: "promiscuity", unix.IFLA_ALLMULTI: "allmulti",
	unix.IFLA_LINK_NETNSID: "link-netnsid",
}

// linkInfoSkip are the kind-specific attributes that are timers or
// counters, by kind: a bridge's and its ports' timers, a bond's 802.3ad
// partner state and its ports' failure counts and LACP states.
var linkInfoSkip = map[string]map[uint16]bool{
	"bridge":       {16: true, 17: true, 18: true, 19: true, 40: true}, // IFLA_BR_*_TIMER, IFLA_BR_PAD
	"bridge-slave": {21: true, 22: true, 23: true, 24: true},           // IFLA_BRPORT_*_TIMER, IFLA_BRPORT_PAD
	"bond":         {23: true},                                         // IFLA_BOND_AD_INFO
	"bond-slave":   {3: true, 7: true, 8: true},                        // IFLA_BOND_SLAVE_LINK_FAILURE_COUNT, AD_*_OPER_PORT_STATE
}

// link renders one RTM_NEWLINK message as
// "link: NAME[@NONE]: index N type T flags F attr..." (@NONE for a
// device linked to nothing, as ip shows the fallback tunnels).
func (w *snapWriter) link(m []byte) {
	ifi := nl.DeserializeIfInfomsg(m)
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
	if err != nil {
		w.fail("parse link", err)
		return
	}
	name := w.name(ifi.Index)
	var b strings.Builder
	for _, a := range attrs {
		if a.Attr.Type == unix.IFLA_LINK && u32(a.Value) == 0 {
			name += "@NONE"
		}
	}
	fmt.Fprintf(&b, "link: %s: index %d type %d flags %#x", name, ifi.Index, ifi.Type, ifi.Flags)
	for _, a := range attrs {
		t := a.Attr.Type
		switch {
		case t == unix.IFLA_LINK:
			if v := u32(a.Value); v != 0 {
				fmt.Fprintf(&b, " link %d", v)
			}
		case t == unix.IFLA_MASTER:
			fmt.Fprintf(&b, " master %s", w.name(int32(u32(a.Value))))
		case t == unix.IFLA_ADDRESS || t == unix.IFLA_BROADCAST || t == unix.IFLA_PERM_ADDRESS:
			fmt.Fprintf(&b, " a%d=%s", t, net.HardwareAddr(a.Value))
		case t == unix.IFLA_OPERSTATE:
			if len(a.Value) > 0 {
				fmt.Fprintf(&b, " state %d", a.Value[0])
			}
		case t == unix.IFLA_QDISC || t == unix.IFLA_IFALIAS:
			fmt.Fprintf(&b, " a%d=%q", t, cstr(a.Value))
		case t == unix.IFLA_LINKINFO:
			w.linkInfo(&b, a.Value)
		case t == unix.IFLA_AF_SPEC:
			linkAfSpec(&b, a.Value)
			w.linkConf(w.name(ifi.Index), a.Value)
		case linkSkip[t]:
		case linkNames[t] != "" && len(a.Value) == 4:
			fmt.Fprintf(&b, " %s %d", linkNames[t], int32(u32(a.Value)))
		default:
			b.WriteString(" " + attrHex("a", a))
		}
	}
	w.lines = append(w.lines, b.String())
}

// linkInfo renders IFLA_LINKINFO: the kind and its data, and the kind of
// the master's port and its data, without their timers and counters.
func (w *snapWriter) linkInfo(b *strings.Builder, v []byte) {
	attrs, err := nl.ParseRouteAttr(v)
	if err != nil {
		b.WriteString(" linkinfo=" + hex.EncodeToString(v))
		return
	}
	var kind, slave string
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_INFO_KIND:
			kind = cstr(a.Value)
		case unix.IFLA_INFO_SLAVE_KIND:
			slave = cstr(a.Value)
		}
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_INFO_KIND:
			fmt.Fprintf(b, " kind %s", kind)
		case unix.IFLA_INFO_SLAVE_KIND:
			fmt.Fprintf(b, " slave %s", slave)
		case unix.IFLA_INFO_DATA:
			nestedHex(b, " data.", a.Value, linkInfoSkip[kind])
		case unix.IFLA_INFO_SLAVE_DATA:
			nestedHex(b, " sdata.", a.Value, linkInfoSkip[slave+"-slave"])
		case unix.IFLA_INFO_XSTATS:
		default:
			b.WriteString(" " + attrHex("info.", a))
		}
	}
}

// nestedHex renders the attributes nested in v but those in skip.
func nestedHex(b *strings.Builder, prefix string, v []byte, skip map[uint16]bool) {
	attrs, err := nl.ParseRouteAttr(v)
	if err != nil {
		b.WriteString(prefix + "=" + hex.EncodeToString(v))
		return
	}
	for _, a := range attrs {
		if !skip[a.Attr.Type] {
			b.WriteString(prefix + attrHex("", a))
		}
	}
}

// linkAfSpec renders IFLA_AF_SPEC without the devconf arrays (the
// sysctls carry them), IPv6's counters and its cache info (timestamps
// and a randomised reachable time).
func linkAfSpec(b *strings.Builder, v []byte) {
	fams, err := nl.ParseRouteAttr(v)
	if err != nil {
		b.WriteString(" afspec=" + hex.EncodeToString(v))
		return
	}
	for _, f := range fams {
		switch f.Attr.Type {
		case unix.AF_INET: // IFLA_INET_CONF only
		case unix.AF_INET6:
			nestedHex(b, " inet6.", f.Value, map[uint16]bool{unix.IFLA_INET6_CONF: true, unix.IFLA_INET6_STATS: true,
				unix.IFLA_INET6_CACHEINFO: true, unix.IFLA_INET6_ICMP6STATS: true})
		default:
			nestedHex(b, fmt.Sprintf(" af%d.", f.Attr.Type), f.Value, nil)
		}
	}
}

func famName(f uint8) string {
	switch f {
	case unix.AF_INET:
		return "inet"
	case unix.AF_INET6:
		return "inet6"
	}
	return "af" + strconv.Itoa(int(f))
}

// addrs renders every address as
// "addr dev NAME FAMILY IP/LEN scope S flags F ... lft forever|dynamic".
func (w *snapWriter) addrs() {
	msgs, err := snapDump(unix.RTM_GETADDR, nl.NewIfAddrmsg(unix.AF_UNSPEC))
	if err != nil {
		w.fail("list addresses", err)
		return
	}
	for _, m := range msgs {
		if len(m) < unix.SizeofIfAddrmsg {
			continue
		}
		ifa := nl.DeserializeIfAddrmsg(m)
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfAddrmsg:])
		if err != nil {
			w.fail("parse address", err)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "addr dev %s %s plen %d scope %d", w.name(int32(ifa.Index)), famName(ifa.Family), ifa.Prefixlen, ifa.Scope)
		flags := uint32(ifa.Flags)
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFA_ADDRESS, unix.IFA_LOCAL, unix.IFA_BROADCAST, unix.IFA_ANYCAST, unix.IFA_MULTICAST:
				fmt.Fprintf(&b, " ifa%d %s", a.Attr.Type, net.IP(a.Value))
			case unix.IFA_LABEL:
				fmt.Fprintf(&b, " label %s", cstr(a.Value))
			case unix.IFA_FLAGS:
				flags = u32(a.Value)
			case unix.IFA_CACHEINFO:
				// Lifetimes count down unless they are forever.
				if len(a.Value) >= 8 && u32(a.Value) == ^uint32(0) && u32(a.Value[4:]) == ^uint32(0) {
					b.WriteString(" lft forever")
				} else {
					b.WriteString(" lft dynamic")
				}
			default:
				b.WriteString(" " + attrHex("ifa", a))
			}
		}
		fmt.Fprintf(&b, " flags %#x", flags)
		w.lines = append(w.lines, b.String())
	}
}

// routeSkip are the route attributes that change on their own: cache
// info (last use, expiry), expiry, multicast counters, padding.
var routeSkip = map[uint16]bool{unix.RTA_CACHEINFO: true, unix.RTA_EXPIRES: true, unix.RTA_MFC_STATS: true, unix.RTA_PAD: true}

// routes renders every route of family fam in every table as
// "route FAMILY table T type T proto P scope S dst D/LEN ... dev NAME ...".
func (w *snapWriter) routes(fam int) {
	hdr := nl.NewRtMsg()
	hdr.Family = uint8(fam)
	hdr.Table = unix.RT_TABLE_UNSPEC
	hdr.Protocol, hdr.Scope, hdr.Type = 0, 0, 0
	msgs, err := snapDump(unix.RTM_GETROUTE, hdr)
	if err != nil {
		w.fail("list "+famName(uint8(fam))+" routes", err)
		return
	}
	for _, m := range msgs {
		if len(m) < unix.SizeofRtMsg {
			continue
		}
		rt := nl.DeserializeRtMsg(m)
		if rt.Flags&unix.RTM_F_CLONED != 0 {
			continue // a cached route, as ip route show leaves out
		}
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofRtMsg:])
		if err != nil {
			w.fail("parse route", err)
			continue
		}
		table := uint32(rt.Table)
		for _, a := range attrs {
			if a.Attr.Type == unix.RTA_TABLE {
				table = u32(a.Value)
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "route %s table %d type %d proto %d scope %d dstlen %d srclen %d tos %d flags %#x",
			famName(rt.Family), table, rt.Type, rt.Protocol, rt.Scope, rt.Dst_len, rt.Src_len, rt.Tos, rt.Flags)
		for _, a := range attrs {
			switch t := a.Attr.Type; {
			case routeSkip[t] || t == unix.RTA_TABLE:
			case t == unix.RTA_DST || t == unix.RTA_SRC || t == unix.RTA_GATEWAY || t == unix.RTA_PREFSRC:
				fmt.Fprintf(&b, " rta%d %s", t, net.IP(a.Value))
			case t == unix.RTA_OIF || t == unix.RTA_IIF:
				fmt.Fprintf(&b, " rta%d dev %s", t, w.name(int32(u32(a.Value))))
			case t == unix.RTA_PRIORITY:
				fmt.Fprintf(&b, " metric %d", u32(a.Value))
			default:
				b.WriteString(" " + attrHex("rta", a))
			}
		}
		w.lines = append(w.lines, b.String())
	}
}

// rules renders every rule of family fam, its header and attributes.
func (w *snapWriter) rules(fam int) {
	hdr := nl.NewRtMsg()
	hdr.Family = uint8(fam)
	hdr.Table, hdr.Protocol, hdr.Scope, hdr.Type = 0, 0, 0, 0
	msgs, err := snapDump(unix.RTM_GETRULE, hdr)
	if err != nil {
		w.fail("list "+famName(uint8(fam))+" rules", err)
		return
	}
	for _, m := range msgs {
		if len(m) < unix.SizeofRtMsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofRtMsg:])
		if err != nil {
			w.fail("parse rule", err)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "rule %s hdr %s", famName(m[0]), hex.EncodeToString(m[1:unix.SizeofRtMsg]))
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.FRA_PAD:
			case unix.FRA_PRIORITY:
				fmt.Fprintf(&b, " pref %d", u32(a.Value))
			case unix.FRA_TABLE:
				fmt.Fprintf(&b, " table %d", u32(a.Value))
			default:
				b.WriteString(" " + attrHex("fra", a))
			}
		}
		w.lines = append(w.lines, b.String())
	}
}

// neighs renders the permanent neighbours (dynamic ones come and go
// with traffic).
func (w *snapWriter) neighs() {
	msgs, err := snapDump(unix.RTM_GETNEIGH, snapRaw(make([]byte, snapNdmsgLen)))
	if err != nil {
		w.fail("list neighbours", err)
		return
	}
	for _, m := range msgs {
		if len(m) < snapNdmsgLen {
			continue
		}
		// struct ndmsg: family, 3 bytes pad, ifindex, state, flags, type.
		family, index := m[0], int32(u32(m[4:]))
		state, flags, typ := binary.NativeEndian.Uint16(m[8:]), m[10], m[11]
		if state&unix.NUD_PERMANENT == 0 {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[snapNdmsgLen:])
		if err != nil {
			w.fail("parse neighbour", err)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "neigh %s dev %s state %#x flags %#x type %d", famName(family), w.name(index), state, flags, typ)
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.NDA_CACHEINFO, unix.NDA_PROBES:
			case unix.NDA_DST:
				fmt.Fprintf(&b, " dst %s", net.IP(a.Value))
			case unix.NDA_LLADDR:
				fmt.Fprintf(&b, " lladdr %s", net.HardwareAddr(a.Value))
			default:
				b.WriteString(" " + attrHex("nda", a))
			}
		}
		w.lines = append(w.lines, b.String())
	}
}

// snapEthtool renders each device's features, rings, coalescing,
// channels and RSS as "ethtool-X DEV name: value" (X the ethtool option
// that shows it); what a driver does not support is left out, as the
// script's 2>/dev/null left it.
func snapEthtool(w *snapWriter, devs []string) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		w.fail("ethtool socket", err)
		return
	}
	defer unix.Close(fd)
	kv := func(opt, dev, prefix string, m map[string]uint32) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			w.add("ethtool-%s %s %s%s: %d", opt, dev, prefix, k, m[k])
		}
	}
	for _, d := range devs {
		if f, err := ethtool.Get(fd, d); err == nil {
			for _, k := range slices.Sorted(maps.Keys(f.Active)) {
				fixed := ""
				if f.Fixed[k] {
					fixed = " [fixed]"
				}
				w.add("ethtool-k %s %s: %s%s", d, k, onOff(f.Active[k]), fixed)
			}
		}
		if cur, mx, err := ethtool.Rings(d); err == nil {
			kv("g", d, "", cur)
			kv("g", d, "max-", mx)
		}
		if cur, err := ethtool.Coalesce(d); err == nil {
			kv("c", d, "", cur)
		}
		if cur, mx, err := ethtool.Channels(d); err == nil {
			kv("l", d, "", cur)
			kv("l", d, "max-", mx)
		}
		if r, err := ethtool.ReadRSS(fd, d); err == nil {
			w.add("ethtool-x %s indir: %v", d, r.Indir)
			w.add("ethtool-x %s key: %s", d, rssKeyText(r.Key))
			w.add("ethtool-x %s hfunc: %s", d, r.Hfunc)
		}
	}
}

// rssKeyText shows an RSS hash key as hex, or as "boot default" when it
// is the start of the kernel's netdev_rss_key: drivers take their default
// key from it, and it is drawn again at every boot, so a rebooted guest
// would otherwise show a changed key that no recipe set.
func rssKeyText(key []byte) string {
	if b, err := os.ReadFile("/proc/sys/net/core/netdev_rss_key"); err == nil && len(key) > 0 {
		boot, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(b)), ":", ""))
		if err == nil && len(boot) >= len(key) && bytes.Equal(boot[:len(key)], key) {
			return "boot default"
		}
	}
	return fmt.Sprintf("%x", key)
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// tcProtoNames names the filter protocols ip and tc name.
var tcProtoNames = map[uint16]string{unix.ETH_P_IP: "ip", unix.ETH_P_IPV6: "ipv6", unix.ETH_P_ALL: "all", unix.ETH_P_ARP: "arp", unix.ETH_P_8021Q: "802.1Q", unix.ETH_P_8021AD: "802.1ad"}

// tc renders the qdiscs, classes and filters of every device as
// "qdisc KIND H: dev D ...", "tc-class dev D class KIND ID ..." and
// "tc-filter PARENT dev D filter protocol P pref N KIND ...", their
// options without counters and timestamps.
func (w *snapWriter) tc(devs []string) {
	index := map[string]int32{}
	for i, n := range w.names {
		index[n] = i
	}
	for _, d := range devs {
		ifindex := index[d]
		qs, err := tcDump(unix.RTM_GETQDISC, ifindex, 0)
		if err != nil {
			w.fail("list qdiscs of "+d, err)
			continue
		}
		var parents []string
		var handles []uint32
		for _, q := range qs {
			p := "parent " + tc.FormatHandle(q.Parent)
			if q.Parent == tc.HandleRoot {
				p = "root"
			}
			w.add("qdisc %s %x: dev %s %s opts %x", q.Kind, q.Handle>>16, d, p, q.Options)
			switch {
			case q.Kind == "clsact":
				parents, handles = append(parents, "ingress", "egress"), append(handles, tc.HandleClsactIngress, tc.HandleClsactEgress)
			case q.Parent == tc.HandleIngress:
				parents, handles = append(parents, "ingress"), append(handles, tc.HandleClsactIngress)
			case q.Handle != 0:
				parents, handles = append(parents, "parent="+tc.FormatHandle(q.Handle)), append(handles, q.Handle)
			}
		}
		cs, err := tcDump(unix.RTM_GETTCLASS, ifindex, 0)
		if err != nil {
			w.fail("list classes of "+d, err)
		}
		for _, c := range cs {
			w.add("tc-class dev %s class %s %s parent %s leaf %x opts %x", d, c.Kind, tc.FormatHandle(c.Handle), tc.FormatHandle(c.Parent), c.Info, c.Options)
			parents, handles = append(parents, "parent="+tc.FormatHandle(c.Handle)), append(handles, c.Handle)
		}
		for i, p := range handles {
			fs, err := tcDump(unix.RTM_GETTFILTER, ifindex, p)
			if err != nil {
				// A qdisc or class that takes no filters (mq and its
				// classes) answers EOPNOTSUPP, as tc filter show finds.
				if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EOPNOTSUPP) && !isNotFound(err) {
					w.fail("list filters of "+d+" at "+parents[i], err)
				}
				continue
			}
			for _, f := range fs {
				proto, ok := tcProtoNames[f.proto()]
				if !ok {
					proto = fmt.Sprintf("%#04x", f.proto())
				}
				var b strings.Builder
				fmt.Fprintf(&b, "tc-filter %s dev %s filter protocol %s pref %d %s handle %x", parents[i], d, proto, f.prio(), f.Kind, f.Handle)
				filterOptions(&b, f)
				w.lines = append(w.lines, b.String())
			}
		}
	}
}

// filterActs are the classifiers' attributes that hold actions, and
// those that count packets, by classifier kind.
var filterActs = map[string]struct{ act, pcnt uint16 }{
	"u32": {nl.TCA_U32_ACT, nl.TCA_U32_PCNT}, "bpf": {nl.TCA_BPF_ACT, 0}, "fw": {nl.TCA_FW_ACT, 0},
	"matchall": {nl.TCA_MATCHALL_ACT, 4}, "flower": {nl.TCA_FLOWER_ACT, 0}, "basic": {3, 5}, "cgroup": {1, 0},
}

// filterOptions renders a filter's options: its actions by kind, index
// and options, without their counters and timestamps (struct tcf_t, the
// only 32-byte attribute of an action's options).
func filterOptions(b *strings.Builder, f tcObject) {
	fa := filterActs[f.Kind]
	for _, a := range f.options {
		t := a.Attr.Type
		switch {
		case fa.pcnt != 0 && t == fa.pcnt:
		case fa.act != 0 && t == fa.act:
			acts, err := nl.ParseRouteAttr(a.Value)
			if err != nil {
				b.WriteString(" " + attrHex("opt", a))
				continue
			}
			for _, act := range acts {
				fmt.Fprintf(b, " act%d", act.Attr.Type)
				parts, err := nl.ParseRouteAttr(act.Value)
				if err != nil {
					b.WriteString("=" + hex.EncodeToString(act.Value))
					continue
				}
				for _, p := range parts {
					switch p.Attr.Type {
					case nl.TCA_ACT_KIND:
						fmt.Fprintf(b, " %s", cstr(p.Value))
					case nl.TCA_ACT_OPTIONS:
						opts, err := nl.ParseRouteAttr(p.Value)
						if err != nil {
							b.WriteString(" aopts=" + hex.EncodeToString(p.Value))
							continue
						}
						for _, o := range opts {
							if len(o.Value) != 32 {
								b.WriteString(" " + attrHex("aopt", o))
							}
						}
					case nl.TCA_ACT_STATS, 5 /* TCA_ACT_PAD */ :
					default:
						b.WriteString(" " + attrHex("act.", p))
					}
				}
			}
		default:
			b.WriteString(" " + attrHex("opt", a))
		}
	}
}

// snapQueues renders each queue's RPS or XPS CPUs as grep shows them:
// "/sys/class/net/DEV/queues/Q/rps_cpus:MASK". The host's thread sees
// its namespace's sysfs.
func snapQueues(w *snapWriter, devs []string) {
	buf := make([]byte, 4096)
	for _, d := range devs {
		dir := "/sys/class/net/" + d + "/queues/"
		qs, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, q := range qs {
			f := "rps_cpus"
			if strings.HasPrefix(q.Name(), "tx-") {
				f = "xps_cpus"
			}
			snapFile(w, dir+q.Name()+"/"+f, buf)
		}
	}
}

// snapFile renders the non-empty lines of a file as grep -s . does,
// "PATH:LINE"; a file that cannot be read is left out, as grep -s leaves
// it.
func snapFile(w *snapWriter, path string, buf []byte) {
	snapFileAt(w, unix.AT_FDCWD, path, path, buf)
}

// snapFileAt is snapFile of name in directory dirfd, shown as path: one
// lookup of the name rather than of every directory of the path.
func snapFileAt(w *snapWriter, dirfd int, name, path string, buf []byte) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	// A sysctl or sysfs file gives its whole value to one read that has
	// room for it, and the kernel zeroes a buffer as large as the read
	// asks for: a small read, and no second read for the end of a value
	// that did not fill it, halve the cost of a snapshot.
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err != nil || m <= 0 {
			break
		}
		n += m
		if n < len(buf) {
			break
		}
	}
	unix.Close(fd)
	for l := range strings.SplitSeq(string(buf[:n]), "\n") {
		if l != "" {
			w.lines = append(w.lines, path+":"+l)
		}
	}
}

// snapSysctlSkip says which sysctls are left out: those that change on
// their own or are secrets, and those that list what modules are loaded.
func snapSysctlSkip(name string) bool {
	// netdev_rss_key is read-only and drawn at random at every boot: a
	// guest rebooted by its recipe (TestReboot) shows a new one.
	return name == "stable_secret" || name == "tcp_fastopen_key" || name == "nf_conntrack_count" || name == "netdev_rss_key" || strings.Contains(name, "available_")
}

// snapSysctls renders every readable sysctl under /proc/sys/net, each
// line of its value as "PATH:LINE". /proc/sys/net shows the namespace of
// the thread that opens it: the host's. With w.sysTmpl set, the
// namespace-wide files are not read but taken from it (snapfresh.go);
// with w.sysOut set, what is read of them is recorded there.
func snapSysctls(w *snapWriter) {
	buf := make([]byte, 4096)
	// devDir marks a device's directory (conf/eth0) in a devs directory.
	var walk func(dir string, wide, devDir bool)
	walk = func(dir string, wide, devDir bool) {
		if wide && w.sysTmpl != nil {
			if d := w.sysTmpl.dirs[dir]; d != nil && !d.devs {
				for _, e := range d.entries {
					if e.dir {
						walk(dir+"/"+e.name, true, false)
					} else {
						w.lines = append(w.lines, e.lines...)
					}
				}
				return
			}
		}
		ents, dirfd, done := snapListDir(w, dir, devDir)
		defer done()
		if ents == nil {
			return
		}
		devs := snapDevDirs(w, ents)
		var rec *snapSysDir
		if wide && w.sysOut != nil {
			rec = &snapSysDir{devs: devs}
			w.sysOut.dirs[dir] = rec
		}
		if devDir && w.sysOut != nil {
			w.sysOut.noteDevDir(dir, ents)
		}
		for _, e := range ents {
			p := dir + "/" + e.name
			switch {
			case e.dir:
				if rec != nil {
					rec.entries = append(rec.entries, snapSysEntry{name: e.name, dir: true})
				}
				ad := e.name == "all" || e.name == "default"
				walk(p, wide && (!devs || ad), devs && !ad)
			case snapSysctlSkip(e.name) || w.covered[dir][e.name]:
			case dirfd < 0:
				snapFile(w, p, buf)
			default:
				n := len(w.lines)
				snapFileAt(w, dirfd, e.name, p, buf)
				if rec != nil {
					lines := slices.Clone(w.lines[n:])
					rec.entries = append(rec.entries, snapSysEntry{name: e.name, lines: lines})
					w.sysOut.lines = append(w.sysOut.lines, lines...)
				}
			}
		}
	}
	walk("/proc/sys/net", true, false)
}

// snapIRQs reads every interrupt's CPU list, the machine's, once for all
// the hosts of a call.
func snapIRQs() ([]string, error) {
	ents, err := os.ReadDir("/proc/irq")
	if err != nil {
		return nil, fmt.Errorf("list interrupts: %w", err)
	}
	w := &snapWriter{}
	buf := make([]byte, 4096)
	var irqs []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			irqs = append(irqs, n)
		}
	}
	sort.Ints(irqs)
	for _, n := range irqs {
		snapFile(w, "/proc/irq/"+strconv.Itoa(n)+"/smp_affinity_list", buf)
	}
	return w.lines, nil
}
