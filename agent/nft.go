package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/lnst-go/lnst/agent/internal/nlspec"
	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"golang.org/x/sys/unix"
)

// nftables (issue 18) through github.com/google/nftables: tables and
// chains journaled with their deletion; rules only into a table or chain
// the same group made, so that they go with it.

// nftRulesBatch is how many rules NftAddRules sends in one batch.
const nftRulesBatch = 50

// The undo operations of nftables objects.
const (
	opDelNftTable = "del-nft-table"
	opDelNftChain = "del-nft-chain"
)

func init() {
	for _, m := range []string{"NftAddTable", "NftAddChain", "NftAddRules"} {
		callKinds[m] = changes
	}
}

// nftDo runs f with an nftables connection in the host's namespace and
// sends what f queued in one batch.
func (h *host) nftDo(f func(c *nftables.Conn)) error {
	fd, err := h.nsFd()
	if err != nil {
		return fmt.Errorf("%s: network namespace: %w", h.label(), err)
	}
	defer unix.Close(int(fd))
	c, err := nftables.New(nftables.WithNetNSFd(int(fd)))
	if err != nil {
		return fmt.Errorf("%s: nftables: %w", h.label(), err)
	}
	defer c.CloseLasting()
	f(c)
	return c.Flush()
}

// undoNft applies an nftables undo entry.
func (h *host) undoNft(u undo) error {
	var what string
	var del func(c *nftables.Conn)
	switch u.Op {
	case opDelNftTable:
		var t devices.NftTable
		if err := json.Unmarshal(u.Spec, &t); err != nil {
			return fmt.Errorf("undo entry %d: %s: %w", u.Seq, u.Spec, err)
		}
		what = "nft table " + t.String()
		del = func(c *nftables.Conn) { c.DelTable(&nftables.Table{Family: nlspec.NftFamily(t.Family), Name: t.Name}) }
	case opDelNftChain:
		var ch devices.NftChain
		if err := json.Unmarshal(u.Spec, &ch); err != nil {
			return fmt.Errorf("undo entry %d: %s: %w", u.Seq, u.Spec, err)
		}
		what = "nft chain " + ch.String()
		del = func(c *nftables.Conn) {
			c.DelChain(&nftables.Chain{Name: ch.Name, Table: &nftables.Table{Family: nlspec.NftFamily(ch.Family), Name: ch.Table}})
		}
	default:
		return fmt.Errorf("undo entry %d: unknown operation %q", u.Seq, u.Op)
	}
	err := h.nftDo(del)
	if gone(err) {
		return nothingToUndo("%s has no %s", h.label(), what)
	}
	if err != nil {
		return fmt.Errorf("delete %s on %s: %w", what, h.label(), err)
	}
	return nil
}

// NftAddTable adds an nftables table; its undo deletes it with its
// chains and rules.
func (s *Server) NftAddTable(_ context.Context, req *pb.NftRequest) (*pb.ChangeReply, error) {
	var t devices.NftTable
	if err := strictJSON(req.Spec, &t); err != nil {
		return nil, invalid(fmt.Errorf("nft table: %w", err))
	}
	nt, err := nlspec.NftTable(t)
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if exists, err := h.nftTableExists(nt); err != nil {
		return nil, failed(err)
	} else if exists {
		// nft add table on an existing table succeeds; its undo would
		// delete a table the test did not make.
		return nil, failed(fmt.Errorf("add nft table %s on %s: %w", t, h.label(), unix.EEXIST))
	}
	if err = h.nftDo(func(c *nftables.Conn) { c.AddTable(nt) }); err != nil {
		err = fmt.Errorf("add nft table %s on %s: %w", t, h.label(), err)
	}
	spec, _ := json.Marshal(t)
	return s.change(req.Group, undo{Op: opDelNftTable, Host: req.Host, Spec: spec}, err)
}

