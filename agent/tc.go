package agent

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/lnst-go/lnst/agent/internal/nltc"
	"github.com/lnst-go/lnst/devices/tc"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Traffic control. A change's undo carries the kernel's own dump of what
// it takes back (tcObject: kind, handle, parent and the options attribute
// as dumped), so that a qdisc of any kind, also one package devices/tc
// does not model, comes back as it was; a qdisc's classes and filters do
// not come back with it. Qdiscs the kernel made by itself (a device's
// default, a class's default leaf) come back by deleting what took their
// place.

// The undo operations of traffic control; the objects are in undo.Tc.
const (
	opTcDelQdisc  = "tc-del-qdisc"
	opTcPutQdisc  = "tc-put-qdisc"
	opTcDelClass  = "tc-del-class"
	opTcPutClass  = "tc-put-class"
	opTcDelFilter = "tc-del-filter"
	opTcPutFilter = "tc-put-filter"
)

// tcUndoString describes a traffic control undo, "" for other ops.
func tcUndoString(u undo) string {
	what := map[string]string{
		opTcDelQdisc: "delete qdisc", opTcPutQdisc: "put qdisc back",
		opTcDelClass: "delete class", opTcPutClass: "put class back",
		opTcDelFilter: "delete filters", opTcPutFilter: "put filters back",
	}[u.Op]
	if what == "" {
		return ""
	}
	var objs []string
	for _, o := range u.Tc {
		objs = append(objs, fmt.Sprintf("%s %s parent %s", o.Kind, tc.FormatHandle(o.Handle), tc.FormatHandle(o.Parent)))
	}
	return fmt.Sprintf("%s %v on %s on %s", what, objs, u.Link, hostLabel(u.Host))
}

// tcLink finds dev on h for a traffic control call.
func (h *host) tcLink(dev string) (int32, error) {
	l, err := h.link(dev)
	if err != nil {
		return 0, err
	}
	return int32(l.Attrs().Index), nil
}

// qdiscAt returns the qdisc at parent on ifindex, nil if none. Call on
// the host's thread.
func qdiscAt(ifindex int32, parent uint32) (*tcObject, error) {
	qs, err := tcDump(unix.RTM_GETQDISC, ifindex, 0)
	if err != nil {
		return nil, fmt.Errorf("list qdiscs: %w", err)
	}
	for i := range qs {
		if qs[i].Parent == parent {
			return &qs[i], nil
		}
	}
	return nil, nil
}

// tcRequest is what the traffic control change requests share.
type tcRequest interface {
	GetHost() string
	GetGroup() string
	GetDev() string
}

// tcChange makes a traffic control change on req's device and journals
// its undo in req's group. change runs with the host's lock held and is
// given the device's index; the undo it returns is about req's device
// and host.
func (s *Server) tcChange(req tcRequest, change func(h *host, ifindex int32) (undo, error)) (*pb.ChangeReply, error) {
	h, err := s.host(req.GetHost())
	if err != nil {
		return nil, err
	}
	u, err := h.tcChange(req.GetDev(), func(ifindex int32) (undo, error) { return change(h, ifindex) })
	u.Host = req.GetHost()
	return s.change(req.GetGroup(), u, err)
}

// tcChange runs change with h's lock held and dev's index; the undo it
// returns is about dev.
func (h *host) tcChange(dev string, change func(ifindex int32) (undo, error)) (undo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ifindex, err := h.tcLink(dev)
	if err != nil {
		return undo{}, err
	}
	u, err := change(ifindex)
	if err != nil {
		return undo{}, err
	}
	u.Link = dev
	return u, nil
}

// tcDelete deletes what (as its error names it) on dev, as find picks it
// from the kernel's dumps on the host's thread: find returns the objects
// as dumped, which the undo (op) puts back, and the object the delete
// message of delType names.
func (h *host) tcDelete(dev string, ifindex int32, what string, delType int, op string, find func() (put []tcObject, del tcObject, err error)) (undo, error) {
	u := undo{Op: op}
	err := h.do(func() error {
		put, del, err := find()
		if err != nil {
			return err
		}
		u.Tc = put
		return tcExec(tcDelMsg(delType, ifindex, del))
	})
	if err != nil {
		return undo{}, fmt.Errorf("delete %s on %q on %s: %w", what, dev, h.label(), err)
	}
	return u, nil
}

