package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/lnst-go/lnst/devices/nft"
	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// nftables tables, chains and rules go through github.com/google/nftables
// in the host's namespace; each is journaled with its undo: a table's or
// a chain's deletion (with what is in it), or the deletion of the rules
// added, by handle.
//
// A group alters only tables it made: chains and rules go only into a
// table whose making the group's journal holds. The host's own rulesets
// (a pool machine's firewall) and other groups' tables take nothing from
// a recipe, and no undo ever deletes from them.

// Undo operations of nftables changes (undo.Nft says what).
const (
	opNftDelTable = "nft-del-table"
	opNftDelChain = "nft-del-chain"
	opNftDelRules = "nft-del-rules"
)

// nftUndo is the table, chain and rule handles an nftables undo deletes.
type nftUndo struct {
	Family  string   `json:",omitempty"`
	Table   string   `json:",omitempty"`
	Chain   string   `json:",omitempty"`
	Handles []uint64 `json:",omitempty"`
}

func (n *nftUndo) String() string {
	if n == nil {
		return "<none>"
	}
	s := "table " + nft.Table{Family: n.Family, Name: n.Table}.String()
	if n.Chain != "" {
		s += " chain " + n.Chain
	}
	if len(n.Handles) > 0 {
		s += fmt.Sprintf(" (%d rules)", len(n.Handles))
	}
	return s
}

// nftBatch is how many rules go in one netlink batch: each is echoed
// back with its acknowledgement, and the replies of a batch must fit the
// socket's default receive buffer (256 overflowed it: ENOBUFS).
const nftBatch = 64

// nftConn opens an nftables connection in the host's namespace: its
// socket is made on the host's thread, as the snapshot's is, and stays
// in that namespace. (nftables.WithNetNSFd makes each request setns on a
// thread of its own, which the rootless lab's agent may not: EPERM.) The
// caller closes it with CloseLasting.
func (h *host) nftConn() (*nftables.Conn, error) {
	var c *nftables.Conn
	err := h.do(func() error {
		var err error
		c, err = nftables.New(nftables.AsLasting())
		return err
	})
	return c, err
}

// withNft runs f with an nftables connection in the host's namespace
// (nftConn) and closes it.
func (h *host) withNft(f func(c *nftables.Conn) error) error {
	c, err := h.nftConn()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	return f(c)
}

// decodeSpec decodes a request's spec; a field the type lacks (a typo
// in a hand-written spec) is an error, not a match left out.
func decodeSpec(what string, b []byte, v any) error {
	if err := strictJSON(b, v); err != nil {
		return fmt.Errorf("%s spec: %w", what, err)
	}
	return nil
}

// nftOwnsTable reports whether group's journal holds the making of the
// table on host (NftAddTable), not yet undone.
func (s *Server) nftOwnsTable(group, host string, t nft.Table) bool {
	s.journal.mu.Lock()
	defer s.journal.mu.Unlock()
	for _, u := range s.journal.entries {
		if u.Op == opNftDelTable && u.Group == group && u.Host == host && u.Nft != nil &&
			(nft.Table{Family: u.Nft.Family, Name: u.Nft.Table}).String() == t.String() {
			return true
		}
	}
	return false
}

// nftNotOwned is the error of a chain or rules for a table the group did
// not make.
func nftNotOwned(what string, t nft.Table) error {
	return invalid(fmt.Errorf("%s: table %s is not one this test made (NftAddTable): a recipe alters only its own tables", what, t))
}

// NftAddTable adds a table.
func (s *Server) NftAddTable(_ context.Context, req *pb.NftRequest) (*pb.ChangeReply, error) {
	var t nft.Table
	if err := decodeSpec("nft table", req.Spec, &t); err != nil {
		return nil, invalid(err)
	}
	nt, err := t.NetlinkTable()
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	err = h.withNft(func(c *nftables.Conn) error {
		// Create, not add: a table already there is an error, not one
		// to take over (and delete at cleanup).
		c.CreateTable(nt)
		return c.Flush()
	})
	if err != nil {
		err = fmt.Errorf("add nft table %s on %s: %w", t, h.label(), err)
	}
	return s.change(req.Group, undo{Op: opNftDelTable, Host: req.Host, Nft: &nftUndo{Family: t.Family, Table: t.Name}}, err)
}

