package recipes

import (
	"fmt"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/lnst-go/lnst/modules/perf"
	"github.com/lnst-go/lnst/packets"
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/require"
)

// flowsOf makes flows from client to server of the given kinds, named
// by kind and direction; UDP streams are capped at 200 Mbit/s so that
// they share the lab's CPUs with the TCP flows rather than starve them.
func flowsOf(client, server *lnsttest.Host, addr string, dur time.Duration, kinds ...perf.FlowKind) []perf.Flow {
	var out []perf.Flow
	for _, k := range kinds {
		for _, rev := range []bool{false, true} {
			if rev && (k == perf.TCPRR || k == perf.UDPRR || k == perf.TCPCRR) {
				continue // request/response is the same both ways
			}
			name := string(k)
			if rev {
				name += "_rev"
			}
			f := perf.Flow{Name: name, Kind: k, Client: client, Server: server, ServerAddr: addr, Duration: dur, Reverse: rev}
			if k == perf.UDPStream {
				f.Bitrate, f.MsgSize = "200M", 1400
			}
			out = append(out, f)
		}
	}
	return out
}

// requireFlowFigures fails the test when a flow of set measured nothing:
// no traffic received for a stream, no transaction or no latency for an
// RR or CRR flow, or a host's CPU use is missing.
func requireFlowFigures(t *testing.T, set *results.FlowSet) {
	t.Helper()
	for _, f := range set.Flows {
		switch perf.FlowKind(f.Kind) {
		case perf.TCPRR, perf.UDPRR, perf.TCPCRR:
			switch {
			case f.Metrics[results.MetricRate].Mean <= 0:
				t.Errorf("flow %s: no transaction measured: %v", f.Name, f.Metrics)
			case f.Metrics[results.MetricLatP50].Mean <= 0:
				// Percentiles come from the intervals at least half inside
				// the common window: a TCG guest's late starts can leave
				// none, while transactions were counted.
				t.Logf("flow %s: transactions but no latency percentile (no interval in the common window): %v", f.Name, f.Metrics)
			}
		default:
			if f.Metrics[results.MetricRecvBits].Mean <= 0 {
				t.Errorf("flow %s: nothing received", f.Name)
			}
		}
	}
	for _, h := range []string{set.Flows[0].Client, set.Flows[0].Server} {
		if _, ok := set.CPU[h]; !ok {
			t.Errorf("no CPU figures for host %s", h)
		}
	}
}

// TestPerfFlows measures, all at once and time-aligned, TCP and UDP
// streams both ways, tcp_rr and tcp_crr between two hosts: per flow the
// generator's and the receiver's rate, the latency percentiles and the
// transaction and connection rates, their sums over the window all the
// flows measured, and the CPU use of both hosts over that window, total
// and per CPU. Short by default: 1s flows, 2 iterations after a warm-up.
func TestPerfFlows(t *testing.T) {
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.71.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.71.2/24")
	modules.Ping{Dst: "198.18.71.2", Count: 2, Interval: 50 * time.Millisecond}.Run(t, h1)

	flows := flowsOf(h1, h2, "198.18.71.2", time.Second, perf.TCPStream, perf.UDPStream, perf.TCPRR, perf.TCPCRR)
	set := perf.MeasureFlows(t, "tcp_udp_both_ways_rr_crr", perf.Options{Iterations: 2, Interval: 250 * time.Millisecond}, flows...)
	requireFlowFigures(t, set)
	// Every flow's rates must be above zero in every iteration, and every
	// metric is judged against this machine class's baseline where one
	// is committed (unchecked, with a note saying where, otherwise).
	base := perf.LoadBaselines(t, h1, h2)
	for _, s := range perf.SubjectsOf(set) {
		perf.NonZero(t, s)
		base.Check(t, s)
	}
}

