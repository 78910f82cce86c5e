package agent

import (
	"encoding/binary"
	"strings"

	"github.com/lnst-go/lnst/devices/tc"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink/nl"
)

// Hardware offload attributes of the kernel's uapi (linux/pkt_cls.h,
// linux/gen_stats.h), numbered here so that what they are is plain.
const (
	nlFlowerInHwCount = 86 // TCA_FLOWER_IN_HW_COUNT, u32
	nlActUsedHwStats  = 9  // TCA_ACT_USED_HW_STATS, nla_bitfield32
	nlActInHwCount    = 10 // TCA_ACT_IN_HW_COUNT, u32
	nlStatsBasicHw    = 7  // TCA_STATS_BASIC_HW, gnet_stats_basic
)

// filterHw reads a dumped filter's classifier flags (TCA_CLS_FLAGS_*:
// what it was added with and whether a driver holds it) and, for flower,
// how many drivers do.
func filterHw(o tcObject) (flags, inHwCount uint32) {
	flagsAttr, hasFlags := filterFlagsAttr[o.Kind]
	for _, a := range o.options {
		switch {
		case hasFlags && a.Attr.Type == flagsAttr && len(a.Value) >= 4:
			flags = binary.NativeEndian.Uint32(a.Value)
		case o.Kind == "flower" && a.Attr.Type == nlFlowerInHwCount && len(a.Value) >= 4:
			inHwCount = binary.NativeEndian.Uint32(a.Value)
		}
	}
	return flags, inHwCount
}

// parseBasicHw reads the hardware's part of an action's counters: the
// TCA_STATS_BASIC_HW of a TCA_ACT_STATS (the kernel writes it only once
// the hardware counted something).
func parseBasicHw(b []byte) tc.Stats {
	var s tc.Stats
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return s
	}
	for _, a := range attrs {
		// struct gnet_stats_basic: u64 bytes, u32 packets.
		if a.Attr.Type == nlStatsBasicHw && len(a.Value) >= 12 {
			s.Bytes = binary.NativeEndian.Uint64(a.Value[0:8])
			s.Packets = uint64(binary.NativeEndian.Uint32(a.Value[8:12]))
		}
	}
	return s
}

// hwStatsName names the bits of an nla_bitfield32 (value, selector) of
// TCA_ACT_HW_STATS types: TCA_ACT_HW_STATS_IMMEDIATE 1, _DELAYED 2.
func hwStatsName(v []byte) string {
	if len(v) < 4 {
		return ""
	}
	bits := binary.NativeEndian.Uint32(v)
	var names []string
	if bits&1 != 0 {
		names = append(names, "immediate")
	}
	if bits&2 != 0 {
		names = append(names, "delayed")
	}
	return strings.Join(names, ",")
}

// hwStatsBits is hwStatsName's inverse, for the wire.
func hwStatsBits(s string) uint32 {
	var bits uint32
	for _, n := range strings.Split(s, ",") {
		switch n {
		case "immediate":
			bits |= 1
		case "delayed":
			bits |= 2
		}
	}
	return bits
}

// pbTcFilterHw fills a listed filter's offload fields and its actions'.
func pbTcFilterHw(pf *pb.TcFilter, o tcObject, acts []tc.ActionInfo) {
	pf.ClsFlags, pf.InHwCount = filterHw(o)
	for i, a := range acts {
		if i >= len(pf.Actions) {
			break
		}
		pa := pf.Actions[i]
		pa.HwStats = pbTcStats(a.HwStats)
		pa.InHwCount = uint32(a.InHwCount)
		pa.UsedHwStats = hwStatsBits(a.UsedHwStats)
	}
}
