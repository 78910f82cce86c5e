package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/lnst-go/lnst/devices/tc"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// tcObject is a qdisc, class or filter as the kernel dumps it: enough to
// list it with its counters and to make it again as it was (its kind and
// its options attribute, as dumped) when an undo puts it back.
type tcObject struct {
	Ifindex int32  `json:"-"`
	Parent  uint32 `json:",omitempty"`
	Handle  uint32 `json:",omitempty"`
	// Info of a filter: priority << 16 | protocol (network order).
	Info    uint32 `json:",omitempty"`
	Kind    string `json:",omitempty"`
	Options []byte `json:",omitempty"`
	// stats are not journaled.
	stats   tc.Stats
	options []netlinkAttr
}

type netlinkAttr = syscall.NetlinkRouteAttr

// proto and prio split a filter's Info.
func (o tcObject) proto() uint16 { return htons(uint16(o.Info)) }
func (o tcObject) prio() uint16  { return uint16(o.Info >> 16) }

// filterInfo packs a filter's protocol (host order) and priority as
// tcmsg's info does.
func filterInfo(proto, prio uint16) uint32 {
	return uint32(prio)<<16 | uint32(htons(proto))
}

// tcDump lists the qdiscs (unix.RTM_GETQDISC), classes (RTM_GETTCLASS)
// or filters (RTM_GETTFILTER, under parent) of the device ifindex in the
// calling thread's network namespace.
func tcDump(get int, ifindex int32, parent uint32) ([]tcObject, error) {
	req := nl.NewNetlinkRequest(get, unix.NLM_F_DUMP)
	req.AddData(&nl.TcMsg{Family: unix.AF_UNSPEC, Ifindex: ifindex, Parent: parent})
	msgs, err := req.Execute(unix.NETLINK_ROUTE, uint16(get-2))
	if err != nil {
		return nil, err
	}
	var out []tcObject
	for _, m := range msgs {
		o, err := parseTcMsg(m)
		if err != nil {
			return nil, err
		}
		if o.Ifindex == ifindex {
			out = append(out, o)
		}
	}
	return out, nil
}

// parseTcMsg parses one tcmsg and its attributes.
func parseTcMsg(m []byte) (tcObject, error) {
	if len(m) < nl.SizeofTcMsg {
		return tcObject{}, fmt.Errorf("tc message of %d bytes is shorter than a tcmsg", len(m))
	}
	msg := nl.DeserializeTcMsg(m)
	o := tcObject{Ifindex: msg.Ifindex, Parent: msg.Parent, Handle: msg.Handle, Info: msg.Info}
	attrs, err := nl.ParseRouteAttr(m[nl.SizeofTcMsg:])
	if err != nil {
		return o, fmt.Errorf("parse tc message: %w", err)
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case nl.TCA_KIND:
			o.Kind = string(trimNul(a.Value))
		case nl.TCA_OPTIONS:
			o.Options = append([]byte(nil), a.Value...)
			o.options, _ = nl.ParseRouteAttr(a.Value)
		case nl.TCA_STATS2:
			o.stats = parseStats2(a.Value)
		}
	}
	return o, nil
}

func trimNul(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// parseStats2 reads the basic and queue counters of a TCA_STATS2 (or
// TCA_ACT_STATS) attribute; what is missing or short stays 0.
func parseStats2(b []byte) tc.Stats {
	var s tc.Stats
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return s
	}
	for _, a := range attrs {
		v := a.Value
		switch a.Attr.Type {
		case nl.TCA_STATS_BASIC:
			// struct gnet_stats_basic: u64 bytes, u32 packets.
			if len(v) >= 12 {
				s.Bytes = binary.NativeEndian.Uint64(v[0:8])
				s.Packets = uint64(binary.NativeEndian.Uint32(v[8:12]))
			}
		case nl.TCA_STATS_QUEUE:
			// struct gnet_stats_queue: qlen, backlog, drops, requeues,
			// overlimits, all u32.
			if len(v) >= 20 {
				s.Qlen = uint64(binary.NativeEndian.Uint32(v[0:4]))
				s.Backlog = uint64(binary.NativeEndian.Uint32(v[4:8]))
				s.Drops = uint64(binary.NativeEndian.Uint32(v[8:12]))
				s.Requeues = uint64(binary.NativeEndian.Uint32(v[12:16]))
				s.Overlimits = uint64(binary.NativeEndian.Uint32(v[16:20]))
			}
		case nl.TCA_STATS_PKT64:
			if len(v) >= 8 {
				s.Packets = binary.NativeEndian.Uint64(v[0:8])
			}
		}
	}
	return s
}

