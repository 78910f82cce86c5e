package lnsttest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/results"
)

// What a recipe's hosts did besides its jobs: their kernel log
// (kernellog.go), their counters before and after (-lnst.sysinfo), and on
// failure their agents' logs. Require starts it when it gives the hosts;
// it ends once the recipe's changes are restored, before the hosts are
// given back.

// recipeWatch is what is watched of a recipe's hosts.
type recipeWatch struct {
	mu   sync.Mutex
	kmsg []*kmsgWatch
	sys  []*sysWatch
	// agentHosts are the hosts whose agent log a failure keeps: pool and
	// VM hosts (the namespace lab's agent logs on the test's stderr).
	agentHosts []*Host

	splats    []results.KernelSplat
	deltas    []results.SysinfoDelta
	agentLogs []results.Console
}

// sysWatch is one host's counters.
type sysWatch struct {
	h      *Host
	where  string
	ifaces []string
	before *pb.SysinfoReply
}

var (
	watchMu sync.Mutex
	// watches are the recipes' watches by their state.
	watches = map[*testState]*recipeWatch{}
)

func (st *testState) watch() *recipeWatch {
	watchMu.Lock()
	defer watchMu.Unlock()
	return watches[st]
}

// startWatch starts watching the hosts Require gave t, at once on all of
// them.
func (st *testState) startWatch(t testing.TB, hosts []matchHost) {
	w := &recipeWatch{}
	for _, mh := range hosts {
		if lab := mh.h.Lab(); lab == "vm" || lab == "pool" {
			w.agentHosts = append(w.agentHosts, mh.h)
		}
	}
	var wg sync.WaitGroup
	if cfg.kernelLog {
		wg.Go(func() { w.kmsg = st.startKmsg(t, hosts) })
	}
	if cfg.sysinfo != "off" {
		for _, mh := range hosts {
			sw := &sysWatch{h: mh.h, where: mh.where}
			for _, real := range mh.h.ifaces {
				sw.ifaces = append(sw.ifaces, real)
			}
			sort.Strings(sw.ifaces)
			w.sys = append(w.sys, sw)
		}
		wg.Go(func() {
			parallel(len(w.sys), func(i int) {
				sw := w.sys[i]
				facts := !st.hasSystem(sw.where)
				r, err := sw.snapshot(t, facts)
				if err != nil {
					st.logger().Warn("sysinfo: counters not read", "host", sw.h.name, "error", err)
					return
				}
				sw.before = r
				if facts && r.Facts != nil {
					st.setSystem(sw.where, r.Facts)
				}
			})
		})
	}
	wg.Wait()
	watchMu.Lock()
	watches[st] = w
	watchMu.Unlock()
}

func (sw *sysWatch) snapshot(t testing.TB, facts bool) (*pb.SysinfoReply, error) {
	r, err := sw.h.client.SysinfoSnapshot(rpcCtx(t), &pb.SysinfoRequest{Host: sw.h.id, Ifaces: sw.ifaces, Facts: facts})
	if err != nil {
		return nil, fmt.Errorf("host %s: %s", sw.h.name, kmsgErr(err))
	}
	return r, nil
}

// finishWatch ends the watch of t's hosts: it reads their counters and
// their kernel log, fails t for a splat, and, when t failed, keeps their
// agents' logs. Require's cleanup calls it once the recipe's changes are
// restored.
func (st *testState) finishWatch(t testing.TB) {
	t.Helper()
	w := st.watch()
	if w == nil {
		return
	}
	var wg sync.WaitGroup
	splats := make([][]results.KernelSplat, len(w.kmsg))
	wg.Go(func() {
		parallel(len(w.kmsg), func(i int) { splats[i] = w.kmsg[i].check(t, st) })
	})
	deltas := make([]*results.SysinfoDelta, len(w.sys))
	wg.Go(func() {
		parallel(len(w.sys), func(i int) {
			sw := w.sys[i]
			if sw.before == nil {
				return
			}
			after, err := sw.snapshot(t, false)
			if err != nil {
				st.logger().Warn("sysinfo: counters not read after the recipe", "host", sw.h.name, "error", err)
				return
			}
			d := &results.SysinfoDelta{Host: sw.h.name, Deltas: counterDeltas(sw.before.Counters, after.Counters)}
			if cfg.sysinfo == "full" {
				b, _ := json.MarshalIndent(map[string]any{"before": sw.before.Counters, "after": after.Counters, "errors": append(sw.before.Errors, after.Errors...)}, "", "  ")
				d.File = st.writeResultFile(strings.ReplaceAll(sw.h.name, "/", "_")+".sysinfo.json", string(b)+"\n")
			}
			deltas[i] = d
		})
	})
	wg.Wait()
	w.mu.Lock()
	for _, s := range splats {
		w.splats = append(w.splats, s...)
	}
	for _, d := range deltas {
		if d != nil {
			w.deltas = append(w.deltas, *d)
		}
	}
	w.mu.Unlock()
	for _, sp := range w.splats {
		reportSplat(t, sp)
	}
	if t.Failed() {
		st.keepAgentLogs(t, w)
	}
}

