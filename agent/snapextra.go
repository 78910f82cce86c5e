package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/lnst-go/lnst/internal/l2tp"
	"github.com/lnst-go/lnst/internal/mptcp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The snapshot's nftables rulesets, MPTCP endpoints and limits, xfrm
// states and policies and L2TP tunnels and sessions, read in Go on the
// host's thread as the rest of the snapshot is: the clean check ran a
// shell script of about ten processes a host for them (nft, ip mptcp,
// ip xfrm, ip l2tp), most of what a snapshot still cost.

// snapGenl finds, once for all the hosts of a call (generic netlink
// families are the machine's, not a namespace's), the ids of the MPTCP
// path manager's and L2TP's families; a family the kernel lacks is left
// out. It lists the families rather than asking for each by name: a
// request by name makes the kernel try to load the family's module, and
// the check loads no module.
func snapGenl() (map[string]uint16, error) {
	fams, err := netlink.GenlFamilyList()
	if err != nil {
		return nil, fmt.Errorf("list generic netlink families: %w", err)
	}
	ids := map[string]uint16{}
	for _, f := range fams {
		if f.Name == mptcp.Family || f.Name == l2tp.GenlName {
			ids[f.Name] = f.ID
		}
	}
	return ids, nil
}

// snapExtra writes the nftables, MPTCP, xfrm, L2TP and Open vSwitch
// lines.
func (w *snapWriter) snapExtra() {
	w.nft()
	w.mptcp()
	w.xfrm()
	w.l2tp()
	w.ovs()
}

// ovsDBSockets are where Debian's ovsdb-server listens.
var ovsDBSockets = []string{"/run/openvswitch/db.sock", "/var/run/openvswitch/db.sock"}

// ovs writes each Open vSwitch bridge's ports as "ovs-port BR PORT" and
// its flows, without their counters, as "ovs-flow BR FLOW", as the
// script's ovs-vsctl list-ports and ovs-ofctl --no-stats dump-flows do.
// Open vSwitch's state is in ovsdb, reached by its tools only: they run
// where ovsdb-server's socket exists, so a machine without Open vSwitch
// starts no process.
func (w *snapWriter) ovs() {
	up := false
	for _, p := range ovsDBSockets {
		if _, err := os.Stat(p); err == nil {
			up = true
		}
	}
	if !up {
		return
	}
	if _, err := exec.LookPath("ovs-vsctl"); err != nil {
		return
	}
	run := func(argv ...string) ([]string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		return strings.Split(strings.TrimRight(string(out), "\n"), "\n"), nil
	}
	brs, err := run("ovs-vsctl", "--timeout=5", "list-br")
	if err != nil {
		return // ovsdb-server is not answering: as the script, nothing
	}
	for _, b := range brs {
		if b == "" {
			continue
		}
		ports, err := run("ovs-vsctl", "--timeout=5", "list-ports", b)
		if err != nil {
			w.fail("ovs ports of "+b, err)
			continue
		}
		for _, p := range ports {
			if p != "" {
				w.add("ovs-port %s %s", b, p)
			}
		}
		if flows, err := run("ovs-ofctl", "--no-stats", "dump-flows", b); err == nil {
			for _, f := range flows {
				if f != "" {
					w.add("ovs-flow %s %s", b, f)
				}
			}
		}
	}
}

// genlDump sends one request of family fam (genl header and attributes
// in msg) in the calling thread's namespace and returns the replies.
func genlDump(fam uint16, flags int, msg []byte) ([][]byte, error) {
	req := nl.NewNetlinkRequest(int(fam), unix.NLM_F_REQUEST|flags)
	req.AddData(rawData(msg))
	return req.Execute(unix.NETLINK_GENERIC, 0)
}

