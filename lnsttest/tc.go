package lnsttest

import (
	"context"
	"fmt"
	"testing"

	"github.com/lnst-go/lnst/devices/tc"
	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// Traffic control on a device: qdiscs, classes and filters as the specs
// of package devices/tc. Each change is undone when the test ends: the
// qdisc the device had there before comes back, classes and filters added
// go, deleted ones come back. Kinds the kernel may lack are named for
// Kernel ("netem", "cls_flower", "act_gact").

// AddQdisc adds a qdisc to the device; it fails when one (other than the
// kernel's default) is already at its parent.
func (d *Device) AddQdisc(t testing.TB, q tc.Qdisc) {
	t.Helper()
	d.putQdisc(t, q, false)
}

// ReplaceQdisc puts a qdisc in place of the one at its parent (or adds
// it); at cleanup the one that was there comes back.
func (d *Device) ReplaceQdisc(t testing.TB, q tc.Qdisc) {
	t.Helper()
	d.putQdisc(t, q, true)
}

// tcChange makes a traffic control change by call, which is given the
// request's context and the test's group, and has it undone at cleanup;
// what names the change in the failure and the undo.
func (d *Device) tcChange(t testing.TB, what string, call func(ctx context.Context, group string) (*pb.ChangeReply, error)) {
	t.Helper()
	st := d.host.s.state(t)
	r, err := call(rpcCtx(t), st.group)
	if err != nil {
		st.use(d.host.client)
		t.Fatalf("%s: %s: %v", d.host.name, what, err)
	}
	st.undoAt(t, d.host.client, what, r.Seq)
}

// tcSpec fails t unless spec is valid and encodes it by marshal for the
// agent; what names the change in the failure.
func tcSpec[T interface{ Validate() error }](t testing.TB, d *Device, what string, spec T, marshal func(T) (string, []byte, error)) (kind string, data []byte) {
	t.Helper()
	err := spec.Validate()
	if err == nil {
		kind, data, err = marshal(spec)
	}
	if err != nil {
		t.Fatalf("%s: %s: %v", d.host.name, what, err)
	}
	return kind, data
}

func (d *Device) putQdisc(t testing.TB, q tc.Qdisc, replace bool) {
	t.Helper()
	verb, call := "add", d.host.client.TcAddQdisc
	if replace {
		verb, call = "replace", d.host.client.TcReplaceQdisc
	}
	if q == nil {
		t.Fatalf("%s: %s qdisc on %s: nil spec", d.host.name, verb, d.name)
	}
	kind, data := tcSpec(t, d, fmt.Sprintf("%s qdisc on %s", verb, d.name), q, tc.MarshalQdisc)
	parent, handle := q.Place()
	what := fmt.Sprintf("%s qdisc %s %s at %s on %s", verb, kind, handle, parent, d.name)
	d.tcChange(t, what, func(ctx context.Context, group string) (*pb.ChangeReply, error) {
		return call(ctx, &pb.TcQdiscRequest{Host: d.host.id, Group: group, Dev: d.name, Kind: kind, Spec: data})
	})
	d.host.s.state(t).logger().Debug(what, "host", d.host.name)
}

// DelQdisc deletes the qdisc at parent ("root", "ingress" for an ingress
// or clsact qdisc, a class "1:10"); it comes back, without its classes
// and filters, at cleanup.
func (d *Device) DelQdisc(t testing.TB, parent string) {
	t.Helper()
	d.tcChange(t, fmt.Sprintf("delete qdisc at %s on %s", parent, d.name), func(ctx context.Context, group string) (*pb.ChangeReply, error) {
		return d.host.client.TcDelQdisc(ctx, &pb.TcQdiscRequest{Host: d.host.id, Group: group, Dev: d.name, Parent: parent})
	})
}

// AddClass adds a class to a classful qdisc of the device.
func (d *Device) AddClass(t testing.TB, c tc.Class) {
	t.Helper()
	if c == nil {
		t.Fatalf("%s: add class on %s: nil spec", d.host.name, d.name)
	}
	_, id := c.IDs()
	what := fmt.Sprintf("add %s class %s on %s", c.Kind(), id, d.name)
	kind, data := tcSpec(t, d, what, c, tc.MarshalClass)
	d.tcChange(t, what, func(ctx context.Context, group string) (*pb.ChangeReply, error) {
		return d.host.client.TcAddClass(ctx, &pb.TcClassRequest{Host: d.host.id, Group: group, Dev: d.name, Kind: kind, Spec: data})
	})
}

// DelClass deletes a class ("1:10"); it comes back at cleanup.
func (d *Device) DelClass(t testing.TB, classID string) {
	t.Helper()
	d.tcChange(t, fmt.Sprintf("delete class %s on %s", classID, d.name), func(ctx context.Context, group string) (*pb.ChangeReply, error) {
		return d.host.client.TcDelClass(ctx, &pb.TcClassRequest{Host: d.host.id, Group: group, Dev: d.name, ClassId: classID})
	})
}

// AddFilter adds a filter to the device. Each filter of a test needs its
// own Prio on its parent.
func (d *Device) AddFilter(t testing.TB, f tc.Filter) {
	t.Helper()
	if f == nil {
		t.Fatalf("%s: add filter on %s: nil spec", d.host.name, d.name)
	}
	a := f.Attrs()
	what := fmt.Sprintf("add %s filter prio %d at %s on %s", f.Kind(), a.Prio, a.Parent, d.name)
	kind, data := tcSpec(t, d, what, f, tc.MarshalFilter)
	d.tcChange(t, what, func(ctx context.Context, group string) (*pb.ChangeReply, error) {
		return d.host.client.TcAddFilter(ctx, &pb.TcFilterRequest{Host: d.host.id, Group: group, Dev: d.name, Kind: kind, Spec: data})
	})
}

// DelFilter deletes the filters of priority prio and protocol ("ip", ""
// for all) at parent; they come back at cleanup.
func (d *Device) DelFilter(t testing.TB, parent, protocol string, prio int) {
	t.Helper()
	d.tcChange(t, fmt.Sprintf("delete filters prio %d at %s on %s", prio, parent, d.name), func(ctx context.Context, group string) (*pb.ChangeReply, error) {
		return d.host.client.TcDelFilter(ctx, &pb.TcFilterRequest{Host: d.host.id, Group: group, Dev: d.name,
			Parent: parent, Protocol: protocol, Prio: uint32(prio)})
	})
}

func (d *Device) tcList(t testing.TB) *pb.TcListReply {
	t.Helper()
	r, err := d.host.client.TcList(rpcCtx(t), &pb.TcListRequest{Host: d.host.id, Dev: d.name})
	if err != nil {
		t.Fatalf("%s: read traffic control of %s: %v", d.host.name, d.name, err)
	}
	return r
}

func tcStats(s *pb.TcStats) tc.Stats {
	return tc.Stats{Bytes: s.GetBytes(), Packets: s.GetPackets(), Drops: s.GetDrops(), Overlimits: s.GetOverlimits(),
		Requeues: s.GetRequeues(), Backlog: s.GetBacklog(), Qlen: s.GetQlen()}
}

// Qdiscs reads the device's qdiscs with their counters.
func (d *Device) Qdiscs(t testing.TB) []tc.QdiscInfo {
	t.Helper()
	var out []tc.QdiscInfo
	for _, q := range d.tcList(t).Qdiscs {
		out = append(out, tc.QdiscInfo{Dev: d.name, Kind: q.Kind, Parent: q.Parent, Handle: q.Handle, Stats: tcStats(q.Stats)})
	}
	return out
}

// Classes reads the device's classes with their counters.
func (d *Device) Classes(t testing.TB) []tc.ClassInfo {
	t.Helper()
	var out []tc.ClassInfo
	for _, c := range d.tcList(t).Classes {
		out = append(out, tc.ClassInfo{Dev: d.name, Kind: c.Kind, Parent: c.Parent, ClassID: c.ClassId, Leaf: c.Leaf,
			Rate: tc.Rate(c.Rate), Ceil: tc.Rate(c.Ceil), Stats: tcStats(c.Stats)})
	}
	return out
}

// Filters reads the device's filters with their actions' counters.
func (d *Device) Filters(t testing.TB) []tc.FilterInfo {
	t.Helper()
	var out []tc.FilterInfo
	for _, f := range d.tcList(t).Filters {
		fi := tc.FilterInfo{Dev: d.name, Kind: f.Kind, Parent: f.Parent, Protocol: protocolName(uint16(f.Protocol)), Prio: int(f.Prio),
			Handle: f.Handle, ClassID: f.ClassId,
			SkipHw: f.ClsFlags&tc.ClsFlagSkipHw != 0, SkipSw: f.ClsFlags&tc.ClsFlagSkipSw != 0,
			InHw: f.ClsFlags&tc.ClsFlagInHw != 0, NotInHw: f.ClsFlags&tc.ClsFlagNotInHw != 0, InHwCount: int(f.InHwCount)}
		for _, a := range f.Actions {
			fi.Actions = append(fi.Actions, tc.ActionInfo{Kind: a.Kind, Stats: tcStats(a.Stats), HwStats: tcStats(a.HwStats),
				InHwCount: int(a.InHwCount), UsedHwStats: usedHwStats(a.UsedHwStats)})
		}
		out = append(out, fi)
	}
	return out
}

// usedHwStats names TCA_ACT_USED_HW_STATS's bits as tc.ActionInfo does.
func usedHwStats(bits uint32) string {
	switch bits & 3 {
	case 1:
		return "immediate"
	case 2:
		return "delayed"
	case 3:
		return "immediate,delayed"
	}
	return ""
}

// protocolName names an EtherType as devices/tc's Protocols do, or in hex.
func protocolName(p uint16) string {
	for name, n := range tc.Protocols {
		if n == p {
			return name
		}
	}
	return fmt.Sprintf("%#04x", p)
}
