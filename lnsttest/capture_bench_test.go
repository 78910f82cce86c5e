package lnsttest

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"testing"

	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/packets"
	"github.com/lnst-go/lnst/pool"
)

// benchLabPair leases a two-host instance of the namespace lab, h1 and h2
// with eth0 on one network, as Require does for a recipe.
func benchLabPair(b *testing.B) (*Host, *Host) {
	b.Helper()
	s := current()
	if s == nil || s.pool != nil {
		b.Skip("requires the local lab: run under lnsttest.Main without -lnst.pool")
	}
	lab, err := s.labNow()
	if err != nil {
		b.Fatalf("start the lab: %v", err)
	}
	eth0 := []pool.TopoIface{{Name: "eth0", Net: "n1"}}
	// The lab's provisioner, as Require uses it: its instance's
	// interfaces are ready (DAD done) before the clean check's snapshot.
	ctx := context.Background()
	lp := lab.Provisioner()
	res, err := lp.Reserve(ctx, pool.Request{Topology: pool.Topology{Hosts: []pool.TopoHost{{Name: "h1", Ifaces: eth0}, {Name: "h2", Ifaces: eth0}}}})
	if err == nil && res.Instance.Fresh {
		if err = s.snapInstance(lab, res.Instance); err != nil {
			lp.Release(ctx, res)
		}
	}
	if err != nil {
		b.Fatalf("lab hosts: %v", err)
	}
	b.Cleanup(func() { lp.Release(ctx, res) })
	in := res.Instance
	host := func(name string) *Host {
		return &Host{s: s, client: lab.Client(), name: name, id: in.Hosts[name], ifaces: map[string]string{"eth0": in.Ifname(name, "eth0")}}
	}
	return host("h1"), host("h2")
}

// benchIperf runs a 2 s iperf3 TCP flow from h1 to addr and returns its
// throughput in bits per second, as the receiver counted it.
func benchIperf(b *testing.B, h1 *Host, addr string) float64 {
	b.Helper()
	out := h1.Output(b, "iperf3 -4 -J -t 2 -c "+addr)
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.End.SumReceived.BitsPerSecond <= 0 {
		b.Fatalf("iperf3 -J output: %v\n%s", err, out)
	}
	return r.End.SumReceived.BitsPerSecond
}

// BenchmarkCaptureIperf measures what a capture costs a flow: iperf3 TCP
// throughput from h1 to h2 over a lab link (veth pair and bridge) with a
// capture on h1's eth0 running, against without, in the same run,
// interleaved round by round (the order alternating), and prints
// RATIO capture_on/capture_off with its spread (target >= 0.8).
//
// The capture is -lnst.capture's: every packet, 65535 bytes of each kept,
// streamed to the controller and written as pcapng (to io.Discard here),
// but with no 64 MiB bound, so it runs for the whole flow.
//
// The capture does not keep up with a full-speed flow at that snaplen: it
// drops (and counts) part of the packets, reported as lost-share; those
// drops are what bound its cost. Where the cost goes: the flow's packets are segmentation-offload
// super-packets (up to 64 KiB) on a veth, so there are few of them per
// byte; for each, the kernel clones the skb to the packet socket
// (dev_queue_xmit_nit) and runs the filter, the agent copies up to 64 KiB
// to user space with one recvmsg, wraps it in protobuf and sends it over
// the agent's unix socket (another copy, and gRPC's framing), and the
// controller decodes it and writes it out. All of that is CPU, taken from
// the same cores iperf3's sender and receiver run on (two here): the
// ratio is how much of their CPU the capture took, and it falls with a
// larger snaplen (bytes copied) more than with the packet rate.
func BenchmarkCaptureIperf(b *testing.B) {
	h1, h2 := benchLabPair(b)
	d1, d2 := h1.device(h1.ifaces["eth0"]), h2.device(h2.ifaces["eth0"])
	d1.AddIP(b, "198.18.72.1/24")
	d2.AddIP(b, "198.18.72.2/24")
	srv := h2.Start(b, "exec iperf3 -s -B 198.18.72.2")
	defer srv.Kill(b, 15)
	// The server listens within a few ms; a client before that is refused.
	WaitFor(b, "iperf3 server on h2", 10e9, func() bool {
		return h2.Output(b, "ss -Hltn 'sport = :5201' | wc -l") != "0\n"
	})
	benchIperf(b, h1, "198.18.72.2") // warm up: ARP, caches

	// lost is, per round, the share of the flow's packets the capture
	// dropped (kernel socket buffer or agent queue full).
	var lost []float64
	on := func() float64 {
		c, err := d1.startCapture(b, "", CaptureSnaplen(runCaptureSnaplen), CaptureMaxBytes(1<<40))
		if err != nil {
			b.Fatal(err)
		}
		w, err := packets.NewWriter(io.Discard, c.iface())
		if err != nil {
			b.Fatal(err)
		}
		c.mu.Lock()
		c.sink = w.Write
		c.mu.Unlock()
		bps := benchIperf(b, h1, "198.18.72.2")
		c.Stop(b)
		st := c.stats()
		if st.Packets == 0 {
			b.Fatalf("the capture got nothing: %+v", st)
		}
		lost = append(lost, float64(st.KernelDropped+st.QueueDropped)/float64(st.Packets+st.KernelDropped))
		return bps
	}
	off := func() float64 { return benchIperf(b, h1, "198.18.72.2") }

	var ratios []float64
	for i := range max(b.N, 5) {
		var a, z float64
		if i%2 == 0 {
			a, z = on(), off()
		} else {
			z, a = off(), on()
		}
		ratios = append(ratios, a/z)
	}
	benchratio.Print("capture_on/capture_off", ratios)
	slices.Sort(lost)
	b.ReportMetric(benchratio.Median(lost), "lost-share")
}
