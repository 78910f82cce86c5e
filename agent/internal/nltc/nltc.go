// Package nltc maps the traffic control specs of package devices/tc to the
// netlink.Qdisc, netlink.Class and netlink.Filter values the agent passes
// to netlink, converting rates to bytes per second, sizes to the kernel's
// transmit times and durations to its units. It lives with the agent so that
// devices/tc, which recipes import, does not link netlink.
package nltc

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lnst-go/lnst/devices/tc"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// Index resolves a device name to its ifindex on the host.
type Index func(name string) (int, error)

// Place resolves a qdisc's parent and handle.
func Place(q tc.Qdisc) (parent, handle uint32, err error) {
	p, h := q.Place()
	if parent, err = tc.ParseHandle(p); err != nil {
		return 0, 0, err
	}
	if h != "" {
		if handle, err = tc.ParseHandle(h); err != nil {
			return 0, 0, err
		}
	}
	return parent, handle, nil
}

// Qdisc validates q and builds the netlink qdisc to add on the device
// with index ifindex.
func Qdisc(q tc.Qdisc, ifindex int) (netlink.Qdisc, error) {
	if q == nil {
		return nil, errors.New("netlink qdisc: nil spec")
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	parent, handle, err := Place(q)
	if err != nil {
		return nil, err
	}
	attrs := netlink.QdiscAttrs{LinkIndex: ifindex, Parent: parent, Handle: handle}
	switch s := q.(type) {
	case tc.Tbf:
		return tbf(s, attrs), nil
	case tc.Htb:
		h := netlink.NewHtb(attrs)
		if s.Default != "" {
			d, _ := tc.ParseHandle(s.Default)
			h.Defcls = d & 0xffff
		}
		if s.R2Q != 0 {
			h.Rate2Quantum = uint32(s.R2Q)
		}
		if s.DirectQlen != nil {
			n := uint32(*s.DirectQlen)
			h.DirectQlen = &n
		}
		return h, nil
	case tc.Netem:
		return netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{
			Latency: usec(s.Delay), Jitter: usec(s.Jitter), DelayCorr: float32(s.DelayCorr),
			Loss: float32(s.Loss), LossCorr: float32(s.LossCorr),
			Duplicate: float32(s.Duplicate), DuplicateCorr: float32(s.DuplicateCorr),
			ReorderProb: float32(s.Reorder), ReorderCorr: float32(s.ReorderCorr), Gap: uint32(s.Gap),
			CorruptProb: float32(s.Corrupt), CorruptCorr: float32(s.CorruptCorr),
			Rate64: s.Rate.BytesPerSecond(), Limit: uint32(s.Limit),
		}), nil
	case tc.Fq:
		f := netlink.NewFq(attrs)
		f.PacketLimit, f.FlowPacketLimit = uint32(s.Limit), uint32(s.FlowLimit)
		f.Quantum, f.InitialQuantum = uint32(s.Quantum), uint32(s.InitialQuantum)
		f.FlowMaxRate = uint32(s.MaxRate.BytesPerSecond())
		if s.NoPacing {
			f.Pacing = 0
		}
		return f, nil
	case tc.FqCodel:
		f := netlink.NewFqCodel(attrs)
		f.Limit, f.Flows, f.Quantum = uint32(s.Limit), uint32(s.Flows), uint32(s.Quantum)
		f.Target, f.Interval, f.CEThreshold = usec(s.Target), usec(s.Interval), usec(s.CEThreshold)
		if s.NoECN {
			f.ECN = 0
		}
		return f, nil
	case tc.Prio:
		p := netlink.NewPrio(attrs)
		if s.Bands != 0 {
			p.Bands = uint8(s.Bands)
		}
		if s.Priomap != nil {
			for i, b := range s.Priomap {
				p.PriorityMap[i] = uint8(b)
			}
		}
		return p, nil
	case tc.Ingress:
		return &netlink.Ingress{QdiscAttrs: attrs}, nil
	case tc.Clsact:
		return &netlink.Clsact{QdiscAttrs: attrs}, nil
	}
	return nil, fmt.Errorf("%s: %T has no netlink mapping", q.Kind(), q)
}

// usec is d in microseconds; Validate keeps it in a uint32.
func usec(d time.Duration) uint32 { return uint32(d / time.Microsecond) }