// TcAddQdisc adds a qdisc; its undo deletes it (the kernel's default
// comes back).
func (s *Server) TcAddQdisc(_ context.Context, req *pb.TcQdiscRequest) (*pb.ChangeReply, error) {
	return s.putQdisc(req, false)
}

// TcReplaceQdisc puts a qdisc in place of the one at its parent; its
// undo puts that one back.
func (s *Server) TcReplaceQdisc(_ context.Context, req *pb.TcQdiscRequest) (*pb.ChangeReply, error) {
	return s.putQdisc(req, true)
}

func (s *Server) putQdisc(req *pb.TcQdiscRequest, replace bool) (*pb.ChangeReply, error) {
	spec, err := tc.UnmarshalQdisc(req.Kind, req.Spec)
	if err != nil {
		return nil, invalid(err)
	}
	return s.tcChange(req, func(h *host, ifindex int32) (undo, error) {
		return h.putQdisc(req.Dev, ifindex, spec, replace)
	})
}

func (h *host) putQdisc(dev string, ifindex int32, spec tc.Qdisc, replace bool) (undo, error) {
	q, err := nltc.Qdisc(spec, int(ifindex))
	if err != nil {
		return undo{}, badArg(err)
	}
	verb := "add"
	if replace {
		verb = "replace"
	}
	parent := q.Attrs().Parent
	var u undo
	qlen := h.txQLen(dev)
	err = h.do(func() error {
		prev, err := qdiscAt(ifindex, parent)
		if err != nil {
			return err
		}
		if replace {
			if prev != nil && !kernelQdisc(*prev) && prev.Handle == q.Attrs().Handle && prev.Kind != q.Type() {
				// The kernel changes a qdisc of the same handle in
				// place, and refuses another kind: it goes first.
				if err := tcExec(tcDelMsg(unix.RTM_DELQDISC, ifindex, tcObject{Parent: prev.Parent, Handle: prev.Handle})); err != nil {
					return fmt.Errorf("delete the %s qdisc %s it replaces: %w", prev.Kind, tc.FormatHandle(prev.Handle), err)
				}
			}
			err = h.nl.QdiscReplace(q)
		} else {
			err = h.nl.QdiscAdd(q)
		}
		if err != nil {
			return err
		}
		now, err := qdiscAt(ifindex, parent)
		if err != nil || now == nil {
			return fmt.Errorf("find it after it was made: %v", err)
		}
		if prev == nil || kernelQdisc(*prev) {
			u.Op, u.Tc = opTcDelQdisc, []tcObject{{Parent: parent, Handle: now.Handle, Kind: now.Kind}}
		} else {
			u.Op, u.Tc = opTcPutQdisc, []tcObject{*prev}
		}
		return nil
	})
	if err != nil {
		return undo{}, fmt.Errorf("%s qdisc %s at %s on %q on %s: %w", verb, spec.Kind(), tc.FormatHandle(parent), dev, h.label(), err)
	}
	if now := h.txQLen(dev); qlen != nil && now != nil && *now != *qlen {
		u.TxQLen = qlen
	}
	return u, nil
}

// txQLen reads dev's transmit queue length; nil if it cannot.
func (h *host) txQLen(dev string) *int {
	l, err := h.nl.LinkByName(dev)
	if err != nil {
		return nil
	}
	n := l.Attrs().TxQLen
	return &n
}

// TcDelQdisc deletes the qdisc at req.Parent; its undo puts it back
// (without the classes and filters it had).
func (s *Server) TcDelQdisc(_ context.Context, req *pb.TcQdiscRequest) (*pb.ChangeReply, error) {
	parent, err := tc.ParseHandle(req.Parent)
	if err != nil {
		return nil, invalid(fmt.Errorf("delete qdisc on %q: parent: %w", req.Dev, err))
	}
	return s.tcChange(req, func(h *host, ifindex int32) (undo, error) {
		return h.delQdisc(req.Dev, ifindex, parent)
	})
}

func (h *host) delQdisc(dev string, ifindex int32, parent uint32) (undo, error) {
	return h.tcDelete(dev, ifindex, fmt.Sprintf("qdisc at %s", tc.FormatHandle(parent)), unix.RTM_DELQDISC, opTcPutQdisc, func() ([]tcObject, tcObject, error) {
		prev, err := qdiscAt(ifindex, parent)
		if err != nil {
			return nil, tcObject{}, err
		}
		if prev == nil || kernelQdisc(*prev) {
			return nil, tcObject{}, badArg(errors.New("there is no qdisc there but the kernel's default"))
		}
		return []tcObject{*prev}, tcObject{Parent: prev.Parent, Handle: prev.Handle}, nil
	})
}

