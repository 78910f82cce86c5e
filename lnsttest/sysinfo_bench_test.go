package lnsttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/pool"
	"golang.org/x/sys/unix"
)

// BenchmarkRecipeSysinfo runs a two-host ping recipe on the namespace lab
// with its hosts watched (-lnst.sysinfo=summary and the kernel log) and
// without (-lnst.sysinfo=off, -lnst.kernel-log=off), rounds interleaved
// (ABBA), and prints
//
//	RATIO recipe_sysinfo/recipe_bare <x> (min, max, n)
//
// The recipe is what the suite's ping recipes (recipes/enrt_test.go) do
// after Require: an address on each host's eth0, a ping of 3 requests
// 50ms apart from h1 to h2, and the restore of its changes; watched, it
// also takes the kernel log cursor and both hosts' counters before, and
// reads the kernel log and the counters again after (what Require and its
// cleanup add: one call to the lab agent each). The hosts are the lab's,
// reused across rounds as the lab reuses them across recipes. It also
// reports watch-ms/op, the time the watch adds, which is what a recipe
// with less traffic than a ping pays on top.
func BenchmarkRecipeSysinfo(b *testing.B) {
	s := current()
	if s == nil || s.pool != nil {
		b.Skip("requires the local lab: run under lnsttest.Main without -lnst.pool")
	}
	if unix.Geteuid() != 0 {
		b.Skip("the namespace lab's ping needs root")
	}
	lab, err := s.labNow()
	if err != nil {
		b.Fatalf("start the lab: %v", err)
	}
	ctx := context.Background()
	// As Require gets them.
	lp := lab.Provisioner()
	res, err := lp.Reserve(ctx, pool.Request{Topology: benchLabTopo})
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
	var hosts []matchHost
	for _, name := range []string{"h1", "h2"} {
		h := &Host{s: s, client: lab.Client(), name: name, id: in.Hosts[name], ifaces: map[string]string{"eth0": in.Ifname(name, "eth0")}}
		hosts = append(hosts, matchHost{h: h, where: "lab:" + h.id})
		s.addHostInfo("lab:"+h.id, lab.Hello())
	}
	saved := cfg
	b.Cleanup(func() { cfg = saved })
	cfg.summary = false

	n := 0
	recipe := func(watch bool) time.Duration {
		n++
		cfg.sysinfo, cfg.kernelLog = "off", "off"
		if watch {
			cfg.sysinfo, cfg.kernelLog = "summary", "on"
		}
		start := time.Now()
		st := &testState{t: b, group: agent.SessionGroup(s.id, fmt.Sprintf("bench#%d", n)), clients: map[pb.AgentClient]bool{}, start: start}
		st.startWatch(b, hosts)
		c := lab.Client()
		st.use(c)
		for i, mh := range hosts {
			if _, err := c.AddAddr(ctx, &pb.AddrRequest{Host: mh.h.id, Group: st.group, Name: mh.h.ifaces["eth0"], Cidr: fmt.Sprintf("198.18.40.%d/24", i+1)}); err != nil {
				b.Fatalf("add address on %s: %v", mh.h.name, err)
			}
		}
		r, err := c.RunJob(ctx, &pb.StartJobRequest{Host: hosts[0].h.id, Group: st.group, Argv: []string{"ping", "-c", "3", "-i", "0.05", "-W", "2", "198.18.40.2"}})
		if err != nil || r.ExitCode != 0 {
			b.Fatalf("ping: %v %v", err, r)
		}
		if errs := st.restoreErrs(ctx, c, 0); len(errs) > 0 {
			b.Fatalf("restore: %v", errs)
		}
		st.finishWatch(b)
		took := time.Since(start)
		if watch {
			if w := st.watch(); w == nil || len(w.deltas) != 2 {
				b.Fatalf("watched recipe has no counter deltas of both hosts")
			}
		}
		watchMu.Lock()
		delete(watches, st)
		watchMu.Unlock()
		return took
	}
	// Warm up: the first kernel log cursor reads the kernel's backlog,
	// the first facts of each host are read once per run.
	recipe(true)
	recipe(false)
	var watched, bare []time.Duration
	for b.Loop() {
		for i := range benchRounds {
			if i%2 == 0 {
				watched = append(watched, recipe(true))
				bare = append(bare, recipe(false))
			} else {
				bare = append(bare, recipe(false))
				watched = append(watched, recipe(true))
			}
		}
	}
	mw, _, _ := benchratio.Durations(watched)
	mb, _, _ := benchratio.Durations(bare)
	b.ReportMetric(mw.Seconds(), "sysinfo-s/op")
	b.ReportMetric(mb.Seconds(), "bare-s/op")
	b.ReportMetric(float64(mw-mb)/float64(time.Millisecond), "watch-ms/op")
	benchratio.Print("recipe_sysinfo/recipe_bare", benchratio.Ratios(watched, bare))
}