// mptcp renders the path manager's endpoints as "mptcp-endpoint ADDR
// [port P] [id N] [FLAGS] [dev D]" and its limits as "mptcp-limits
// add_addr_accepted N subflows M", as ip mptcp shows them.
func (w *snapWriter) mptcp() {
	fam, ok := w.genl[mptcp.Family]
	if !ok {
		return // a kernel without MPTCP
	}
	msgs, err := genlDump(fam, unix.NLM_F_DUMP, mptcp.GetAddrDumpMsg())
	if err != nil {
		w.fail("list mptcp endpoints", err)
	}
	for _, m := range msgs {
		e, err := mptcp.ParseEndpoint(m)
		if err != nil {
			w.fail("parse mptcp endpoint", err)
			continue
		}
		dev := ""
		if e.IfIndex != 0 {
			dev = " dev " + w.name(e.IfIndex)
		}
		w.add("mptcp-endpoint %s%s", e, dev)
	}
	msgs, err = genlDump(fam, 0, mptcp.GetLimitsMsg())
	if err != nil || len(msgs) != 1 {
		w.fail("read mptcp limits", fmt.Errorf("%d replies: %v", len(msgs), err))
		return
	}
	l, err := mptcp.ParseLimits(msgs[0])
	if err != nil {
		w.fail("parse mptcp limits", err)
		return
	}
	w.add("mptcp-limits add_addr_accepted %d subflows %d", l.AddAddrAccepted, l.Subflows)
}

// L2TP's get commands and the attributes left out of its lines: the
// statistics (counters) and padding (include/uapi/linux/l2tp.h).
const (
	l2tpCmdTunnelGet  = l2tp.CmdTunnelGet
	l2tpCmdSessionGet = l2tp.CmdSessionGet
	l2tpAttrStats     = 30
	l2tpAttrPad       = 35
)

// l2tp renders every tunnel and session as "l2tp tunnel a9=..." and
// "l2tp session a9=...", their attributes but the statistics, where the
// l2tp family is there (l2tp_netlink loaded: the check loads no module).
func (w *snapWriter) l2tp() {
	fam, ok := w.genl[l2tp.GenlName]
	if !ok {
		return
	}
	for _, c := range []struct {
		what string
		cmd  uint8
	}{{"tunnel", l2tpCmdTunnelGet}, {"session", l2tpCmdSessionGet}} {
		msgs, err := genlDump(fam, unix.NLM_F_DUMP, (&nl.Genlmsg{Command: c.cmd, Version: l2tp.GenlVersion}).Serialize())
		if err != nil {
			w.fail("list l2tp "+c.what+"s", err)
			continue
		}
		for _, m := range msgs {
			if len(m) < nl.SizeofGenlmsg {
				continue
			}
			attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
			if err != nil {
				w.fail("parse l2tp "+c.what, err)
				continue
			}
			var b strings.Builder
			b.WriteString("l2tp " + c.what)
			for _, a := range attrs {
				if t := a.Attr.Type & nl.NLA_TYPE_MASK; t != l2tpAttrStats && t != l2tpAttrPad {
					b.WriteString(" " + attrHex("a", a))
				}
			}
			w.lines = append(w.lines, b.String())
		}
	}
}