// TcAddClass adds a class; its undo deletes it.
func (s *Server) TcAddClass(_ context.Context, req *pb.TcClassRequest) (*pb.ChangeReply, error) {
	spec, err := tc.UnmarshalClass(req.Kind, req.Spec)
	if err != nil {
		return nil, invalid(err)
	}
	return s.tcChange(req, func(h *host, ifindex int32) (undo, error) {
		return h.addClass(req.Dev, ifindex, spec)
	})
}

func (h *host) addClass(dev string, ifindex int32, spec tc.Class) (undo, error) {
	c, err := nltc.Class(spec, int(ifindex))
	if err != nil {
		return undo{}, badArg(err)
	}
	if err := h.nl.ClassAdd(c); err != nil {
		_, id := spec.IDs()
		return undo{}, fmt.Errorf("add %s class %s on %q on %s: %w", spec.Kind(), id, dev, h.label(), err)
	}
	a := c.Attrs()
	return undo{Op: opTcDelClass, Tc: []tcObject{{Parent: a.Parent, Handle: a.Handle, Kind: spec.Kind()}}}, nil
}

// TcDelClass deletes a class; its undo puts it back as it was dumped.
func (s *Server) TcDelClass(_ context.Context, req *pb.TcClassRequest) (*pb.ChangeReply, error) {
	id, err := tc.ParseHandle(req.ClassId)
	if err != nil || id&0xffff == 0 {
		return nil, invalid(fmt.Errorf("delete class on %q: class id %q is not a class like \"1:10\"", req.Dev, req.ClassId))
	}
	return s.tcChange(req, func(h *host, ifindex int32) (undo, error) {
		return h.delClass(req.Dev, ifindex, id)
	})
}

func (h *host) delClass(dev string, ifindex int32, id uint32) (undo, error) {
	return h.tcDelete(dev, ifindex, fmt.Sprintf("class %s", tc.FormatHandle(id)), unix.RTM_DELTCLASS, opTcPutClass, func() ([]tcObject, tcObject, error) {
		cs, err := tcDump(unix.RTM_GETTCLASS, ifindex, 0)
		if err != nil {
			return nil, tcObject{}, err
		}
		i := slices.IndexFunc(cs, func(c tcObject) bool { return c.Handle == id })
		if i < 0 {
			return nil, tcObject{}, badArg(errors.New("there is no such class"))
		}
		return []tcObject{cs[i]}, tcObject{Parent: cs[i].Parent, Handle: id}, nil
	})
}

// TcAddFilter adds a filter; its undo deletes the filters of its
// priority and protocol on its parent, so a priority already in use
// there is refused.
func (s *Server) TcAddFilter(_ context.Context, req *pb.TcFilterRequest) (*pb.ChangeReply, error) {
	spec, err := tc.UnmarshalFilter(req.Kind, req.Spec)
	if err != nil {
		return nil, invalid(err)
	}
	return s.tcChange(req, func(h *host, ifindex int32) (undo, error) {
		return h.addFilter(req.Dev, ifindex, spec)
	})
}

func (h *host) addFilter(dev string, ifindex int32, spec tc.Filter) (undo, error) {
	f, err := nltc.Filter(spec, int(ifindex), func(name string) (int, error) {
		l, err := h.nl.LinkByName(name)
		if err != nil {
			return 0, err
		}
		return l.Attrs().Index, nil
	})
	if err != nil {
		return undo{}, badArg(err)
	}
	a := f.Attrs()
	o := tcObject{Parent: a.Parent, Info: filterInfo(a.Protocol, a.Priority), Kind: spec.Kind()}
	err = h.do(func() error {
		fs, err := tcDump(unix.RTM_GETTFILTER, ifindex, a.Parent)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(fs, func(x tcObject) bool { return x.prio() == a.Priority }) {
			return badArg(fmt.Errorf("there are filters of priority %d already; give the filter another Prio", a.Priority))
		}
		if r, ok := f.(*nltc.Raw); ok {
			// A u32 or matchall with skip flags: its options as nltc
			// built them, in this thread's namespace.
			return tcExec(tcPutMsg(unix.RTM_NEWTFILTER, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifindex, tcObject{Parent: a.Parent, Info: o.Info, Kind: r.Kind, Options: r.Options}))
		}
		return h.nl.FilterAdd(f)
	})
	if err != nil {
		return undo{}, fmt.Errorf("add %s filter prio %d at %s on %q on %s: %w", spec.Kind(), a.Priority, spec.Attrs().Parent, dev, h.label(), err)
	}
	return undo{Op: opTcDelFilter, Tc: []tcObject{o}}, nil
}

