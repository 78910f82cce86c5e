package lnsttest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
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
	mu     sync.Mutex
	agents []*agentWatch
	// agentHosts are the hosts whose agent log a failure keeps: pool and
	// VM hosts (the namespace lab's agent logs on the test's stderr).
	agentHosts []*Host

	splats    []results.KernelSplat
	deltas    []results.SysinfoDelta
	agentLogs []results.Console
}

// agentWatch is what is watched through one agent: its machine's kernel
// log and its hosts' counters, each snapshot in one call.
type agentWatch struct {
	client pb.AgentClient
	kmsg   kmsgWatch
	sys    []*sysWatch
}

// sysWatch is one host's counters.
type sysWatch struct {
	h      *Host
	where  string
	ifaces []string
	before *pb.SysinfoHostReply
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

// startWatch starts watching the hosts Require gave t: one call to each
// of their agents (the namespace lab has one for all), at once.
func (st *testState) startWatch(t testing.TB, hosts []matchHost) {
	w := &recipeWatch{}
	byClient := map[pb.AgentClient]*agentWatch{}
	for _, mh := range hosts {
		lab := mh.h.Lab()
		if lab == "vm" || lab == "pool" {
			w.agentHosts = append(w.agentHosts, mh.h)
		}
		a := byClient[mh.h.client]
		if a == nil {
			a = &agentWatch{client: mh.h.client, kmsg: kmsgWatch{shared: lab == "netns" || lab == "rootless"}}
			byClient[mh.h.client] = a
			w.agents = append(w.agents, a)
		}
		a.kmsg.hosts = append(a.kmsg.hosts, mh.h.name)
		if cfg.sysinfo != "off" {
			sw := &sysWatch{h: mh.h, where: mh.where}
			for _, real := range mh.h.ifaces {
				sw.ifaces = append(sw.ifaces, real)
			}
			sort.Strings(sw.ifaces)
			a.sys = append(a.sys, sw)
		}
	}
	if cfg.kernelLog != "off" || cfg.sysinfo != "off" {
		parallel(len(w.agents), func(i int) { st.startAgent(t, w.agents[i]) })
	}
	watchMu.Lock()
	watches[st] = w
	watchMu.Unlock()
}

// startAgent takes the kernel log cursor and the counters of a's hosts.
// What cannot be read is logged, not failed: the recipe is not about it.
func (st *testState) startAgent(t testing.TB, a *agentWatch) {
	req := &pb.SysinfoRequest{KmsgCursor: cfg.kernelLog != "off"}
	facts := make([]bool, len(a.sys))
	for i, sw := range a.sys {
		facts[i] = !st.hasSystem(sw.where)
		req.Hosts = append(req.Hosts, &pb.SysinfoHostRequest{Host: sw.h.id, Ifaces: sw.ifaces, Facts: facts[i], Keep: true, Counters: cfg.sysinfo == "full"})
	}
	r, err := a.client.SysinfoSnapshot(rpcCtx(t), req)
	if err != nil {
		st.logger().Warn("kernel log and counters not watched", "hosts", strings.Join(a.kmsg.hosts, ","), "error", kmsgErr(err))
		return
	}
	if cfg.kernelLog != "off" {
		if r.KmsgCursor == nil {
			st.logger().Warn("kernel log not watched", "hosts", strings.Join(a.kmsg.hosts, ","), "error", r.KmsgError)
		}
		a.kmsg.cursor = r.KmsgCursor
	}
	for i, sw := range a.sys {
		if i >= len(r.Hosts) {
			break
		}
		hr := r.Hosts[i]
		for _, e := range hr.Errors {
			st.logger().Debug("sysinfo: not read", "host", sw.h.name, "error", e)
		}
		sw.before = hr
		if facts[i] && hr.Facts != nil {
			st.setSystem(sw.where, hr.Facts)
		}
	}
}

// finishWatch ends the watch of t's hosts: it reads their counters and
// their kernel log (one call per agent), fails t for a splat, and, when t
// failed, keeps their agents' logs. Require's cleanup calls it once the
// recipe's changes are restored.
func (st *testState) finishWatch(t testing.TB) {
	t.Helper()
	w := st.watch()
	if w == nil {
		return
	}
	splats := make([][]results.KernelSplat, len(w.agents))
	deltas := make([][]results.SysinfoDelta, len(w.agents))
	parallel(len(w.agents), func(i int) { splats[i], deltas[i] = st.finishAgent(t, w.agents[i]) })
	w.mu.Lock()
	w.splats = slices.Concat(splats...)
	w.deltas = slices.Concat(deltas...)
	w.mu.Unlock()
	for _, sp := range w.splats {
		reportSplat(t, sp)
	}
	if t.Failed() {
		st.keepAgentLogs(t, w)
	}
}

// finishAgent reads the kernel log since the cursor and the counters that
// changed on a's hosts.
func (st *testState) finishAgent(t testing.TB, a *agentWatch) ([]results.KernelSplat, []results.SysinfoDelta) {
	req := &pb.SysinfoRequest{}
	if c := a.kmsg.cursor; c != nil {
		req.KmsgRead = &pb.KmsgReadRequest{Follower: c.Follower, FromSeq: c.NextSeq}
	}
	var sys []*sysWatch
	for _, sw := range a.sys {
		if sw.before != nil {
			sys = append(sys, sw)
			req.Hosts = append(req.Hosts, &pb.SysinfoHostRequest{Host: sw.h.id, Ifaces: sw.ifaces, Since: sw.before.Baseline, Counters: cfg.sysinfo == "full"})
		}
	}
	if req.KmsgRead == nil && len(req.Hosts) == 0 {
		return nil, nil
	}
	r, err := a.client.SysinfoSnapshot(rpcCtx(t), req)
	if err != nil {
		st.logger().Warn("kernel log and counters not read after the recipe", "hosts", strings.Join(a.kmsg.hosts, ","), "error", kmsgErr(err))
		return nil, nil
	}
	var splats []results.KernelSplat
	if req.KmsgRead != nil {
		if r.Kmsg == nil {
			st.logger().Warn("kernel log not read", "hosts", strings.Join(a.kmsg.hosts, ","), "error", r.KmsgError)
		} else {
			splats = a.kmsg.splats(st, r.Kmsg)
		}
	}
	var deltas []results.SysinfoDelta
	for i, sw := range sys {
		if i >= len(r.Hosts) {
			break
		}
		after := r.Hosts[i]
		d := results.SysinfoDelta{Host: sw.h.name, Deltas: after.Deltas}
		if d.Deltas == nil {
			d.Deltas = map[string]int64{}
		}
		if cfg.sysinfo == "full" {
			b, _ := json.MarshalIndent(map[string]any{"before": sw.before.Counters, "after": after.Counters, "errors": append(sw.before.Errors, after.Errors...)}, "", "  ")
			d.File = st.writeResultFile(strings.ReplaceAll(sw.h.name, "/", "_")+".sysinfo.json", string(b)+"\n")
		}
		deltas = append(deltas, d)
	}
	return splats, deltas
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
		if text == "" {
			text = "(the agent logged nothing at its log level during the recipe)"
		}
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
