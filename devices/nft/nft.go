// Package nft models nftables tables, chains and rules as recipes ask
// for them: a typed, checked spec the agent turns into netfilter netlink
// messages through github.com/google/nftables, and read-only state
// (rule handles and counters) for everyone.
//
// Rules match on the layer 4 protocol, source and destination prefixes,
// ports and conntrack state, may count, and end with a verdict. That is
// enough for rule-scale and conntrack recipes; nothing here is a general
// nft language.
package nft

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Table is an nftables table.
type Table struct {
	// Family is "inet" (both IP families), "ip" or "ip6"; "" is "inet".
	Family string `json:"family,omitempty"`
	// Name is the table's name; required.
	Name string `json:"name"`
}

// Chain is a chain of a table: a base chain on a netfilter hook when
// Hook is given, else a regular chain rules jump to.
type Chain struct {
	Family string `json:"family,omitempty"`
	// Table names the chain's table; required.
	Table string `json:"table"`
	// Name is the chain's name; required.
	Name string `json:"name"`
	// Hook is "prerouting", "input", "forward", "output" or
	// "postrouting"; "" makes a regular chain.
	Hook string `json:"hook,omitempty"`
	// Priority orders base chains on one hook (filter is 0).
	Priority int32 `json:"priority,omitempty"`
	// Policy is a base chain's verdict for what no rule ended: "accept"
	// ("" too) or "drop".
	Policy string `json:"policy,omitempty"`
}

// Rule is one rule of a chain. Every match given must hold; a rule
// without matches applies to every packet.
type Rule struct {
	// Proto is "tcp", "udp", "icmp", "icmpv6" or "" (any).
	Proto string `json:"proto,omitempty"`
	// Src and Dst are prefixes or addresses ("198.18.1.0/24",
	// "2001:db8::1"); "" is any.
	Src string `json:"src,omitempty"`
	Dst string `json:"dst,omitempty"`
	// SPort and DPort are ports (Proto tcp or udp); 0 is any.
	SPort uint16 `json:"sport,omitempty"`
	DPort uint16 `json:"dport,omitempty"`
	// CtState matches the conntrack state: any of "new", "established",
	// "related", "invalid", "untracked". A rule with it makes the kernel
	// track connections in the rule's namespace.
	CtState []string `json:"ct_state,omitempty"`
	// Counter counts the packets and bytes the rule matched.
	Counter bool `json:"counter,omitempty"`
	// Verdict is "accept", "drop" or "" (go on with the next rule).
	Verdict string `json:"verdict,omitempty"`
}

// RuleState is a rule as read back from a host.
type RuleState struct {
	// Handle is the rule's handle in its chain.
	Handle uint64
	// Packets and Bytes are its counter (0 without Counter).
	Packets, Bytes uint64
	// Counter says whether the rule has a counter.
	Counter bool
}

var (
	families = []string{"inet", "ip", "ip6"}
	hooks    = []string{"prerouting", "input", "forward", "output", "postrouting"}
	protos   = []string{"tcp", "udp", "icmp", "icmpv6"}
	verdicts = []string{"accept", "drop"}
	ctStates = map[string]uint32{"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$`)
)

// family returns f, "" as "inet".
func family(f string) string {
	if f == "" {
		return "inet"
	}
	return f
}

func checkName(what, kind, s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("nft %s: %s %q is not a name (letters, digits, _ . -; up to 255)", what, kind, s)
	}
	return nil
}

func oneOf(what, field, v string, allowed ...string) error {
	if !slices.Contains(allowed, v) {
		return fmt.Errorf("nft %s: %s %q is not one of %s", what, field, v, strings.Join(allowed, ", "))
	}
	return nil
}

// Validate reports what is wrong with the table, naming the field.
func (t Table) Validate() error {
	if err := oneOf("table", "Family", family(t.Family), families...); err != nil {
		return err
	}
	return checkName("table", "Name", t.Name)
}