// tcPutMsg is the message that makes o again (RTM_NEWQDISC,
// RTM_NEWTCLASS, RTM_NEWTFILTER) on ifindex with flags; it carries o's
// options as they were dumped.
func tcPutMsg(newType int, flags int, ifindex int32, o tcObject) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(newType, flags|unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{Family: unix.AF_UNSPEC, Ifindex: ifindex, Handle: o.Handle, Parent: o.Parent, Info: o.Info})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated(o.Kind)))
	if o.Options != nil {
		req.AddData(nl.NewRtAttr(nl.TCA_OPTIONS, o.Options))
	}
	return req
}

// tcDelMsg is the message that deletes o (RTM_DELQDISC, RTM_DELTCLASS,
// RTM_DELTFILTER) on ifindex: by parent and handle, and a filter by its
// protocol and priority too.
func tcDelMsg(delType int, ifindex int32, o tcObject) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(delType, unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{Family: unix.AF_UNSPEC, Ifindex: ifindex, Handle: o.Handle, Parent: o.Parent, Info: o.Info})
	if o.Kind != "" {
		req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated(o.Kind)))
	}
	return req
}

// tcExec sends req and waits for its acknowledgement.
func tcExec(req *nl.NetlinkRequest) error {
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// kernelQdisc reports whether q is a qdisc the kernel made by itself: a
// device's default (handle 0) or a class's default leaf (a handle the
// kernel picked, major 8000 and above; devices/tc refuses those majors).
// An ingress or clsact qdisc (handle ffff:) is never the kernel's.
func kernelQdisc(q tcObject) bool {
	return q.Parent != tc.HandleIngress && (q.Handle == 0 || q.Handle>>16 >= 0x8000)
}

// isNotFound reports whether err says the object is not there.
func isNotFound(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV)
}

// filterActions returns the kinds and counters of a dumped filter's
// actions, and its class id (every classifier here numbers its classid
// attribute 1).
func filterActions(o tcObject) (classID uint32, acts []tc.ActionInfo) {
	actAttr := map[string]uint16{"u32": nl.TCA_U32_ACT, "flower": nl.TCA_FLOWER_ACT, "matchall": nl.TCA_MATCHALL_ACT}[o.Kind]
	for _, a := range o.options {
		switch {
		case a.Attr.Type == 1 && len(a.Value) >= 4 && o.Kind != "":
			classID = binary.NativeEndian.Uint32(a.Value)
		case actAttr != 0 && a.Attr.Type == actAttr:
			tab, _ := nl.ParseRouteAttr(a.Value)
			for _, t := range tab {
				var ai tc.ActionInfo
				inner, _ := nl.ParseRouteAttr(t.Value)
				for _, x := range inner {
					switch x.Attr.Type {
					case nl.TCA_ACT_KIND:
						ai.Kind = string(trimNul(x.Value))
					case nl.TCA_ACT_STATS:
						ai.Stats = parseStats2(x.Value)
						ai.HwStats = parseBasicHw(x.Value)
					case nlActInHwCount:
						if len(x.Value) >= 4 {
							ai.InHwCount = int(binary.NativeEndian.Uint32(x.Value))
						}
					case nlActUsedHwStats:
						ai.UsedHwStats = hwStatsName(x.Value)
					}
				}
				acts = append(acts, ai)
			}
		}
	}
	return classID, acts
}

// htbRates reads an htb class's rate and ceil from its dumped options.
func htbRates(o tcObject) (rate, ceil tc.Rate) {
	for _, a := range o.options {
		switch a.Attr.Type {
		case nl.TCA_HTB_PARMS:
			// struct tc_htb_opt starts with two tc_ratespec of 12
			// bytes, whose rate (u32, bytes/s) is at offset 8.
			if len(a.Value) >= 24 && rate == 0 {
				rate = tc.Rate(binary.NativeEndian.Uint32(a.Value[8:12])) * 8
				ceil = tc.Rate(binary.NativeEndian.Uint32(a.Value[20:24])) * 8
			}
		case nl.TCA_HTB_RATE64:
			if len(a.Value) >= 8 {
				rate = tc.Rate(binary.NativeEndian.Uint64(a.Value)) * 8
			}
		case nl.TCA_HTB_CEIL64:
			if len(a.Value) >= 8 {
				ceil = tc.Rate(binary.NativeEndian.Uint64(a.Value)) * 8
			}
		}
	}
	return rate, ceil
}