// tcFilterParent resolves a filter's parent as FilterAttrs does.
func tcFilterParent(s string) (uint32, error) {
	if s == "ingress" {
		return tc.HandleClsactIngress, nil
	}
	return tc.ParseHandle(s)
}

// TcDelFilter deletes the filters of a priority (and protocol) on a
// parent; its undo puts them back as they were dumped.
func (s *Server) TcDelFilter(_ context.Context, req *pb.TcFilterRequest) (*pb.ChangeReply, error) {
	parent, err := tcFilterParent(req.Parent)
	if err != nil {
		return nil, invalid(fmt.Errorf("delete filters on %q: parent: %w", req.Dev, err))
	}
	proto, ok := tc.ProtocolNumber(req.Protocol)
	if !ok || req.Prio < 1 || req.Prio > 0xffff {
		return nil, invalid(fmt.Errorf("delete filters on %q: protocol %q or priority %d is not valid", req.Dev, req.Protocol, req.Prio))
	}
	return s.tcChange(req, func(h *host, ifindex int32) (undo, error) {
		return h.delFilter(req.Dev, ifindex, parent, proto, uint16(req.Prio))
	})
}

func (h *host) delFilter(dev string, ifindex int32, parent uint32, proto, prio uint16) (undo, error) {
	return h.tcDelete(dev, ifindex, fmt.Sprintf("filters prio %d at %s", prio, tc.FormatHandle(parent)), unix.RTM_DELTFILTER, opTcPutFilter, func() ([]tcObject, tcObject, error) {
		fs, err := tcDump(unix.RTM_GETTFILTER, ifindex, parent)
		if err != nil {
			return nil, tcObject{}, err
		}
		var kind string
		var put []tcObject
		for _, f := range fs {
			if f.prio() != prio || f.Info != filterInfo(proto, prio) {
				continue
			}
			kind = f.Kind
			if userFilter(f) {
				put = append(put, filterPutBack(f))
			}
		}
		if kind == "" {
			return nil, tcObject{}, badArg(errors.New("there are no such filters"))
		}
		return put, tcObject{Parent: parent, Info: filterInfo(proto, prio), Kind: kind}, nil
	})
}

// userFilter reports whether a dumped filter is one a filter add made,
// not what the kernel dumps beside them: the head of each priority (no
// handle, no options), dumped first for every classifier kind, and a u32
// hash table (no selector), which the kernel makes with the first key.
func userFilter(f tcObject) bool {
	if f.Handle == 0 && f.Options == nil {
		return false
	}
	return f.Kind != "u32" || hasAttr(f, nlU32Sel)
}

// filterFlagsAttr is each classifier's TCA_*_FLAGS attribute.
var filterFlagsAttr = map[string]uint16{"u32": 11, "flower": nl.TCA_FLOWER_FLAGS, "matchall": nl.TCA_MATCHALL_FLAGS}

// TCA_U32_* attributes.
const (
	nlU32Hash = 2
	nlU32Sel  = 5
	nlU32Pcnt = 9
)

// clsFlagsIn are the classifier flags the kernel takes on input
// (TCA_CLS_FLAGS_SKIP_HW, _SKIP_SW); it dumps more (in hardware or not).
const clsFlagsIn = 1 | 2

// filterPutBack makes a dumped filter one to add again: of its flags
// only those the kernel takes; and of a u32 key, the kernel picks its
// handle and hash table (the table's id of the new filter need not be the
// old one's), and its counters are not options.
func filterPutBack(o tcObject) tcObject {
	flags, hasFlags := filterFlagsAttr[o.Kind]
	var b []byte
	for _, a := range o.options {
		v := a.Value
		switch {
		case o.Kind == "u32" && (a.Attr.Type == nlU32Hash || a.Attr.Type == nlU32Pcnt):
			continue
		case hasFlags && a.Attr.Type == flags && len(v) == 4:
			v = binary.NativeEndian.AppendUint32(nil, binary.NativeEndian.Uint32(v)&clsFlagsIn)
		}
		b = append(b, nl.NewRtAttr(int(a.Attr.Type), v).Serialize()...)
	}
	if o.Kind == "u32" {
		o.Handle = 0
	}
	o.Options = b
	return o
}

