package recipes

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices/nft"
	"github.com/lnst-go/lnst/devices/tc"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules/perf"
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/require"
)

// nftRulesParam overrides how many rules TestNftablesRuleScale adds.
var nftRulesParam = lnsttest.NewParam("nft.rules", 0,
	"non-matching nftables rules TestNftablesRuleScale adds (0: 1,000, or 10,000 under perf.profile=full)")

// fwdTopo is h1 - r - h2: h1's eth0 and r's eth0 on network n1, r's eth1
// and h2's eth0 on n2, r forwarding both families; network numbers n
// (h1's side) and n+1 (h2's side).
type fwdTopo struct {
	h1, r, h2 *lnsttest.Host
	// dst are h2's addresses by family name; src h1's.
	src, dst map[string]string
}

func newFwdTopo(t *testing.T, n int) fwdTopo {
	t.Helper()
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("r", lnsttest.IfaceReq("eth0", lnsttest.Net("n1")), lnsttest.IfaceReq("eth1", lnsttest.Net("n2"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n2"))),
	)
	tp := fwdTopo{h1: m.Host("h1"), r: m.Host("r"), h2: m.Host("h2"), src: map[string]string{}, dst: map[string]string{}}
	enrtNoDAD(t, tp.h1, "eth0")
	enrtNoDAD(t, tp.r, "eth0", "eth1")
	enrtNoDAD(t, tp.h2, "eth0")
	tp.r.Sysctl(t, "net.ipv4.ip_forward", "1")
	tp.r.Sysctl(t, "net.ipv6.conf.all.forwarding", "1")
	for _, f := range enrtFamilies {
		tp.h1.Iface("eth0").AddIP(t, f.net(n, 1))
		tp.r.Iface("eth0").AddIP(t, f.net(n, 254))
		tp.r.Iface("eth1").AddIP(t, f.net(n+1, 254))
		tp.h2.Iface("eth0").AddIP(t, f.net(n+1, 2))
		tp.h1.AddRoute(t, prefixOf(f.net(n+1, 0)), lnsttest.Via(enrtAddr(f.net(n, 254))))
		tp.h2.AddRoute(t, prefixOf(f.net(n, 0)), lnsttest.Via(enrtAddr(f.net(n+1, 254))))
		tp.src[f.name], tp.dst[f.name] = enrtAddr(f.net(n, 1)), enrtAddr(f.net(n+1, 2))
	}
	for _, f := range enrtFamilies {
		enrtPing(t, tp.h1, tp.dst[f.name])
		enrtPing(t, tp.h2, tp.src[f.name])
	}
	return tp
}

// prefixOf is the network of a CIDR string ("198.18.5.0/24").
func prefixOf(cidr string) string { return netip.MustParsePrefix(cidr).Masked().String() }

// nftScaleRules are n rules a TCP flow to port 5201 matches none of:
// drops of TCP to other ports, from 10000 up.
func nftScaleRules(n int) []nft.Rule {
	rules := make([]nft.Rule, n)
	for i := range rules {
		rules[i] = nft.Rule{Proto: "tcp", DPort: uint16(10000 + i%50000), Verdict: "drop"}
	}
	return rules
}

// throughput is a stream measurement's mean, in bit/s.
func throughput(t *testing.T, tp fwdTopo, name string, prof perf.Profile) float64 {
	t.Helper()
	m := perf.Measure(t, perf.Flow{Name: name, Client: tp.h1, Server: tp.h2, ServerAddr: tp.dst["ipv4"], Duration: prof.Duration},
		perf.Options{Iterations: prof.Iterations})
	perf.ZeroThroughput(t, m)
	return m.Mean
}

// TestNftablesRuleScale measures a TCP stream from h1 through router r to
// h2 with no ruleset on r, then with a forward chain of N rules the flow
// matches none of (1,000; 10,000 under perf.profile=full; nft.rules
// sets it) and a last counting rule, which proves the flow's packets
// went through them all. It records the throughput ratio; the ruleset is
// gone after the subtest.
func TestNftablesRuleScale(t *testing.T) {
	tp := newFwdTopo(t, 180)
	prof := perf.CurrentProfile(2*time.Second, 1)
	n := 1000
	if prof.Full() {
		n = 10000
	}
	if v := nftRulesParam.Get(); v > 0 {
		n = v
	}
	base := throughput(t, tp, "nft0", prof)
	table := nft.Table{Name: "lnst_scale"}
	chain := nft.Chain{Table: table.Name, Name: "fwd", Hook: "forward"}
	t.Run(fmt.Sprintf("rules=%d", n), func(t *testing.T) {
		tp.r.NftAddTable(t, table)
		tp.r.NftAddChain(t, chain)
		start := time.Now()
		tp.r.NftAddRules(t, chain, nftScaleRules(n)...)
		lnsttest.Record(t, "nft rules added", fmt.Sprintf("%d in %v", n, time.Since(start).Round(time.Millisecond)))
		tp.r.NftAddRules(t, chain, nft.Rule{Proto: "tcp", Dst: tp.dst["ipv4"], DPort: 5201, Counter: true})
		rules := tp.r.NftRules(t, chain)
		require.Len(t, rules, n+1)
		with := throughput(t, tp, fmt.Sprintf("nft%d", n), prof)
		last := tp.r.NftRules(t, chain)[n]
		require.True(t, last.Counter)
		require.Positive(t, last.Packets, "the flow's packets reached the rule after the %d non-matching ones", n)
		lnsttest.Record(t, fmt.Sprintf("throughput nft%d/nft0", n), fmt.Sprintf("%.3f (%.3g / %.3g bit/s)", with/base, with, base))
		t.Logf("RATIO nft%d/nft0 %.3f", n, with/base)
	})
	out := tp.r.Output(t, "nft list tables 2>/dev/null || true")
	require.NotContains(t, out, table.Name, "the table is gone after the subtest")
}

// TestCTInsertionRate measures new TCP connections per second (tcp_crr)
// from h1 to h2 through router r, whose forward chain has conntrack on
// (a ct state rule makes the kernel track the namespace's connections),
// and checks conntrack saw the connections: r's entry count grew, and
// the new-state rule's counter is at least the transactions.
func TestCTInsertionRate(t *testing.T) {
	tp := newFwdTopo(t, 182)
	prof := perf.CurrentProfile(2*time.Second, 1)
	table := nft.Table{Name: "lnst_ct"}
	chain := nft.Chain{Table: table.Name, Name: "fwd", Hook: "forward"}
	tp.r.NftAddTable(t, table)
	tp.r.NftAddChain(t, chain)
	tp.r.NftAddRules(t, chain,
		nft.Rule{Proto: "tcp", CtState: []string{"new"}, Counter: true},
		nft.Rule{CtState: []string{"established", "related"}, Counter: true, Verdict: "accept"})
	// A conntrack sysctl of r's namespace (there once the ct rules load
	// conntrack), restored at cleanup like any other.
	tp.r.Sysctl(t, "net.netfilter.nf_conntrack_tcp_timeout_time_wait", "60")
	require.Equal(t, "60", tp.r.ReadSysctl(t, "net.netfilter.nf_conntrack_tcp_timeout_time_wait"))
	before := tp.r.ConntrackStats(t)
	set := perf.MeasureFlows(t, "ct insertion", perf.Options{Iterations: prof.Iterations, Warmup: -1},
		perf.Flow{Name: "tcp_crr", Kind: perf.TCPCRR, Client: tp.h1, Server: tp.h2, ServerAddr: tp.dst["ipv4"], Duration: prof.Duration})
	after := tp.r.ConntrackStats(t)
	rate := set.Flows[0].Metrics[results.MetricRate]
	require.NotEmpty(t, rate.Iterations)
	var trans float64
	for _, it := range rate.Iterations {
		trans += it * prof.Duration.Seconds()
	}
	// Closed connections stay in the table (TIME_WAIT, 120 s), so the
	// count grows, but by less than one per connection: a new SYN of a
	// reused client port reopens its TIME_WAIT entry. (The "insert"
	// counter of /proc/net/stat/nf_conntrack stays 0 on current
	// kernels.) Each connection's SYN is seen in state new.
	inserts := after.Count - before.Count
	newPkts := tp.r.NftRules(t, chain)[0].Packets
	lnsttest.Record(t, "ct insertion rate", fmt.Sprintf("%.0f conn/s (%d new entries, %d new-state packets, %d insert_failed, %d drop)", rate.Mean, inserts, newPkts,
		after.Counters["insert_failed"]-before.Counters["insert_failed"], after.Counters["drop"]-before.Counters["drop"]))
	require.Positive(t, rate.Mean)
	// A transaction counted is a connection made; the rate is over the
	// measured window, so its product with the duration is a little
	// short of what ran: the bound holds with room.
	require.Positive(t, inserts, "new conntrack entries on r")
	require.GreaterOrEqual(t, float64(newPkts), 0.9*trans, "SYNs through the ct state new rule")
}

// TestMPTCP runs MPTCP between h1 and h2 over two networks: h1 opens a
// second subflow from its address on the second network (a subflow
// endpoint, source-routed out of eth1), h2 announces its own there (a
// signal endpoint), and a tcp_rr flow of 4 MiB messages over MPTCP
// sockets (RR messages of 60 KB leave the second subflow idle: one
// subflow's window holds them), with each of h1's devices shaped to
// 100 Mbit/s, must move bytes on both of them.
func TestMPTCP(t *testing.T) {
	m := enrtTwoHostsTwoNets(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	if strings.TrimSpace(h1.Output(t, "cat /proc/sys/net/mptcp/enabled 2>/dev/null || echo none")) != "1" {
		t.Skip("the kernel has no MPTCP (or net.mptcp.enabled is 0): /proc/sys/net/mptcp/enabled")
	}
	prof := perf.CurrentProfile(2*time.Second, 1)
	eth0, eth1 := h1.Iface("eth0"), h1.Iface("eth1")
	eth0.AddIP(t, "198.18.184.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.184.2/24")
	eth1.AddIP(t, "198.18.185.1/24")
	h2.Iface("eth1").AddIP(t, "198.18.185.2/24")
	enrtPing(t, h1, "198.18.184.2")
	enrtPing(t, h1, "198.18.185.2")

	// Source routing on h1, as MPTCP hosts are set up: what leaves from
	// the second address goes out of eth1, to h2's first address too (h2
	// answers for it there).
	h1.AddRoute(t, "198.18.184.0/24", lnsttest.Dev(eth1), lnsttest.Table(185))
	h1.AddRoute(t, "198.18.185.0/24", lnsttest.Dev(eth1), lnsttest.Table(185))
	h1.AddRule(t, lnsttest.From("198.18.185.1/32"), lnsttest.RuleTable(185), lnsttest.Priority(1850))
	h1.MptcpSetLimits(t, 2, 2)
	h2.MptcpSetLimits(t, 2, 2)
	id := h1.MptcpAddEndpoint(t, lnsttest.MptcpEndpoint{Addr: "198.18.185.1", Flags: []string{"subflow"}, Dev: eth1})
	h2.MptcpAddEndpoint(t, lnsttest.MptcpEndpoint{Addr: "198.18.185.2", Flags: []string{"signal"}, Dev: h2.Iface("eth1")})
	eps, subflows, _ := h1.MptcpState(t)
	require.Equal(t, 2, subflows)
	require.Len(t, eps, 1)
	require.Equal(t, id, eps[0].ID)

	// Each of h1's devices sends at most 100 Mbit/s: a subflow that
	// fills its link leaves the scheduler the other (unshaped veth links
	// are never full, and one subflow would carry everything).
	for _, d := range []*lnsttest.Device{eth0, eth1} {
		d.AddQdisc(t, tc.Tbf{Handle: "1:", Rate: 100 * tc.Mbit, Burst: 64 << 10, Latency: 20 * time.Millisecond})
	}
	txBytes := func(d *lnsttest.Device) uint64 { return d.Info(t).Stats.TxBytes }
	b0, b1 := txBytes(eth0), txBytes(eth1)
	set := perf.MeasureFlows(t, "mptcp", perf.Options{Iterations: prof.Iterations, Warmup: -1},
		perf.Flow{Name: "mptcp_rr", Kind: perf.TCPRR, MPTCP: true, MsgSize: 4 << 20,
			Client: h1, Server: h2, ServerAddr: "198.18.184.2", Duration: prof.Duration})
	d0, d1 := txBytes(eth0)-b0, txBytes(eth1)-b1
	lnsttest.Record(t, "mptcp bytes sent", fmt.Sprintf("%s %d, %s %d", eth0.Name(), d0, eth1.Name(), d1))
	require.Positive(t, set.Flows[0].Metrics[results.MetricRate].Mean)
	// Each side carried data, not just its handshake and acks.
	require.Greater(t, d0, uint64(1<<20), "bytes on the first subflow's device %s", eth0.Name())
	require.Greater(t, d1, uint64(1<<20), "bytes on the second subflow's device %s", eth1.Name())
}
