package recipes

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
	"github.com/lnst-go/lnst/modules/perf"
	"github.com/stretchr/testify/require"
)

// The helpers of the ENRT-like recipes (vxlan, macvlan, MTU, bond, vlan,
// tunnels...). Their names start with enrt so that they stay apart from
// the helpers of other recipe files.

// enrtFamily is one IP family of a recipe: its name for subtests and the
// addresses of the ends.
type enrtFamily struct {
	name string
	// net formats an address of the family in network n with host part i,
	// with its prefix length.
	net func(n, i int) string
}

// enrtFamilies are IPv4 (198.18.N.I/24) and IPv6 (2001:db8:N::I/64).
var enrtFamilies = []enrtFamily{
	{"ipv4", func(n, i int) string { return fmt.Sprintf("198.18.%d.%d/24", n, i) }},
	{"ipv6", func(n, i int) string { return fmt.Sprintf("2001:db8:%x::%x/64", n, i) }},
}

// enrtAddr is the address of a prefix string, without the length.
func enrtAddr(cidr string) string {
	return netip.MustParsePrefix(cidr).Addr().String()
}

// enrtTwoHosts requires hosts h1 and h2 whose kernels have kinds, each with
// eth0 on network n1.
func enrtTwoHosts(t *testing.T, kinds ...string) *lnsttest.Match {
	t.Helper()
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.Kernel(kinds...), lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("h2", lnsttest.Kernel(kinds...), lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
	enrtNoDAD(t, m.Host("h1"), "eth0")
	enrtNoDAD(t, m.Host("h2"), "eth0")
	return m
}

// enrtTwoHostsTwoNets requires hosts h1 and h2 whose kernels have kinds,
// each with eth0 on network n1 and eth1 on network n2: the topology of the
// bonding recipes.
func enrtTwoHostsTwoNets(t *testing.T, kinds ...string) *lnsttest.Match {
	t.Helper()
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.Kernel(kinds...),
			lnsttest.IfaceReq("eth0", lnsttest.Net("n1")), lnsttest.IfaceReq("eth1", lnsttest.Net("n2"))),
		lnsttest.HostReq("h2", lnsttest.Kernel(kinds...),
			lnsttest.IfaceReq("eth0", lnsttest.Net("n1")), lnsttest.IfaceReq("eth1", lnsttest.Net("n2"))),
	)
	enrtNoDAD(t, m.Host("h1"), "eth0", "eth1")
	enrtNoDAD(t, m.Host("h2"), "eth0", "eth1")
	return m
}

// enrtPing waits until dst answers h (at most enrtReachWait), then pings
// it 3 times and requires every reply. The wait takes what a path just
// made needs before it carries packets (a bond choosing its active port
// at its next link check, neighbour resolution through a tunnel), which
// a TCG guest under load can stretch past the 3 pings' 100 ms (1 s on
// an emulated host).
func enrtPing(t *testing.T, h *lnsttest.Host, dst string) modules.PingResult {
	t.Helper()
	first := modules.Ping{Dst: dst, Count: 1, Interval: 100 * time.Millisecond, Timeout: enrtReachWait}.Run(t, h)
	require.Positive(t, first.Received, "%s -> %s: no reply within %v: %v", h.Name(), dst, enrtReachWait, first)
	// After its last request ping waits for the last reply only twice
	// the longest round trip so far, or one interval if that is longer
	// (iputils' schedule_exit); a TCG guest that answers the third late
	// would have it counted lost. An emulated host gets 500 ms. (A
	// deadline, -w, would not do: with one, ping sends past -c until
	// it has that many replies.)
	res := modules.Ping{Dst: dst, Count: 3, Interval: enrtPingInterval(h)}.Run(t, h)
	require.Equal(t, 3, res.Sent, "%s -> %s", h.Name(), dst)
	require.Zero(t, res.Lost, "%s -> %s: %v", h.Name(), dst, res)
	return res
}

// enrtPingInterval is the interval of the pings that must all be
// answered: 50 ms, 500 ms from an emulated host (see enrtPing).
func enrtPingInterval(h *lnsttest.Host) time.Duration {
	if h.Emulated() {
		return 500 * time.Millisecond
	}
	return 50 * time.Millisecond
}

// enrtReachWait bounds how long enrtPing waits for a first reply.
const enrtReachWait = 10 * time.Second

// enrtIperf runs a 1s iperf3 flow (TCP, or UDP at 100 Mbit/s) from client
// to the server at dst on server and requires that it carried data.
func enrtIperf(t *testing.T, client, server *lnsttest.Host, dst string, udp bool) modules.Iperf3Result {
	t.Helper()
	srv := modules.Iperf3Server{Bind: dst}.Start(t, server)
	c := modules.Iperf3Client{Server: dst, Duration: time.Second, UDP: udp}
	if udp {
		c.Bitrate = "100M"
	}
	res := c.Run(t, client)
	srv.Stop(t)
	require.Positive(t, res.BitsPerSecond, "%s -> %s: %v", client.Name(), dst, res)
	if udp {
		require.Less(t, res.LostPercent, 50.0, "%s -> %s: %v", client.Name(), dst, res)
	}
	t.Logf("%s -> %s: %v", client.Name(), dst, res)
	return res
}

