package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ruleEntry is a policy routing rule as requests and undo entries carry
// it.
type ruleEntry struct {
	Src, Dst        string `json:",omitempty"`
	Table, Priority int    `json:",omitempty"`
	Fwmark          uint32 `json:",omitempty"`
	Iif, Oif        string `json:",omitempty"`
	Family          int    `json:",omitempty"`
}

func ruleOf(r *pb.RuleRequest) *ruleEntry {
	return &ruleEntry{Src: r.Src, Dst: r.Dst, Table: int(r.Table), Priority: int(r.Priority), Fwmark: r.Fwmark, Iif: r.Iif, Oif: r.Oif, Family: int(r.Family)}
}

func (r *ruleEntry) String() string {
	if r == nil {
		return "<none>"
	}
	s := ""
	if r.Priority != 0 {
		s += fmt.Sprintf("pref %d ", r.Priority)
	}
	s += "from " + or(r.Src, "all")
	if r.Dst != "" {
		s += " to " + r.Dst
	}
	if r.Fwmark != 0 {
		s += fmt.Sprintf(" fwmark %#x", r.Fwmark)
	}
	if r.Iif != "" {
		s += " iif " + r.Iif
	}
	if r.Oif != "" {
		s += " oif " + r.Oif
	}
	s += fmt.Sprintf(" lookup %d", r.Table)
	if r.Family == 6 {
		s = "-6 " + s
	}
	return s
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// netlinkRule checks r and turns it into a netlink rule.
func (r *ruleEntry) netlinkRule() (*netlink.Rule, error) {
	nr := netlink.NewRule()
	family := 0
	switch r.Family {
	case 0:
	case 4:
		family = netlink.FAMILY_V4
	case 6:
		family = netlink.FAMILY_V6
	default:
		return nil, fmt.Errorf("rule %s: family %d is neither 4 nor 6", r, r.Family)
	}
	for _, p := range []struct {
		what, s string
		to      **net.IPNet
	}{{"source", r.Src, &nr.Src}, {"destination", r.Dst, &nr.Dst}} {
		if p.s == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p.s)
		if err != nil || pfx.Addr().Zone() != "" || pfx.Addr().Is4In6() {
			return nil, fmt.Errorf("rule %s: %s %q is not a prefix (like 198.18.1.0/24 or 2001:db8::/64)", r, p.what, p.s)
		}
		if pfx.Masked() != pfx {
			return nil, fmt.Errorf("rule %s: %s %q has host bits set (did you mean %s?)", r, p.what, p.s, pfx.Masked())
		}
		if family != 0 && familyOf(pfx.Addr()) != family {
			return nil, fmt.Errorf("rule %s: %s %s is not of the rule's address family", r, p.what, p.s)
		}
		family = familyOf(pfx.Addr())
		*p.to = &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), pfx.Addr().BitLen())}
	}
	if r.Table <= 0 {
		return nil, fmt.Errorf("rule %s: table %d: give the table it looks up (1 and up)", r, r.Table)
	}
	if r.Priority < 0 {
		return nil, fmt.Errorf("rule %s: priority %d is negative", r, r.Priority)
	}
	for _, name := range []string{r.Iif, r.Oif} {
		if name == "" {
			continue
		}
		if err := checkLinkName(name); err != nil {
			return nil, fmt.Errorf("rule %s: %w", r, err)
		}
	}
	if family == 0 {
		family = netlink.FAMILY_V4
	}
	nr.Family = family
	nr.Table = r.Table
	if r.Priority > 0 {
		nr.Priority = r.Priority
	}
	nr.Mark = r.Fwmark
	nr.IifName, nr.OifName = r.Iif, r.Oif
	return nr, nil
}

// AddRule adds a policy routing rule.
func (s *Server) AddRule(_ context.Context, req *pb.RuleRequest) (*pb.ChangeReply, error) {
	return s.ruleChange(req, true)
}

// DelRule removes a policy routing rule; its undo adds it back.
func (s *Server) DelRule(_ context.Context, req *pb.RuleRequest) (*pb.ChangeReply, error) {
	return s.ruleChange(req, false)
}

// ruleChange adds (add) or removes the rule of req, and journals the
// undo that does the other.
func (s *Server) ruleChange(req *pb.RuleRequest, add bool) (*pb.ChangeReply, error) {
	r := ruleOf(req)
	nr, err := r.netlinkRule()
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	do, verb, op := h.nl.RuleDel, "remove", opAddRule
	if add {
		do, verb, op = h.nl.RuleAdd, "add", opDelRule
	}
	if err = do(nr); err != nil {
		err = fmt.Errorf("%s rule %s on %s: %w", verb, r, h.label(), err)
	}
	return s.change(req.Group, undo{Op: op, Host: req.Host, Rule: r}, err)
}

// undoRule adds back or removes a rule; one already there (to add) or
// already gone (to remove) is errNothingToUndo. A rule added with no
// priority is removed by its selectors: the first rule that matches them.
func (h *host) undoRule(u undo) error {
	if u.Rule == nil {
		return fmt.Errorf("undo %s: no rule", u.Op)
	}
	nr, err := u.Rule.netlinkRule()
	if err != nil {
		return err
	}
	if u.Op == opAddRule {
		err = h.nl.RuleAdd(nr)
		if errors.Is(err, unix.EEXIST) {
			return nothingToUndo("%s has rule %s already", h.label(), u.Rule)
		}
		return err
	}
	err = h.nl.RuleDel(nr)
	if errors.Is(err, unix.ENOENT) {
		return nothingToUndo("%s has no rule %s", h.label(), u.Rule)
	}
	return err
}