// NftAddChain adds a chain.
func (s *Server) NftAddChain(_ context.Context, req *pb.NftRequest) (*pb.ChangeReply, error) {
	var ch nft.Chain
	if err := decodeSpec("nft chain", req.Spec, &ch); err != nil {
		return nil, invalid(err)
	}
	nc, err := ch.NetlinkChain()
	if err != nil {
		return nil, invalid(err)
	}
	if !s.nftOwnsTable(req.Group, req.Host, nft.Table{Family: ch.Family, Name: ch.Table}) {
		return nil, nftNotOwned("add nft chain "+ch.String(), nft.Table{Family: ch.Family, Name: ch.Table})
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	h.mu.Lock() // no other chain of that name between the look and the add
	defer h.mu.Unlock()
	err = h.withNft(func(c *nftables.Conn) error {
		if _, lerr := c.ListChain(nc.Table, ch.Name); lerr == nil {
			return fmt.Errorf("it exists already")
		}
		c.AddChain(nc)
		return c.Flush()
	})
	if err != nil {
		err = fmt.Errorf("add nft chain %s on %s: %w", ch, h.label(), err)
	}
	return s.change(req.Group, undo{Op: opNftDelChain, Host: req.Host, Nft: &nftUndo{Family: ch.Family, Table: ch.Table, Chain: ch.Name}}, err)
}

// handles returns the handles of a chain's rules.
func nftHandles(c *nftables.Conn, ch *nftables.Chain) ([]uint64, error) {
	rules, err := c.GetRules(ch.Table, ch)
	if err != nil {
		return nil, err
	}
	l := make([]uint64, len(rules))
	for i, r := range rules {
		l[i] = r.Handle
	}
	return l, nil
}

// NftAddRules appends rules to a chain, in batches; the rules of the
// batches that went in are journaled when a later one fails.
func (s *Server) NftAddRules(_ context.Context, req *pb.NftRequest) (*pb.ChangeReply, error) {
	var spec nft.Rules
	if err := decodeSpec("nft rules", req.Spec, &spec); err != nil {
		return nil, invalid(err)
	}
	nc, err := spec.Chain.NetlinkChain()
	if err != nil {
		return nil, invalid(err)
	}
	if len(spec.Rules) == 0 {
		return nil, invalid(fmt.Errorf("nft rules for chain %s: no rules", spec.Chain))
	}
	for i, r := range spec.Rules {
		if err := r.Validate(spec.Chain.Family); err != nil {
			return nil, invalid(fmt.Errorf("nft rule %d of chain %s: %w", i, spec.Chain, err))
		}
	}
	if t := (nft.Table{Family: spec.Chain.Family, Name: spec.Chain.Table}); !s.nftOwnsTable(req.Group, req.Host, t) {
		return nil, nftNotOwned("add nft rules to "+spec.Chain.String(), t)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	h.mu.Lock() // no other change of the host's rules between the reads
	defer h.mu.Unlock()
	c, err := h.nftConn()
	if err != nil {
		return nil, failed(fmt.Errorf("add nft rules to %s on %s: %w", spec.Chain, h.label(), err))
	}
	defer c.CloseLasting()
	before, err := nftHandles(c, nc)
	if err != nil {
		return nil, failed(fmt.Errorf("add nft rules to %s on %s: read its rules: %w", spec.Chain, h.label(), err))
	}
	u := undo{Op: opNftDelRules, Host: req.Host, Nft: &nftUndo{Family: spec.Chain.Family, Table: spec.Chain.Table, Chain: spec.Chain.Name}}
	var addErr error
	for start := 0; start < len(spec.Rules) && addErr == nil; start += nftBatch {
		for _, r := range spec.Rules[start:min(start+nftBatch, len(spec.Rules))] {
			e, _ := r.Exprs(spec.Chain.Family) // checked above
			c.AddRule(&nftables.Rule{Table: nc.Table, Chain: nc, Exprs: e})
		}
		if err := c.Flush(); err != nil {
			addErr = fmt.Errorf("add nft rules %d.. (%s) to %s on %s: %w", start, spec.Rules[start], spec.Chain, h.label(), err)
		}
	}
	after, err := nftHandles(c, nc)
	if err != nil {
		return nil, failed(errors.Join(addErr, fmt.Errorf("added nft rules to %s on %s but cannot read their handles back, so cannot journal their undo: %w", spec.Chain, h.label(), err)))
	}
	for _, hd := range after {
		if !slices.Contains(before, hd) {
			u.Nft.Handles = append(u.Nft.Handles, hd)
		}
	}
	if addErr != nil {
		if len(u.Nft.Handles) == 0 {
			return nil, failed(addErr)
		}
		return s.partChange(req.Group, u, addErr)
	}
	return s.change(req.Group, u, nil)
}

// NftRules reads back a chain's rules with their counters.
func (s *Server) NftRules(_ context.Context, req *pb.NftRequest) (*pb.NftRulesReply, error) {
	var ch nft.Chain
	if err := decodeSpec("nft chain", req.Spec, &ch); err != nil {
		return nil, invalid(err)
	}
	nc, err := ch.NetlinkChain()
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	c, err := h.nftConn()
	if err != nil {
		return nil, failed(err)
	}
	defer c.CloseLasting()
	rules, err := c.GetRules(nc.Table, nc)
	if err != nil {
		return nil, failed(fmt.Errorf("read nft rules of %s on %s: %w", ch, h.label(), err))
	}
	rep := &pb.NftRulesReply{}
	for _, r := range rules {
		st := nft.StateOf(r)
		rep.Rules = append(rep.Rules, &pb.NftRuleState{Handle: st.Handle, Counter: st.Counter, Packets: st.Packets, Bytes: st.Bytes})
	}
	return rep, nil
}

// undoNft deletes what an nftables undo names; a table or chain already
// gone is errNothingToUndo, and so are rules already gone.
func (h *host) undoNft(u undo) error {
	if u.Nft == nil {
		return fmt.Errorf("undo %s: no nftables object", u.Op)
	}
	c, err := h.nftConn()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := &nftables.Table{Name: u.Nft.Table, Family: mustTable(u.Nft.Family)}
	tables, err := c.ListTablesOfFamily(t.Family)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(tables, func(x *nftables.Table) bool { return x.Name == t.Name }) {
		return nothingToUndo("%s has no nft %s", h.label(), u.Nft)
	}
	switch u.Op {
	case opNftDelTable:
		c.DelTable(t)
		return c.Flush()
	}
	ch, err := c.ListChain(t, u.Nft.Chain)
	if err != nil {
		return nothingToUndo("%s has no nft %s", h.label(), u.Nft)
	}
	if u.Op == opNftDelChain {
		// A chain goes with its rules only once they are gone.
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return err
		}
		for _, r := range rules {
			if err := c.DelRule(r); err != nil {
				return err
			}
		}
		c.DelChain(ch)
		return c.Flush()
	}
	have, err := nftHandles(c, ch)
	if err != nil {
		return err
	}
	n := 0
	for _, hd := range u.Nft.Handles {
		if !slices.Contains(have, hd) {
			continue
		}
		if err := c.DelRule(&nftables.Rule{Table: t, Chain: ch, Handle: hd}); err != nil {
			return err
		}
		if n++; n%nftBatch == 0 {
			if err := c.Flush(); err != nil {
				return err
			}
		}
	}
	if n == 0 {
		return nothingToUndo("%s has none of the rules of nft %s", h.label(), u.Nft)
	}
	return c.Flush()
}

// mustTable is the family of a journaled table (checked when it was made).
func mustTable(f string) nftables.TableFamily {
	t, _ := nft.Table{Family: f, Name: "x"}.NetlinkTable()
	if t == nil {
		return nftables.TableFamilyINet
	}
	return t.Family
}

// ConntrackStats reads the conntrack entry count and counters of the
// host's namespace (files of the host's thread: /proc/sys/net and
// /proc/thread-self/net follow the namespace of the thread that opens
// them).
func (s *Server) ConntrackStats(_ context.Context, req *pb.HostRef) (*pb.ConntrackStatsReply, error) {
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	rep := &pb.ConntrackStatsReply{}
	err = h.do(func() error {
		b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count")
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no conntrack on %s (nf_conntrack not loaded): %w", h.label(), err)
		}
		if err != nil {
			return err
		}
		if rep.Count, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil {
			return fmt.Errorf("nf_conntrack_count %q: %w", b, err)
		}
		b, err = os.ReadFile("/proc/thread-self/net/stat/nf_conntrack")
		if err != nil {
			return err
		}
		rep.Counters, err = parseConntrackStat(string(b))
		return err
	})
	if err != nil {
		return nil, failed(fmt.Errorf("read conntrack stats of %s: %w", h.label(), err))
	}
	return rep, nil
}

// parseConntrackStat sums the per-CPU lines of /proc/net/stat/nf_conntrack
// (a header of column names, then one line of hexadecimal numbers per
// CPU) by column; "entries", the same on every line, is left out.
func parseConntrackStat(s string) (map[string]uint64, error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("nf_conntrack stat: %d lines, want a header and a line per CPU", len(lines))
	}
	names := strings.Fields(lines[0])
	sums := map[string]uint64{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != len(names) {
			return nil, fmt.Errorf("nf_conntrack stat: line %q has %d columns, the header %d", l, len(f), len(names))
		}
		for i, v := range f {
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("nf_conntrack stat: %s %q: %w", names[i], v, err)
			}
			if names[i] != "entries" {
				sums[names[i]] += n
			}
		}
	}
	return sums, nil
}