// xfrm renders every state as "xfrm-state src S dst D proto P spi X ..."
// without its keys (an algorithm's name and lengths only), its counters,
// lifetimes in use and replay state, and every policy as "xfrm-policy
// dir D src S dst D ..." without its index (the kernel's numbering).
func (w *snapWriter) xfrm() {
	states, err := netlink.XfrmStateList(netlink.FAMILY_ALL)
	if err != nil {
		w.fail("list xfrm states", err)
	}
	for _, s := range states {
		var b strings.Builder
		fmt.Fprintf(&b, "xfrm-state src %s dst %s proto %d spi %#x mode %d reqid %d replay-window %d limits %+v sadir %d ifid %d",
			s.Src, s.Dst, s.Proto, s.Spi, s.Mode, s.Reqid, s.ReplayWindow, s.Limits, s.SADir, s.Ifid)
		for _, a := range []struct {
			name string
			algo *netlink.XfrmStateAlgo
		}{{"auth", s.Auth}, {"crypt", s.Crypt}, {"aead", s.Aead}} {
			if a.algo != nil {
				fmt.Fprintf(&b, " %s %s keylen %d trunc %d icv %d", a.name, a.algo.Name, len(a.algo.Key), a.algo.TruncateLen, a.algo.ICVLen)
			}
		}
		xfrmMark(&b, "mark", s.Mark)
		xfrmMark(&b, "output-mark", s.OutputMark)
		if s.Pcpunum != nil {
			fmt.Fprintf(&b, " pcpu %d", *s.Pcpunum)
		}
		if s.Encap != nil {
			fmt.Fprintf(&b, " encap %d sport %d dport %d oa %s", s.Encap.Type, s.Encap.SrcPort, s.Encap.DstPort, s.Encap.OriginalAddress)
		}
		fmt.Fprintf(&b, " esn %t dont-encap-dscp %t oseq-may-wrap %t", s.ESN, s.DontEncapDSCP, s.OSeqMayWrap)
		if s.Selector != nil {
			b.WriteString(" sel")
			w.xfrmSelector(&b, *s.Selector)
		}
		w.lines = append(w.lines, b.String())
	}
	policies, err := netlink.XfrmPolicyList(netlink.FAMILY_ALL)
	if err != nil {
		w.fail("list xfrm policies", err)
	}
	for _, p := range policies {
		var b strings.Builder
		fmt.Fprintf(&b, "xfrm-policy %s", p.Dir) // "dir out", "socket in"...
		w.xfrmSelector(&b, p)
		fmt.Fprintf(&b, " priority %d action %d ifid %d", p.Priority, p.Action, p.Ifid)
		xfrmMark(&b, "mark", p.Mark)
		for _, t := range p.Tmpls {
			fmt.Fprintf(&b, " tmpl src %s dst %s proto %d mode %d spi %#x reqid %d optional %d", t.Src, t.Dst, t.Proto, t.Mode, t.Spi, t.Reqid, t.Optional)
		}
		w.lines = append(w.lines, b.String())
	}
}

// xfrmSelector renders a policy's (or a state's) selector.
func (w *snapWriter) xfrmSelector(b *strings.Builder, p netlink.XfrmPolicy) {
	fmt.Fprintf(b, " src %s dst %s proto %d sport %d dport %d", p.Src, p.Dst, p.Proto, p.SrcPort, p.DstPort)
	if p.Ifindex != 0 {
		fmt.Fprintf(b, " dev %s", w.name(int32(p.Ifindex)))
	}
}

func xfrmMark(b *strings.Builder, what string, m *netlink.XfrmMark) {
	if m != nil {
		fmt.Fprintf(b, " %s %#x/%#x", what, m.Value, m.Mask)
	}
}

// nftFamilies names the nftables families as nft does.
var nftFamilies = map[nftables.TableFamily]string{
	nftables.TableFamilyINet: "inet", nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6",
	nftables.TableFamilyARP: "arp", nftables.TableFamilyNetdev: "netdev", nftables.TableFamilyBridge: "bridge",
}

func nftFamily(f nftables.TableFamily) string {
	if n, ok := nftFamilies[f]; ok {
		return n
	}
	return fmt.Sprintf("family%d", f)
}