func hasAttr(o tcObject, typ uint16) bool {
	return slices.ContainsFunc(o.options, func(a netlinkAttr) bool { return a.Attr.Type == typ })
}

// undoTc applies a traffic control undo. A device gone, or an object
// already gone (to delete), is errNothingToUndo.
func (h *host) undoTc(u undo) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.nl.LinkByName(u.Link)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nothingToUndo("%s has no device %q", h.label(), u.Link)
		}
		return fmt.Errorf("find %q: %w", u.Link, err)
	}
	ifindex := int32(l.Attrs().Index)
	deletes := u.Op == opTcDelQdisc || u.Op == opTcDelClass || u.Op == opTcDelFilter
	err = h.do(func() error {
		for _, o := range u.Tc {
			var err error
			if deletes {
				there, err := tcThere(ifindex, u.Op, o)
				if err != nil {
					return err
				}
				if !there {
					return nothingToUndo("%q on %s has no %s %s any more", u.Link, h.label(), o.Kind, tc.FormatHandle(o.Handle))
				}
			}
			switch u.Op {
			case opTcDelQdisc:
				err = tcExec(tcDelMsg(unix.RTM_DELQDISC, ifindex, tcObject{Parent: o.Parent, Handle: o.Handle}))
			case opTcPutQdisc:
				// What took its place goes first: a replace of the same
				// handle with another kind is refused.
				cur, cerr := qdiscAt(ifindex, o.Parent)
				if cerr != nil {
					return cerr
				}
				if cur != nil && !kernelQdisc(*cur) {
					if err := tcExec(tcDelMsg(unix.RTM_DELQDISC, ifindex, tcObject{Parent: cur.Parent, Handle: cur.Handle})); err != nil {
						return fmt.Errorf("%s: delete the %s qdisc in its place: %w", tcUndoString(u), cur.Kind, err)
					}
				}
				err = tcExec(tcPutMsg(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, ifindex, o))
			case opTcDelClass:
				err = tcExec(tcDelMsg(unix.RTM_DELTCLASS, ifindex, tcObject{Parent: o.Parent, Handle: o.Handle}))
			case opTcPutClass:
				err = tcExec(tcPutMsg(unix.RTM_NEWTCLASS, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, ifindex, o))
			case opTcDelFilter:
				err = tcExec(tcDelMsg(unix.RTM_DELTFILTER, ifindex, o))
			case opTcPutFilter:
				err = tcExec(tcPutMsg(unix.RTM_NEWTFILTER, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifindex, o))
			default:
				return fmt.Errorf("undo %s: not a traffic control undo", u.Op)
			}
			if err != nil && isNotFound(err) && deletes {
				return nothingToUndo("%q on %s has no %s %s any more", u.Link, h.label(), o.Kind, tc.FormatHandle(o.Handle))
			}
			if err != nil {
				return fmt.Errorf("%s: %w", tcUndoString(u), err)
			}
		}
		return nil
	})
	if err == nil && u.TxQLen != nil && l.Attrs().TxQLen != *u.TxQLen {
		if err := h.nl.LinkSetTxQLen(l, *u.TxQLen); err != nil {
			return fmt.Errorf("%s: set the transmit queue length back to %d: %w", tcUndoString(u), *u.TxQLen, err)
		}
	}
	return err
}

// tcThere reports whether the object a delete undo is about is still
// there (the kernel answers a delete of a qdisc that is gone with EINVAL,
// as it does a bad request).
func tcThere(ifindex int32, op string, o tcObject) (bool, error) {
	var objs []tcObject
	var err error
	switch op {
	case opTcDelQdisc:
		objs, err = tcDump(unix.RTM_GETQDISC, ifindex, 0)
	case opTcDelClass:
		objs, err = tcDump(unix.RTM_GETTCLASS, ifindex, 0)
	default:
		objs, err = tcDump(unix.RTM_GETTFILTER, ifindex, o.Parent)
		if err != nil && (isNotFound(err) || errors.Is(err, unix.EINVAL)) {
			return false, nil // its qdisc is gone
		}
	}
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(objs, func(x tcObject) bool {
		if op == opTcDelFilter {
			return x.Info == o.Info && x.Kind == o.Kind
		}
		return x.Handle == o.Handle && x.Parent == o.Parent
	}), nil
}