// String is the table as nft names it ("inet lnst").
func (t Table) String() string { return family(t.Family) + " " + t.Name }

// Validate reports what is wrong with the chain, naming the field.
func (c Chain) Validate() error {
	if err := (Table{c.Family, c.Table}).Validate(); err != nil {
		return fmt.Errorf("nft chain %q: %w", c.Name, err)
	}
	if err := checkName("chain", "Name", c.Name); err != nil {
		return err
	}
	if c.Hook == "" {
		if c.Policy != "" || c.Priority != 0 {
			return fmt.Errorf("nft chain %q: Policy and Priority need a Hook (a base chain)", c.Name)
		}
		return nil
	}
	if err := oneOf("chain "+c.Name, "Hook", c.Hook, hooks...); err != nil {
		return err
	}
	if c.Policy != "" {
		return oneOf("chain "+c.Name, "Policy", c.Policy, verdicts...)
	}
	return nil
}

// String names the chain ("inet lnst fwd").
func (c Chain) String() string { return family(c.Family) + " " + c.Table + " " + c.Name }

// prefix parses an address or prefix, without host bits.
func prefix(field, s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%s %q is not an address or prefix (198.18.1.0/24, 2001:db8::1)", field, s)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%s %q is not an address or prefix (198.18.1.0/24, 2001:db8::1)", field, s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s %q has host bits set (did you mean %s?)", field, s, p.Masked())
	}
	return p, nil
}

// Validate reports what is wrong with the rule in a table of family fam
// ("" is inet), naming the field.
func (r Rule) Validate(fam string) error {
	_, err := r.ipFamily(fam)
	return err
}

// ipFamily checks the rule and returns the IP version its addresses and
// protocol pin it to: 4, 6 or 0 (either).
func (r Rule) ipFamily(fam string) (int, error) {
	fam = family(fam)
	if err := oneOf("rule", "table family", fam, families...); err != nil {
		return 0, err
	}
	v := map[string]int{"inet": 0, "ip": 4, "ip6": 6}[fam]
	pin := func(field string, want int) error {
		if v != 0 && v != want {
			return fmt.Errorf("nft rule: %s is IPv%d, the rule's family (table %s, or another match) is IPv%d", field, want, fam, v)
		}
		v = want
		return nil
	}
	if r.Proto != "" {
		if err := oneOf("rule", "Proto", r.Proto, protos...); err != nil {
			return 0, err
		}
		switch r.Proto {
		case "icmp":
			if err := pin("Proto icmp", 4); err != nil {
				return 0, err
			}
		case "icmpv6":
			if err := pin("Proto icmpv6", 6); err != nil {
				return 0, err
			}
		}
	}
	for _, a := range []struct{ field, s string }{{"Src", r.Src}, {"Dst", r.Dst}} {
		if a.s == "" {
			continue
		}
		p, err := prefix(a.field, a.s)
		if err != nil {
			return 0, fmt.Errorf("nft rule: %w", err)
		}
		want := 6
		if p.Addr().Is4() {
			want = 4
		}
		if err := pin(fmt.Sprintf("%s %s", a.field, a.s), want); err != nil {
			return 0, err
		}
	}
	if (r.SPort != 0 || r.DPort != 0) && r.Proto != "tcp" && r.Proto != "udp" {
		return 0, fmt.Errorf("nft rule: SPort/DPort need Proto tcp or udp, not %q", r.Proto)
	}
	for _, s := range r.CtState {
		if _, ok := ctStates[s]; !ok {
			return 0, fmt.Errorf("nft rule: CtState %q is not one of new, established, related, invalid, untracked", s)
		}
	}
	if r.Verdict != "" {
		if err := oneOf("rule", "Verdict", r.Verdict, verdicts...); err != nil {
			return 0, err
		}
	}
	return v, nil
}

// Rules are rules to append to a chain, as one request carries them.
type Rules struct {
	Chain Chain  `json:"chain"`
	Rules []Rule `json:"rules"`
}