// nft renders the ruleset: "nft table FAM NAME flags F", "nft chain FAM
// TABLE NAME type T hook H prio P policy P dev D", "nft set FAM TABLE
// NAME ...", "nft element FAM TABLE SET ..." and "nft rule FAM TABLE
// CHAIN: EXPR..." (each expression its type and its fields as JSON).
// Counters are rendered without their values and a quota without what
// it consumed: traffic changes them; rule handles are left out, as nft
// list ruleset leaves them.
func (w *snapWriter) nft() {
	// The connection is made on the host's thread: its socket is in the
	// host's namespace, with no namespace switch of its own.
	// A kernel without nfnetlink or nf_tables has no ruleset. (As nft
	// list ruleset did, the first request may have the kernel load
	// nf_tables where it is a module.)
	noNft := func(err error) bool { return errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP) }
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		if !noNft(err) {
			w.fail("nftables connection", err)
		}
		return
	}
	defer c.CloseLasting()
	tables, err := c.ListTables()
	if err != nil {
		if !noNft(err) {
			w.fail("list nftables tables", err)
		}
		return
	}
	if len(tables) == 0 {
		return
	}
	for _, t := range tables {
		w.add("nft table %s %s flags %#x", nftFamily(t.Family), t.Name, t.Flags)
		sets, err := c.GetSets(t)
		if err != nil {
			w.fail("list nftables sets of "+t.Name, err)
		}
		for _, s := range sets {
			w.add("nft set %s %s %s anon %t const %t interval %t map %t timeout %v dynamic %t concat %t key %s/%d data %s/%d size %d counter %t comment %q",
				nftFamily(t.Family), t.Name, s.Name, s.Anonymous, s.Constant, s.Interval, s.IsMap, s.Timeout, s.Dynamic, s.Concatenation,
				s.KeyType.Name, s.KeyType.Bytes, s.DataType.Name, s.DataType.Bytes, s.Size, s.Counter, s.Comment)
			els, err := c.GetSetElements(s)
			if err != nil {
				w.fail("list nftables elements of set "+s.Name, err)
			}
			for _, e := range els {
				verdict := ""
				if e.VerdictData != nil {
					verdict = fmt.Sprintf(" verdict %d %s", e.VerdictData.Kind, e.VerdictData.Chain)
				}
				w.add("nft element %s %s %s key %x val %x keyend %x intervalend %t timeout %v comment %q%s",
					nftFamily(t.Family), t.Name, s.Name, e.Key, e.Val, e.KeyEnd, e.IntervalEnd, e.Timeout, e.Comment, verdict)
			}
		}
	}
	chains, err := c.ListChains()
	if err != nil {
		w.fail("list nftables chains", err)
		return
	}
	for _, ch := range chains {
		var b strings.Builder
		fmt.Fprintf(&b, "nft chain %s %s %s type %s", nftFamily(ch.Table.Family), ch.Table.Name, ch.Name, ch.Type)
		if ch.Hooknum != nil {
			fmt.Fprintf(&b, " hook %d", *ch.Hooknum)
		}
		if ch.Priority != nil {
			fmt.Fprintf(&b, " prio %d", *ch.Priority)
		}
		if ch.Policy != nil {
			fmt.Fprintf(&b, " policy %d", *ch.Policy)
		}
		if ch.Device != "" {
			fmt.Fprintf(&b, " dev %s", ch.Device)
		}
		w.lines = append(w.lines, b.String())
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			w.fail("list nftables rules of chain "+ch.Name, err)
			continue
		}
		for _, r := range rules {
			w.lines = append(w.lines, nftRule(ch, r))
		}
	}
}

// nftRule renders a rule: its chain, its expressions and its user data
// (nft keeps a rule's comment there).
func nftRule(ch *nftables.Chain, r *nftables.Rule) string {
	var b strings.Builder
	fmt.Fprintf(&b, "nft rule %s %s %s:", nftFamily(ch.Table.Family), ch.Table.Name, ch.Name)
	for _, e := range r.Exprs {
		b.WriteString(" " + nftExpr(e))
	}
	if len(r.UserData) > 0 {
		fmt.Fprintf(&b, " userdata %x", r.UserData)
	}
	return b.String()
}

// nftExpr renders one expression as its type's name and its fields as
// JSON (pointers followed, as %v would print their addresses); a
// counter as "counter", a quota without what it consumed.
func nftExpr(e expr.Any) string {
	switch x := e.(type) {
	case *expr.Counter:
		return "counter"
	case *expr.Quota:
		q := *x
		q.Consumed = 0
		e = &q
	}
	t := reflect.TypeOf(e)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := strings.ToLower(t.Name())
	j, err := json.Marshal(e)
	if err != nil {
		return name + "=" + err.Error()
	}
	return name + string(j)
}