// TcList reads the qdiscs, classes and filters of a device with their
// counters.
func (s *Server) TcList(_ context.Context, req *pb.TcListRequest) (*pb.TcListReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	ifindex, err := h.tcLink(req.Dev)
	if err != nil {
		return nil, failed(err)
	}
	r := &pb.TcListReply{}
	err = h.do(func() error {
		qs, err := tcDump(unix.RTM_GETQDISC, ifindex, 0)
		if err != nil {
			return fmt.Errorf("list qdiscs: %w", err)
		}
		for _, q := range qs {
			r.Qdiscs = append(r.Qdiscs, &pb.TcQdisc{Kind: q.Kind, Parent: tc.FormatHandle(q.Parent), Handle: fmt.Sprintf("%x:", q.Handle>>16), Stats: pbTcStats(q.stats)})
		}
		cs, err := tcDump(unix.RTM_GETTCLASS, ifindex, 0)
		if err != nil {
			return fmt.Errorf("list classes: %w", err)
		}
		for _, c := range cs {
			pc := &pb.TcClass{Kind: c.Kind, Parent: tc.FormatHandle(c.Parent), ClassId: tc.FormatHandle(c.Handle), Stats: pbTcStats(c.stats)}
			if c.Info != 0 {
				pc.Leaf = tc.FormatHandle(c.Info) // a class's info is its leaf qdisc
			}
			if c.Kind == "htb" {
				rate, ceil := htbRates(c)
				pc.Rate, pc.Ceil = uint64(rate), uint64(ceil)
			}
			r.Classes = append(r.Classes, pc)
		}
		// Filters hang off every qdisc and class; the ingress hook is
		// asked for by its own parent.
		var parents []uint32
		for _, q := range qs {
			switch {
			case q.Kind == "clsact":
				parents = append(parents, tc.HandleClsactIngress, tc.HandleClsactEgress)
			case q.Parent == tc.HandleIngress:
				parents = append(parents, tc.HandleClsactIngress)
			case q.Handle != 0:
				parents = append(parents, q.Handle)
			}
		}
		for _, c := range cs {
			parents = append(parents, c.Handle)
		}
		for _, p := range parents {
			fs, err := tcDump(unix.RTM_GETTFILTER, ifindex, p)
			if err != nil {
				if errors.Is(err, unix.EINVAL) || isNotFound(err) {
					continue // no such hook or block here
				}
				return fmt.Errorf("list filters at %s: %w", tc.FormatHandle(p), err)
			}
			for _, f := range fs {
				if !userFilter(f) {
					continue
				}
				classID, acts := filterActions(f)
				pf := &pb.TcFilter{Kind: f.Kind, Parent: filterParentName(p), Protocol: uint32(f.proto()), Prio: uint32(f.prio()),
					Handle: fmt.Sprintf("%x", f.Handle)}
				if classID != 0 {
					pf.ClassId = tc.FormatHandle(classID)
				}
				for _, a := range acts {
					pf.Actions = append(pf.Actions, &pb.TcAction{Kind: a.Kind, Stats: pbTcStats(a.Stats)})
				}
				pbTcFilterHw(pf, f, acts)
				r.Filters = append(r.Filters, pf)
			}
		}
		return nil
	})
	if err != nil {
		return nil, failed(fmt.Errorf("list traffic control of %q on %s: %w", req.Dev, h.label(), err))
	}
	return r, nil
}

// filterParentName names a filter's parent as devices/tc takes it.
func filterParentName(p uint32) string {
	switch p {
	case tc.HandleClsactIngress:
		return "ingress"
	case tc.HandleClsactEgress:
		return "egress"
	}
	return tc.FormatHandle(p)
}

func pbTcStats(s tc.Stats) *pb.TcStats {
	return &pb.TcStats{Bytes: s.Bytes, Packets: s.Packets, Drops: s.Drops, Overlimits: s.Overlimits,
		Requeues: s.Requeues, Backlog: s.Backlog, Qlen: s.Qlen}
}