// agentLogSlack is how much earlier than the recipe's start its agent
// log window starts: the clocks of controller and machine differ.
const agentLogSlack = 2 * time.Second

// keepAgentLogs writes the agent log of each pool and VM host of a failed
// recipe, from the recipe's start on, next to results.json.
func (st *testState) keepAgentLogs(t testing.TB, w *recipeWatch) {
	if cfg.results == "" || len(w.agentHosts) == 0 {
		return
	}
	since := st.start.Add(-agentLogSlack).UnixNano()
	logs := make([]*results.Console, len(w.agentHosts))
	parallel(len(w.agentHosts), func(i int) {
		h := w.agentHosts[i]
		r, err := h.client.SysinfoAgentLog(rpcCtx(t), &pb.SysinfoAgentLogRequest{SinceUnixNano: since})
		if err != nil {
			st.logger().Warn("agent log not fetched", "host", h.name, "error", kmsgErr(err))
			return
		}
		text := strings.Join(r.Lines, "\n")
		if r.Dropped {
			text = "(older lines of the recipe's window were no longer kept by the agent)\n" + text
		}
		if rel := st.writeResultFile(strings.ReplaceAll(h.name, "/", "_")+".agent.log", text+"\n"); rel != "" {
			logs[i] = &results.Console{Host: h.name, File: rel}
		}
	})
	w.mu.Lock()
	for _, l := range logs {
		if l != nil {
			w.agentLogs = append(w.agentLogs, *l)
		}
	}
	w.mu.Unlock()
}

// counterDeltas are after minus before of each counter in both that
// changed.
func counterDeltas(before, after map[string]uint64) map[string]int64 {
	d := map[string]int64{}
	for k, a := range after {
		if b, ok := before[k]; ok && a != b {
			d[k] = int64(a - b)
		}
	}
	return d
}

// errorCounter matches the last part of a counter's name that counts
// errors or drops.
var errorCounter = regexp.MustCompile(`(?i)(drop|discard|err|fail|overrun|overflow|miss|abort|squeeze|collision|prune|lost|timeout)`)

// isErrorCounter reports whether counter (link/eth0/tx_dropped) counts
// errors or drops.
func isErrorCounter(counter string) bool {
	return errorCounter.MatchString(counter[strings.LastIndex(counter, "/")+1:])
}

// counterSummary is the RESULTS SUMMARY's part for the error and drop
// counters that changed, "" if none did.
func counterSummary(deltas []results.SysinfoDelta) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	n := 0
	for _, d := range deltas {
		var names []string
		for k, v := range d.Deltas {
			if v != 0 && isErrorCounter(k) {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			if n == 0 {
				fmt.Fprintln(tw, "  HOST\tCOUNTER\tDELTA")
			}
			n++
			fmt.Fprintf(tw, "  %s\t%s\t%+d\n", d.Host, k, d.Deltas[k])
		}
	}
	tw.Flush()
	return b.String()
}

// summaryCounters is the counter part of the test's RESULTS SUMMARY.
func (st *testState) summaryCounters() string {
	w := st.watch()
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return counterSummary(w.deltas)
}

// addWatchResults adds what was watched of the test's hosts to its
// results, and forgets the watch.
func (st *testState) addWatchResults(r *results.Recipe) {
	watchMu.Lock()
	w := watches[st]
	delete(watches, st)
	watchMu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r.KernelLog, r.Sysinfo, r.AgentLogs = w.splats, w.deltas, w.agentLogs
}

// hasSystem reports whether the run's results describe machine where.
func (st *testState) hasSystem(where string) bool {
	s := current()
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.results.run.Hosts {
		if h.Name == where {
			return h.System != nil
		}
	}
	return false
}

// setSystem describes machine where in the run's results.
func (st *testState) setSystem(where string, f *pb.SysinfoFacts) {
	sys := &results.System{Kernel: f.Kernel, Cmdline: f.Cmdline, Modules: f.Modules, CPUModel: f.CpuModel, CPUs: int(f.Cpus), NUMA: []results.NUMANode{}, NICs: []results.NIC{}}
	if sys.Modules == nil {
		sys.Modules = []string{}
	}
	for _, n := range f.Numa {
		sys.NUMA = append(sys.NUMA, results.NUMANode{Node: int(n.Node), CPUs: n.Cpus, MemTotalKiB: n.MemTotalKib})
	}
	for _, n := range f.Nics {
		sys.NICs = append(sys.NICs, results.NIC{Name: n.Name, Driver: n.Driver, Firmware: n.FirmwareVersion, BusInfo: n.BusInfo})
	}
	s := current()
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.results.run.Hosts {
		if s.results.run.Hosts[i].Name == where {
			s.results.run.Hosts[i].System = sys
		}
	}
}