// TestShortLivedConnections is LNST's ShortLivedConnectionsRecipe: the
// rate of TCP connections opened, used for one request and response, and
// closed (tcp_crr), at several message sizes, each measured on its own.
func TestShortLivedConnections(t *testing.T) {
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.72.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.72.2/24")
	modules.Ping{Dst: "198.18.72.2", Count: 2, Interval: 50 * time.Millisecond}.Run(t, h1)

	for _, size := range []int{1000, 16000} {
		f := perf.Flow{Name: "tcp_crr", Kind: perf.TCPCRR, Client: h1, Server: h2, ServerAddr: "198.18.72.2",
			Duration: time.Second, MsgSize: size}
		set := perf.MeasureFlows(t, fmt.Sprintf("tcp_crr_%dB", size), perf.Options{Iterations: 2, Warmup: -1}, f)
		requireFlowFigures(t, set)
	}
}

// TestPingFlood is LNST's PingFloodRecipe: a flood ping (ping -f) each
// way over IPv4 and IPv6, every request answered.
func TestPingFlood(t *testing.T) {
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.73.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.73.2/24")
	h1.Iface("eth0").AddIP(t, "2001:db8:73::1/64")
	h2.Iface("eth0").AddIP(t, "2001:db8:73::2/64")
	for _, c := range []struct {
		from *lnsttest.Host
		dst  string
	}{{h1, "198.18.73.2"}, {h2, "198.18.73.1"}, {h1, "2001:db8:73::2"}, {h2, "2001:db8:73::1"}} {
		res := modules.Ping{Dst: c.dst, Count: 2000, Flood: true, Timeout: 30 * time.Second}.Run(t, c.from)
		if res.Lost != 0 || res.Received != 2000 {
			t.Errorf("flood ping from %s to %s: %v", c.from.Name(), c.dst, res)
		}
	}
}

// TestPerfSCTP measures SCTP streams (iperf3 --sctp) both ways at the
// standard set's two message sizes, time-aligned, over IPv4 and IPv6, and
// checks on h1's wire that the data went as SCTP DATA chunks. Both
// kernels need sctp: where the lab's kernel has none (this machine's) the
// recipe skips naming it, and -lnst.lab=auto runs it on VM lab guests.
func TestPerfSCTP(t *testing.T) {
	t.Parallel()
	host := func(name string) lnsttest.Requirement {
		return lnsttest.HostReq(name, lnsttest.Kernel("sctp"), lnsttest.IfaceReq("eth0", lnsttest.Net("n1")))
	}
	m := lnsttest.Require(t, host("h1"), host("h2"))
	h1, h2 := m.Host("h1"), m.Host("h2")
	enrtNoDAD(t, h1, "eth0")
	enrtNoDAD(t, h2, "eth0")
	h1.Iface("eth0").AddIP(t, "198.18.74.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.74.2/24")
	h1.Iface("eth0").AddIP(t, "2001:db8:74::1/64")
	h2.Iface("eth0").AddIP(t, "2001:db8:74::2/64")
	for _, fam := range []struct{ name, dst string }{{"ipv4", "198.18.74.2"}, {"ipv6", "2001:db8:74::2"}} {
		t.Run(fam.name, func(t *testing.T) {
			enrtPing(t, h1, fam.dst)
			flows, opts := perf.CurrentProfile(time.Second, 1).Standard(perf.StandardSet{Client: h1, Server: h2, Addr: fam.dst, NoUDP: true, SCTP: true})
			var sctp []perf.Flow
			for _, f := range flows {
				if f.Kind == perf.SCTPStream {
					sctp = append(sctp, f)
				}
			}
			require.Len(t, sctp, 4, "sctp_stream at two sizes both ways")
			// The headers are enough, and a few MiB of them: the
			// streams carry some hundred MB.
			c := h1.Iface("eth0").Capture(t, "sctp", lnsttest.CaptureSnaplen(96), lnsttest.CaptureMaxBytes(4<<20))
			requireFlowFigures(t, perf.MeasureFlows(t, "sctp "+fam.name, opts, sctp...))
			c.Expect(t, packets.Match{Proto: "sctp-data"}, lnsttest.AtLeast(100))
		})
	}
}