// tcSlots are the places of a device's qdiscs that TcSaveQdiscs saves.
var tcSlots = []uint32{tc.HandleRoot, tc.HandleIngress}

// tcState is what TcSaveQdiscs saves: the qdisc at each slot, or none
// (the kernel's default, or no ingress qdisc).
type tcState struct {
	Qdiscs map[uint32]*tcObject
	// TxQLen is the device's transmit queue length, which attaching a
	// qdisc may change (0 becomes 1000).
	TxQLen *int `json:",omitempty"`
}

// TcSaveQdiscs reads the device's root and ingress qdiscs.
func (s *Server) TcSaveQdiscs(_ context.Context, req *pb.TcListRequest) (*pb.TcQdiscState, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	ifindex, err := h.tcLink(req.Dev)
	if err != nil {
		return nil, failed(err)
	}
	st := tcState{Qdiscs: map[uint32]*tcObject{}, TxQLen: h.txQLen(req.Dev)}
	err = h.do(func() error {
		for _, slot := range tcSlots {
			q, err := qdiscAt(ifindex, slot)
			if err != nil {
				return err
			}
			if q != nil && !kernelQdisc(*q) {
				st.Qdiscs[slot] = q
			}
		}
		return nil
	})
	if err != nil {
		return nil, failed(fmt.Errorf("save the qdiscs of %q on %s: %w", req.Dev, h.label(), err))
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &pb.TcQdiscState{State: b}, nil
}

// sameQdisc reports whether a and b are the same qdisc by kind and handle
// (both nil: the kernel's default). Options are not compared: some dump
// counters among them (htb's direct_packets_stat), and putting back a
// classful qdisc drops its classes.
func sameQdisc(a, b *tcObject) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Kind == b.Kind && a.Handle == b.Handle
}

// TcResetQdiscs puts the device's root and ingress qdiscs back as
// TcSaveQdiscs saved them, where they differ.
func (s *Server) TcResetQdiscs(_ context.Context, req *pb.TcResetRequest) (*pb.TcResetReply, error) {
	var want tcState
	if err := json.Unmarshal(req.State, &want); err != nil {
		return nil, invalid(fmt.Errorf("reset the qdiscs of %q: the saved state: %w", req.Dev, err))
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ifindex, err := h.tcLink(req.Dev)
	if err != nil {
		return nil, failed(err)
	}
	r := &pb.TcResetReply{}
	err = h.do(func() error {
		for _, slot := range tcSlots {
			cur, err := qdiscAt(ifindex, slot)
			if err != nil {
				return err
			}
			if cur != nil && kernelQdisc(*cur) {
				cur = nil
			}
			saved := want.Qdiscs[slot]
			if sameQdisc(cur, saved) {
				continue
			}
			name := func(o *tcObject) string {
				if o == nil {
					return "the kernel's default"
				}
				return o.Kind + " " + tc.FormatHandle(o.Handle)
			}
			r.Changed = append(r.Changed, fmt.Sprintf("%s: %s put back in place of %s", tc.FormatHandle(slot), name(saved), name(cur)))
			if cur != nil {
				if err := tcExec(tcDelMsg(unix.RTM_DELQDISC, ifindex, tcObject{Parent: cur.Parent, Handle: cur.Handle})); err != nil {
					return fmt.Errorf("delete %s at %s: %w", name(cur), tc.FormatHandle(slot), err)
				}
			}
			if saved != nil {
				if err := tcExec(tcPutMsg(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifindex, *saved)); err != nil {
					return fmt.Errorf("put %s back at %s: %w", name(saved), tc.FormatHandle(slot), err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, failed(fmt.Errorf("reset the qdiscs of %q on %s: %w", req.Dev, h.label(), err))
	}
	if now := h.txQLen(req.Dev); want.TxQLen != nil && now != nil && *now != *want.TxQLen {
		l, err := h.nl.LinkByName(req.Dev)
		if err == nil {
			err = h.nl.LinkSetTxQLen(l, *want.TxQLen)
		}
		if err != nil {
			return nil, failed(fmt.Errorf("reset the transmit queue length of %q on %s to %d: %w", req.Dev, h.label(), *want.TxQLen, err))
		}
		r.Changed = append(r.Changed, fmt.Sprintf("transmit queue length %d put back in place of %d", *want.TxQLen, *now))
	}
	return r, nil
}
