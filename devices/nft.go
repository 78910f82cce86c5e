package devices

import (
	"fmt"
	"net/netip"
)

// NftTable is an nftables table (nft add table FAMILY NAME). Deleting it
// deletes its chains and rules.
type NftTable struct {
	// Family is "ip", "ip6" or "inet".
	Family, Name string
}

// String names the table: "inet lnst".
func (t NftTable) String() string { return t.Family + " " + t.Name }

func nftCheckTable(c xfrmCheck, family, table string) error {
	switch family {
	case "ip", "ip6", "inet":
	default:
		return c.fail("Family", "%q is not \"ip\", \"ip6\" or \"inet\"", family)
	}
	if table == "" || len(table) > 255 {
		return c.fail("Table", "%q: a table name is 1 to 255 bytes", table)
	}
	return nil
}

// Validate checks Family and Name.
func (t NftTable) Validate() error {
	return nftCheckTable(xfrmCheck{"nft table " + t.String()}, t.Family, t.Name)
}

// NftChain is a chain of an NftTable: a base chain of type filter on
// Hook, or a regular chain (Hook "") that rules jump to.
type NftChain struct {
	Family, Table, Name string
	// Hook is "input", "forward", "output", "prerouting",
	// "postrouting", or "" for a regular chain.
	Hook string `json:",omitempty"`
	// Priority orders base chains on a hook (filter is 0).
	Priority int `json:",omitempty"`
	// Policy is the verdict at the end of a base chain: "accept" (the
	// default, "") or "drop".
	Policy string `json:",omitempty"`
}

// String names the chain: "inet lnst input".
func (c NftChain) String() string { return c.Family + " " + c.Table + " " + c.Name }

// Validate checks the table, Name, Hook and Policy.
func (c NftChain) Validate() error {
	ck := xfrmCheck{"nft chain " + c.String()}
	if err := nftCheckTable(ck, c.Family, c.Table); err != nil {
		return err
	}
	if c.Name == "" || len(c.Name) > 255 {
		return ck.fail("Name", "%q: a chain name is 1 to 255 bytes", c.Name)
	}
	switch c.Hook {
	case "", "input", "forward", "output", "prerouting", "postrouting":
	default:
		return ck.fail("Hook", "%q is not one of input, forward, output, prerouting, postrouting", c.Hook)
	}
	if c.Hook == "" && (c.Priority != 0 || c.Policy != "") {
		return ck.fail("Policy", "a regular chain (no Hook) has no Priority or Policy")
	}
	if c.Policy != "" && c.Policy != "accept" && c.Policy != "drop" {
		return ck.fail("Policy", "%q is not \"accept\" or \"drop\"", c.Policy)
	}
	return nil
}

// NftRule is a rule: its matches (all that are set must hold), an
// optional counter and a verdict.
type NftRule struct {
	// Src and Dst are prefixes the packet's addresses must be in (of the
	// table's family; either family in an inet table).
	Src, Dst string `json:",omitempty"`
	// Proto is "tcp" or "udp"; DPort (1..65535), with it, the
	// destination port.
	Proto string `json:",omitempty"`
	DPort int    `json:",omitempty"`
	// Counter counts the packets and bytes that matched.
	Counter bool `json:",omitempty"`
	// Verdict is "accept", "drop" or "" (none: the next rule).
	Verdict string `json:",omitempty"`
}

// NftRules are rules appended, in order, to a chain the test made.
type NftRules struct {
	Family, Table, Chain string
	Rules                []NftRule
}

// Validate checks the chain's name and every rule.
func (r NftRules) Validate() error {
	c := xfrmCheck{fmt.Sprintf("nft rules of %s %s %s", r.Family, r.Table, r.Chain)}
	if err := nftCheckTable(c, r.Family, r.Table); err != nil {
		return err
	}
	if r.Chain == "" {
		return c.fail("Chain", "is required")
	}
	for i, rule := range r.Rules {
		field := fmt.Sprintf("Rules[%d]", i)
		var fam int
		for _, p := range []struct{ name, v string }{{"Src", rule.Src}, {"Dst", rule.Dst}} {
			if p.v == "" {
				continue
			}
			pfx, err := netip.ParsePrefix(p.v)
			if err != nil || pfx.Addr().Zone() != "" || pfx.Addr().Is4In6() {
				return c.fail(field, "%s %q is not a prefix", p.name, p.v)
			}
			if pfx.Masked() != pfx {
				return c.fail(field, "%s %q has host bits set (did you mean %s?)", p.name, p.v, pfx.Masked())
			}
			f := 6
			if pfx.Addr().Is4() {
				f = 4
			}
			if fam != 0 && fam != f {
				return c.fail(field, "Src and Dst are of different families")
			}
			fam = f
			if r.Family == "ip" && f != 4 || r.Family == "ip6" && f != 6 {
				return c.fail(field, "%s %s does not fit a table of family %s", p.name, p.v, r.Family)
			}
		}
		switch rule.Proto {
		case "":
			if rule.DPort != 0 {
				return c.fail(field, "DPort needs Proto tcp or udp")
			}
		case "tcp", "udp":
			if rule.DPort < 0 || rule.DPort > 65535 {
				return c.fail(field, "DPort %d is out of range 1..65535", rule.DPort)
			}
		default:
			return c.fail(field, "Proto %q is not \"tcp\" or \"udp\"", rule.Proto)
		}
		if rule.Verdict != "" && rule.Verdict != "accept" && rule.Verdict != "drop" {
			return c.fail(field, "Verdict %q is not \"accept\" or \"drop\"", rule.Verdict)
		}
	}
	return nil
}