// tbf maps a Tbf: the kernel takes the bucket as the time it takes to
// send Burst bytes at Rate, and Latency becomes a Limit as tc computes it
// (the bytes sent at Rate in Latency, plus the bucket).
func tbf(s tc.Tbf, attrs netlink.QdiscAttrs) *netlink.Tbf {
	rate := s.Rate.BytesPerSecond()
	limit := uint64(s.Limit)
	if s.Latency != 0 {
		limit = uint64(float64(rate)*s.Latency.Seconds()) + uint64(s.Burst)
		if s.Peakrate != 0 {
			// The peak bucket bounds it too, as in tc.
			pl := uint64(float64(s.Peakrate.BytesPerSecond())*s.Latency.Seconds()) + uint64(s.Minburst)
			limit = min(limit, pl)
		}
	}
	t := &netlink.Tbf{QdiscAttrs: attrs, Rate: rate, Limit: uint32(min(limit, math.MaxUint32)),
		Buffer: netlink.Xmittime(rate, uint32(s.Burst))}
	if s.Peakrate != 0 {
		t.Peakrate = s.Peakrate.BytesPerSecond()
		t.Minburst = netlink.Xmittime(t.Peakrate, uint32(s.Minburst))
	}
	return t
}

// Class validates c and builds the netlink class to add on the device
// with index ifindex.
func Class(c tc.Class, ifindex int) (netlink.Class, error) {
	if c == nil {
		return nil, errors.New("netlink class: nil spec")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch s := c.(type) {
	case tc.HtbClass:
		parent, _ := tc.ParseHandle(s.Parent)
		id, _ := tc.ParseHandle(s.ClassID)
		// NewHtbClass takes bits per second and sizes in bytes, and
		// picks tc's default bursts for zero.
		return netlink.NewHtbClass(netlink.ClassAttrs{LinkIndex: ifindex, Parent: parent, Handle: id},
			netlink.HtbClassAttrs{Rate: uint64(s.Rate), Ceil: uint64(s.Ceil), Buffer: uint32(s.Burst),
				Cbuffer: uint32(s.Cburst), Prio: uint32(s.Prio), Quantum: uint32(s.Quantum)}), nil
	}
	return nil, fmt.Errorf("%s class: %T has no netlink mapping", c.Kind(), c)
}

// FilterAttrs resolves a filter's parent, protocol and priority.
func FilterAttrs(a tc.FilterAttrs, ifindex int) netlink.FilterAttrs {
	var parent uint32
	switch a.Parent {
	case "ingress":
		// An ingress qdisc's filters and a clsact's ingress hook are
		// both ffff:fff2 to the kernel (TC_H_MIN_INGRESS).
		parent = tc.HandleClsactIngress
	default:
		parent, _ = tc.ParseHandle(a.Parent)
	}
	proto, _ := tc.ProtocolNumber(a.Protocol)
	return netlink.FilterAttrs{LinkIndex: ifindex, Parent: parent, Priority: uint16(a.Prio), Protocol: proto}
}

// Filter validates f and builds the netlink filter to add on the device
// with index ifindex; index resolves the devices its actions name. A U32
// or MatchAll with SkipHw or SkipSw comes back as a *Raw (netlink's types
// of those have no flags); a Flower carries them in netlink's Flower.
func Filter(f tc.Filter, ifindex int, index Index) (netlink.Filter, error) {
	if f == nil {
		return nil, errors.New("netlink filter: nil spec")
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	attrs := FilterAttrs(f.Attrs(), ifindex)
	classID := func(s string) uint32 {
		id, _ := tc.ParseHandle(s)
		if s == "" {
			return 0
		}
		return id
	}
	switch s := f.(type) {
	case tc.U32:
		acts, err := Actions(s.Kind(), s.Actions, index)
		if err != nil {
			return nil, err
		}
		u := &netlink.U32{FilterAttrs: attrs, ClassId: classID(s.ClassID), Actions: acts}
		if keys := s.U32Keys(); len(keys) > 0 {
			sel := &netlink.TcU32Sel{Flags: nl.TC_U32_TERMINAL, Nkeys: uint8(len(keys))}
			for _, k := range keys {
				sel.Keys = append(sel.Keys, netlink.TcU32Key{Val: k.Val, Mask: k.Mask, Off: int32(k.Off)})
			}
			u.Sel = sel
		}
		return withFlags(s, u)
	case tc.Flower:
		return flower(s, attrs, classID(s.ClassID), index)
	case tc.MatchAll:
		acts, err := Actions(s.Kind(), s.Actions, index)
		if err != nil {
			return nil, err
		}
		return withFlags(s, &netlink.MatchAll{FilterAttrs: attrs, ClassId: classID(s.ClassID), Actions: acts})
	}
	return nil, fmt.Errorf("%s: %T has no netlink mapping", f.Kind(), f)
}

func flower(s tc.Flower, attrs netlink.FilterAttrs, classID uint32, index Index) (*netlink.Flower, error) {
	acts, err := Actions(s.Kind(), s.Actions, index)
	if err != nil {
		return nil, err
	}
	fl := &netlink.Flower{FilterAttrs: attrs, ClassId: classID, Actions: acts, SkipHw: s.SkipHw, SkipSw: s.SkipSw,
		SrcPort: s.SrcPort, DestPort: s.DstPort, VlanId: uint16(s.VlanID)}
	if s.Protocol == "ip" || s.Protocol == "ipv6" {
		fl.EthType = attrs.Protocol
	}
	if s.IPProto != "" {
		p := nl.IPProto(tc.IPProtos[s.IPProto])
		fl.IPProto = &p
	}
	src, dst := s.Prefixes()
	if src.IsValid() {
		fl.SrcIP, fl.SrcIPMask = src.Addr().AsSlice(), maskOf(src.Bits(), src.Addr().BitLen())
	}
	if dst.IsValid() {
		fl.DestIP, fl.DestIPMask = dst.Addr().AsSlice(), maskOf(dst.Bits(), dst.Addr().BitLen())
	}
	if s.SrcMAC != "" {
		fl.SrcMac, _ = parseMAC(s.SrcMAC)
	}
	if s.DstMAC != "" {
		fl.DestMac, _ = parseMAC(s.DstMAC)
	}
	return fl, nil
}

// verdicts maps tc's verdict names to the kernel's.
var verdicts = map[string]netlink.TcAct{
	"ok": netlink.TC_ACT_OK, "pass": netlink.TC_ACT_OK, "drop": netlink.TC_ACT_SHOT,
	"reclassify": netlink.TC_ACT_RECLASSIFY, "pipe": netlink.TC_ACT_PIPE, "continue": netlink.TC_ACT_UNSPEC,
	"stolen": netlink.TC_ACT_STOLEN,
}

// Actions maps the actions of a filter of kind; index resolves Mirred's
// Dev. The actions must be valid.
func Actions(kind string, as tc.ActionList, index Index) ([]netlink.Action, error) {
	var out []netlink.Action
	for i, a := range as {
		na, err := action(a, index)
		if err != nil {
			return nil, fmt.Errorf("%s Actions[%d]: %w", kind, i, err)
		}
		out = append(out, na)
	}
	return out, nil
}

func action(a tc.Action, index Index) (netlink.Action, error) {
	switch s := a.(type) {
	case tc.Gact:
		g := &netlink.GenericAction{}
		g.Action = verdicts[s.Verdict]
		return g, nil
	case tc.Mirred:
		if index == nil {
			return nil, fmt.Errorf("mirred Dev: no index function to resolve %q", s.Dev)
		}
		i, err := index(s.Dev)
		if err != nil {
			return nil, fmt.Errorf("mirred Dev: resolve %q: %w", s.Dev, err)
		}
		m := netlink.NewMirredAction(i)
		switch {
		case s.Mirror && s.Ingress:
			m.MirredAction = netlink.TCA_INGRESS_MIRROR
		case s.Mirror:
			m.MirredAction = netlink.TCA_EGRESS_MIRROR
		case s.Ingress:
			m.MirredAction = netlink.TCA_INGRESS_REDIR
		}
		if s.Mirror {
			// A mirror lets the packet go on.
			m.Action = netlink.TC_ACT_PIPE
		}
		return m, nil
	case tc.Police:
		p := netlink.NewPoliceAction()
		p.Rate, p.Burst, p.Mtu = uint32(s.Rate.BytesPerSecond()), uint32(s.Burst), uint32(s.MTU)
		p.ExceedAction = netlink.TC_POLICE_SHOT
		if s.Exceed != "" {
			p.ExceedAction = netlink.TcPolAct(verdicts[s.Exceed])
		}
		p.NotExceedAction = netlink.TC_POLICE_OK
		if s.Conform != "" {
			p.NotExceedAction = netlink.TcPolAct(verdicts[s.Conform])
		}
		return p, nil
	case tc.SkbEdit:
		e := netlink.NewSkbEditAction()
		e.Mark, e.Mask = s.Mark, s.Mask
		if s.Priority != "" {
			p, _ := tc.ParseHandle(s.Priority)
			e.Priority = &p
		}
		if s.QueueMapping != nil {
			q := uint16(*s.QueueMapping)
			e.QueueMapping = &q
		}
		return e, nil
	case nil:
		return nil, errors.New("nil action")
	}
	return nil, fmt.Errorf("%s: %T has no netlink mapping", a.Kind(), a)
}