// enrtPerf runs the standard ENRT measurement set (perf.StandardSet: TCP
// streams, UDP ones when udp and SCTP ones where both kernels have sctp,
// at two message sizes both ways, tcp_rr, tcp_crr) from client to dst on server, the streams together and then
// the request-response flows together, and requires that every flow
// carried something. Under the default perf.profile=short that
// is one 1-second iteration (3 seconds when a host is emulated, as
// perf.Profile.Standard says);
// under -lnst.set perf.profile=full, LNST's depth: 5 iterations of 60 s
// in every sub-configuration (the gro, gso and tso combinations of the
// devices the flows cross, times CPU pinning none and split), each cell
// a subtest.
func enrtPerf(t *testing.T, client, server *lnsttest.Host, dst string, udp bool) {
	t.Helper()
	prof := perf.CurrentProfile(time.Second, 1)
	// SCTP streams where both kernels have sctp, as LNST's ENRT recipes
	// measure them; not under the short profile with an emulated host,
	// whose one emulated CPU the eight streams already fill
	// (TestPerfSCTP measures SCTP there).
	sctp := (prof.Full() || !client.Emulated() && !server.Emulated()) &&
		client.HasKernel(t, "sctp") && server.HasKernel(t, "sctp")
	measure := func(t *testing.T, pin string) {
		t.Helper()
		flows, opts := prof.Standard(perf.StandardSet{Client: client, Server: server, Addr: dst, NoUDP: !udp, SCTP: sctp})
		var streams, rr []perf.Flow
		for _, f := range flows {
			f = f.Pinned(t, pin)
			switch f.Kind {
			case perf.TCPRR, perf.TCPCRR, perf.UDPRR:
				rr = append(rr, f)
			default:
				streams = append(streams, f)
			}
		}
		// The streams run together, time-aligned; the request-response
		// flows after them, together: beside streams that fill the
		// path, a transaction waits in their queues, so its latency
		// and rate would measure those queues, not the path (LNST
		// measures each flow alone).
		requireFlowFigures(t, perf.MeasureFlows(t, "enrt "+dst, opts, streams...))
		requireFlowFigures(t, perf.MeasureFlows(t, "enrt rr "+dst, opts, rr...))
	}
	if !prof.AllSubConfigs {
		measure(t, "")
		return
	}
	lnsttest.Matrix(t, prof.SubConfigs(enrtCarriers(t, client, server, dst)), func(t *testing.T, c lnsttest.Cell) {
		measure(t, c.Value("pin"))
	})
}

// enrtCarriers are the devices traffic from client to dst crosses at
// each end: the one client routes dst through and the one holding dst
// on server (the overlay device of an overlay recipe).
func enrtCarriers(t *testing.T, client, server *lnsttest.Host, dst string) []*lnsttest.Device {
	t.Helper()
	// "198.18.1.2 dev eth0 src ...", "5: eth0    inet 198.18.1.2/24 ..."
	route := strings.Fields(client.OutputArgv(t, []string{"ip", "-o", "route", "get", dst}, lnsttest.Quiet()))
	addr := strings.Fields(server.OutputArgv(t, []string{"ip", "-o", "addr", "show", "to", dst}, lnsttest.Quiet()))
	i := slices.Index(route, "dev")
	if i < 0 || i+1 >= len(route) || len(addr) < 2 {
		t.Fatalf("no device carrying %s: %s routes it %q, %s holds it %q", dst, client.Name(), route, server.Name(), addr)
	}
	return []*lnsttest.Device{client.Iface(route[i+1]), server.Iface(addr[1])}
}

// enrtOverlay pings between two addressed ends both ways, in each family,
// and runs the standard measurement set over IPv4 and IPv6 (its UDP
// streams over IPv4 when udp). ends
// holds, per family name, the addresses of h1 and h2.
func enrtOverlay(t *testing.T, h1, h2 *lnsttest.Host, ends map[string][2]string, udp bool) {
	t.Helper()
	for _, f := range enrtFamilies {
		a := ends[f.name]
		if a[0] == "" {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			enrtPing(t, h1, enrtAddr(a[1]))
			enrtPing(t, h2, enrtAddr(a[0]))
			enrtPerf(t, h1, h2, enrtAddr(a[1]), udp && f.name == "ipv4")
		})
	}
}

// enrtAddrs gives dev on each host an address of each family in network n
// (host part 1 on h1, 2 on h2) and returns them as enrtOverlay wants.
func enrtAddrs(t *testing.T, n int, devs [2]*lnsttest.Device) map[string][2]string {
	t.Helper()
	ends := map[string][2]string{}
	for _, f := range enrtFamilies {
		a := [2]string{f.net(n, 1), f.net(n, 2)}
		devs[0].AddIP(t, a[0])
		devs[1].AddIP(t, a[1])
		ends[f.name] = a
	}
	return ends
}

// enrtNoDAD turns IPv6 duplicate address detection off on h (for devices
// made from now on, and for the required interfaces ifaces, through their
// devices: their real names differ on a pool machine), so that addresses
// and devices are usable at once instead of after a second or two: the
// recipes' addresses are unique by construction. Restored at cleanup.
func enrtNoDAD(t *testing.T, h *lnsttest.Host, ifaces ...string) {
	t.Helper()
	for _, k := range []string{"all", "default"} {
		h.Sysctl(t, "net.ipv6.conf."+k+".accept_dad", "0")
	}
	for _, i := range ifaces {
		h.Iface(i).Sysctl(t, "ipv6.accept_dad", "0")
	}
}

// enrtHasTool reports whether h has the command name on its PATH.
func enrtHasTool(t *testing.T, h *lnsttest.Host, name string) bool {
	t.Helper()
	return h.Run(t, "command -v "+name, lnsttest.ExitCodes(0, 1, 127), lnsttest.Quiet()).Result().ExitCode == 0
}