func (h *host) nftTableExists(t *nftables.Table) (bool, error) {
	var tables []*nftables.Table
	err := h.nftDo(func(c *nftables.Conn) {
		tables, _ = c.ListTablesOfFamily(t.Family)
	})
	for _, x := range tables {
		if x.Name == t.Name {
			return true, err
		}
	}
	return false, err
}

// NftAddChain adds a chain; its undo deletes it.
func (s *Server) NftAddChain(_ context.Context, req *pb.NftRequest) (*pb.ChangeReply, error) {
	var ch devices.NftChain
	if err := strictJSON(req.Spec, &ch); err != nil {
		return nil, invalid(fmt.Errorf("nft chain: %w", err))
	}
	nc, err := nlspec.NftChain(ch)
	if err != nil {
		return nil, invalid(err)
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	if err = h.nftDo(func(c *nftables.Conn) { c.AddChain(nc) }); err != nil {
		err = fmt.Errorf("add nft chain %s on %s: %w", ch, h.label(), err)
	}
	spec, _ := json.Marshal(ch)
	return s.change(req.Group, undo{Op: opDelNftChain, Host: req.Host, Spec: spec}, err)
}

// ownsNft reports whether group journaled the making of chain's table or
// of chain itself on host.
func (s *Server) ownsNft(group, host, family, table, chain string) bool {
	s.journal.mu.Lock()
	defer s.journal.mu.Unlock()
	for _, u := range s.journal.entries {
		if u.Group != group || u.Host != host {
			continue
		}
		switch u.Op {
		case opDelNftTable:
			var t devices.NftTable
			if json.Unmarshal(u.Spec, &t) == nil && t.Family == family && t.Name == table {
				return true
			}
		case opDelNftChain:
			var c devices.NftChain
			if json.Unmarshal(u.Spec, &c) == nil && c.Family == family && c.Table == table && c.Name == chain {
				return true
			}
		}
	}
	return false
}

// NftAddRules appends rules, in one batch, to a chain of a table or a
// chain the group made: they go with it, and journal nothing.
func (s *Server) NftAddRules(_ context.Context, req *pb.NftRequest) (*pb.ChangeReply, error) {
	var rs devices.NftRules
	if err := strictJSON(req.Spec, &rs); err != nil {
		return nil, invalid(fmt.Errorf("nft rules: %w", err))
	}
	if err := rs.Validate(); err != nil {
		return nil, invalid(err)
	}
	if len(rs.Rules) == 0 {
		return nil, invalid(errors.New("nft rules: none given"))
	}
	if !s.ownsNft(req.Group, req.Host, rs.Family, rs.Table, rs.Chain) {
		return nil, invalid(fmt.Errorf("nft rules: chain %s %s %s is not of a table or chain this test made (NftAddTable, NftAddChain): its rules would outlive it", rs.Family, rs.Table, rs.Chain))
	}
	h, err := s.host(req.Host)
	if err != nil {
		return nil, err
	}
	table := &nftables.Table{Family: nlspec.NftFamily(rs.Family), Name: rs.Table}
	chain := &nftables.Chain{Name: rs.Chain, Table: table}
	// One batch per nftRulesBatch rules: a batch is one sendmsg (1,000
	// rules are too long a message) and the kernel acks each rule (200
	// overflow the socket's receive buffer). Rules of earlier batches
	// stay when a later one fails; they go with their chain all the same.
	for start := 0; start < len(rs.Rules); start += nftRulesBatch {
		part := rs.Rules[start:min(start+nftRulesBatch, len(rs.Rules))]
		err = h.nftDo(func(c *nftables.Conn) {
			for _, r := range part {
				c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: nlspec.NftRuleExprs(rs.Family, r)})
			}
		})
		if err != nil {
			return nil, failed(fmt.Errorf("add nft rules %d to %d to %s %s %s on %s: %w", start, start+len(part)-1, rs.Family, rs.Table, rs.Chain, h.label(), err))
		}
	}
	return &pb.ChangeReply{}, nil
}
