package agent

import (
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A host's per-device sysctls (net.ipv4.conf.DEV, net.ipv6.conf.DEV,
// net.ipv{4,6}.neigh.DEV) are ~40% of its /proc/sys/net files and of a
// snapshot's cost. The kernel gives the same values by netlink: the link
// dump the snapshot makes anyway carries each device's IPv4 and IPv6
// devconf arrays (IFLA_INET_CONF, IFLA_INET6_CONF: every entry the conf
// sysctls show, IPv6's intervals in ms where the files show seconds), and
// one RTM_GETNEIGHTBL dump carries each device's neighbour parameters. The
// snapshot reads those and, in the devices' directories, leaves out the
// files named as an entry it has (the kernel names a devconf entry, its
// field and its sysctl alike); the others are still read as files: not
// every sysctl has an entry (ra_honor_pio_life has none), and some are
// named otherwise (hop_limit, mtu...). "all" and "default" are read as
// files (no netlink message carries them whole). TestCleanCheckSees's
// "every per-device sysctl" changes each such file of a lab interface,
// one at a time, and requires the snapshot to see each change: it found
// ra_honor_pio_life.

// snapInetConf names IFLA_INET_CONF's entries: entry i is
// IPV4_DEVCONF_ i+1 of <linux/ip.h>, lowercased (most are the sysctl's
// name; later kernels' extra entries are named by their index).
var snapInetConf = []string{
	"forwarding", "mc_forwarding", "proxy_arp", "accept_redirects", "secure_redirects",
	"send_redirects", "shared_media", "rp_filter", "accept_source_route", "bootp_relay",
	"log_martians", "tag", "arpfilter", "medium_id", "noxfrm", "nopolicy", "force_igmp_version",
	"arp_announce", "arp_ignore", "promote_secondaries", "arp_accept", "arp_notify", "accept_local",
	"src_vmark", "proxy_arp_pvlan", "route_localnet", "igmpv2_unsolicited_report_interval",
	"igmpv3_unsolicited_report_interval", "ignore_routes_with_linkdown",
	"drop_unicast_in_l2_multicast", "drop_gratuitous_arp", "bc_forwarding", "arp_evict_nocarrier",
}

// snapInet6Conf names IFLA_INET6_CONF's entries: entry i is DEVCONF_ i of
// <linux/ipv6.h>, lowercased.
var snapInet6Conf = []string{
	"forwarding", "hoplimit", "mtu6", "accept_ra", "accept_redirects", "autoconf", "dad_transmits",
	"rtr_solicits", "rtr_solicit_interval", "rtr_solicit_delay", "use_tempaddr", "temp_valid_lft",
	"temp_prefered_lft", "regen_max_retry", "max_desync_factor", "max_addresses", "force_mld_version",
	"accept_ra_defrtr", "accept_ra_pinfo", "accept_ra_rtr_pref", "rtr_probe_interval",
	"accept_ra_rt_info_max_plen", "proxy_ndp", "optimistic_dad", "accept_source_route",
	"mc_forwarding", "disable_ipv6", "accept_dad", "force_tllao", "ndisc_notify",
	"mldv1_unsolicited_report_interval", "mldv2_unsolicited_report_interval", "suppress_frag_ndisc",
	"accept_ra_from_local", "use_optimistic", "accept_ra_mtu", "stable_secret", "use_oif_addrs_only",
	"accept_ra_min_hop_limit", "ignore_routes_with_linkdown", "drop_unicast_in_l2_multicast",
	"drop_unsolicited_na", "keep_addr_on_down", "rtr_solicit_max_interval", "seg6_enabled",
	"seg6_require_hmac", "enhanced_dad", "addr_gen_mode", "disable_policy",
	"accept_ra_rt_info_min_plen", "ndisc_tclass", "rpl_seg_enabled", "ra_defrtr_metric",
	"ioam6_enabled", "ioam6_id", "ioam6_id_wide", "ndisc_evict_nocarrier", "accept_untracked_na",
	"accept_ra_min_lft",
}

// snapNeighParms names the neighbour parameters (NDTPA_*) as their
// sysctls; the reference count and the randomised reachable time are left
// out.
var snapNeighParms = map[uint16]string{
	4: "base_reachable_time_ms", 5: "retrans_time_ms", 6: "gc_stale_time", 7: "delay_first_probe_time",
	8: "unres_qlen", 9: "app_solicit", 10: "ucast_solicit", 11: "mcast_solicit", 12: "anycast_delay",
	13: "proxy_delay", 14: "proxy_qlen", 15: "locktime", 16: "unres_qlen_bytes", 17: "mcast_resolicit",
	19: "interval_probe_time_ms",
}

// snapFamDir is a family's directory under /proc/sys/net.
var snapFamDir = map[string]string{"inet": "ipv4", "inet6": "ipv6"}

// conf records a device's devconf array as
// "conf FAMILY dev DEV NAME: VALUE" lines.
func (w *snapWriter) conf(fam, dev string, names []string, arr []byte) {
	for i := 0; i+4 <= len(arr); i += 4 {
		name := fmt.Sprintf("devconf%d", i/4)
		if i/4 < len(names) {
			name = names[i/4]
		}
		w.add("conf %s dev %s %s: %d", fam, dev, name, int32(u32(arr[i:])))
	}
	covered := map[string]bool{}
	for i := 0; i < len(arr)/4 && i < len(names); i++ {
		covered[names[i]] = true
	}
	w.covered["/proc/sys/net/"+snapFamDir[fam]+"/conf/"+dev] = covered
}

// linkConf records the devconf arrays of a link's IFLA_AF_SPEC.
func (w *snapWriter) linkConf(dev string, afSpec []byte) {
	fams, err := nl.ParseRouteAttr(afSpec)
	if err != nil {
		return // the link line has it in hex; the files are read
	}
	for _, f := range fams {
		switch f.Attr.Type {
		case unix.AF_INET:
			attrs, _ := nl.ParseRouteAttr(f.Value)
			for _, a := range attrs {
				if a.Attr.Type == unix.IFLA_INET_CONF {
					w.conf("inet", dev, snapInetConf, a.Value)
				}
			}
		case unix.AF_INET6:
			attrs, _ := nl.ParseRouteAttr(f.Value)
			for _, a := range attrs {
				if a.Attr.Type == unix.IFLA_INET6_CONF {
					w.conf("inet6", dev, snapInet6Conf, a.Value)
				}
			}
		}
	}
}

// neighParms records each device's neighbour parameters as
// "neigh-parms FAMILY dev DEV NAME: VALUE" lines.
func (w *snapWriter) neighParms() {
	msgs, err := snapDump(unix.RTM_GETNEIGHTBL, snapRaw(make([]byte, 4))) // struct ndtmsg
	if err != nil {
		w.fail("list neighbour tables", err)
		return
	}
	for _, m := range msgs {
		if len(m) < 4 {
			continue
		}
		fam := famName(m[0])
		attrs, err := nl.ParseRouteAttr(m[4:])
		if err != nil {
			w.fail("parse neighbour table", err)
			continue
		}
		for _, a := range attrs {
			if a.Attr.Type != 6 /* NDTA_PARMS */ {
				continue
			}
			parms, err := nl.ParseRouteAttr(a.Value)
			if err != nil {
				w.fail("parse neighbour parameters", err)
				continue
			}
			var dev string
			for _, p := range parms {
				if p.Attr.Type == 1 /* NDTPA_IFINDEX */ {
					dev = w.name(int32(u32(p.Value)))
				}
			}
			if dev == "" || (fam != "inet" && fam != "inet6") {
				continue // the table's defaults: no file shows them in a namespace
			}
			for _, p := range parms {
				name, ok := snapNeighParms[p.Attr.Type]
				if !ok {
					continue
				}
				var v uint64
				switch len(p.Value) {
				case 4:
					v = uint64(u32(p.Value))
				case 8:
					v = nl.NativeEndian().Uint64(p.Value)
				default:
					name += "-raw"
				}
				w.add("neigh-parms %s dev %s %s: %d", fam, dev, name, v)
			}
			covered := map[string]bool{"base_reachable_time": true, "retrans_time": true} // the _ms values in other units
			for _, p := range parms {
				if name, ok := snapNeighParms[p.Attr.Type]; ok {
					covered[name] = true
				}
			}
			w.covered["/proc/sys/net/"+snapFamDir[fam]+"/neigh/"+dev] = covered
		}
	}
}
