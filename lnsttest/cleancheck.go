package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The lab's hosts are reused by every recipe whose topology fits, and the
// restore after each recipe is what keeps them clean. The clean check
// proves it for the whole run: a snapshot of each lab host when the lab
// made it, and another when the run ends; Main fails the run, naming the
// host and the lines that differ, when they are not the same.

// snapshotScript prints what a recipe may change on a host and must have
// put back: links (with master, MTU, state and addresses), addresses,
// routes and rules of both families in every table, permanent neighbours,
// each link's ethtool offload features, ring sizes, coalescing, channels
// and RSS (indirection table, key, hash function), each queue's RPS and
// XPS CPUs, every interrupt's CPU list (the machine's, shown to every
// host), its qdiscs, classes and the filters on its qdiscs and ingress
// hooks, xfrm states (without keys or counters) and policies, L2TP
// tunnels and sessions (where l2tp_netlink is loaded: the check loads no
// module), its nftables ruleset (without counter values: traffic changes
// them), its MPTCP endpoints and limits, the ports and flows of every Open
// vSwitch bridge (where ovsdb-server answers), and
// every sysctl under /proc/sys/net the namespace shows (the per-device
// ones, forwarding, and the others such as tcp_congestion_control). (Namespaces made with
// Host.Netns are unnamed: they end with the recipe's restore.)
// Counters, timers and dynamic neighbours are left out: traffic changes
// them; so are the sysctls that change on their own or list what modules
// are loaded (snapshotVolatile). Files are checked apart (cleanFiles).
// It is the fallback for an agent that lacks SnapshotHosts, which reads
// all of this itself, in Go.
const snapshotScript = `ip -d -o link show | sed 's/ \(qlen\|numtxqueues\|numrxqueues\|gso_max_size\|gso_max_segs\|tso_max_size\|tso_max_segs\|gro_max_size\|gso_ipv4_max_size\|gro_ipv4_max_size\) [0-9]*//g'
ip -o addr show
ip route show table all
ip -6 route show table all
ip rule show
ip -6 rule show
ip neigh show nud permanent
if command -v ethtool >/dev/null; then
	for d in /sys/class/net/*; do
		d=${d##*/}
		for o in -k -g -c -l -x; do ethtool $o "$d" 2>/dev/null | sed "1d; s|^|ethtool$o $d |"; done
	done
fi
if command -v tc >/dev/null; then
	tc qdisc show
	for d in /sys/class/net/*; do
		d=${d##*/}
		tc class show dev "$d" | sed "s|^|tc-class dev $d |"
		for p in $(tc qdisc show dev "$d" | awk '$3 != "0:" && $3 != "ffff:" {print "parent=" $3} $2 == "ingress" {print "ingress"} $2 == "clsact" {print "ingress egress"}'); do
			tc filter show dev "$d" $(echo "$p" | tr = ' ') | sed "s|^|tc-filter $p dev $d |"
		done
	done
fi
grep -s . /sys/class/net/*/queues/*/rps_cpus /sys/class/net/*/queues/*/xps_cpus /proc/irq/*/smp_affinity_list
grep -r . /proc/sys/net 2>/dev/null | grep -v -e '/stable_secret:' -e '/tcp_fastopen_key:' -e 'available_[a-z_]*:' -e '/nf_conntrack_count:'
if command -v ovs-vsctl >/dev/null && ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
	for b in $(ovs-vsctl --timeout=5 list-br); do
		ovs-vsctl --timeout=5 list-ports "$b" | sed "s|^|ovs-port $b |"
		ovs-ofctl --no-stats dump-flows "$b" 2>/dev/null | sed "s|^|ovs-flow $b |"
	done
fi
if command -v nft >/dev/null; then
	nft -s list ruleset 2>/dev/null | sed 's|^|nft |'
fi
ip mptcp endpoint show 2>/dev/null | sed 's|^|mptcp-endpoint |'
ip mptcp limits show 2>/dev/null | sed 's|^|mptcp-limits |'
ip xfrm state 2>/dev/null | grep -e '^src ' -e '^	proto ' -e '^	mark ' -e '^	if_id ' | sed 's/^/xfrm-state /'
ip xfrm policy 2>/dev/null | grep -v -e '^	lastused' | sed 's/^/xfrm-policy /'
if [ -d /sys/module/l2tp_netlink ]; then ip l2tp show tunnel 2>/dev/null | sed 's/^/l2tp /'; ip l2tp show session 2>/dev/null | sed 's/^/l2tp /'; fi
true
`

// cleanCheck holds the snapshots taken when lab hosts were made.
type cleanCheck struct {
	hosts map[string]snapHost // by agent-side name
	// files are the paths PutFile and TempDir changed on lab hosts, with
	// what was there before the first change (fileScript's output).
	files map[cleanFile]string
}

// cleanFile is a path on a lab host.
type cleanFile struct {
	host string // the key of hosts
	path string
}

// fileScript prints the path it is given (with the name appended when
// the path is an existing directory, as PutFile puts into it) and, when
// something is there, every entry under it with its type, mode, owner,
// size or link target, and the checksums of its files. Nothing after the
// path means nothing is there.
const fileScript = `p=$1
if [ -n "$2" ] && [ -d "$p" ]; then p="${p%/}/$2"; fi
echo "$p"
if [ -e "$p" ] || [ -L "$p" ]; then
	{ find "$p" \( -type d -printf '%p d %m %U:%G\n' \) -o -printf '%p %y %m %U:%G %s %l\n'; find "$p" -type f -exec md5sum {} +; } | sort
fi`

// runFileScript runs fileScript on a host.
func runFileScript(c pb.AgentClient, host, path, name string) (where, state string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := pb.RunJobWhole(ctx, c, &pb.StartJobRequest{Host: host, Argv: []string{"sh", "-c", fileScript, "sh", path, name}, Desc: "clean check of " + path, Internal: true})
	if err != nil {
		return "", "", err
	}
	if r.ExitCode != 0 {
		return "", "", fmt.Errorf("clean check of %s exited %d: %s", path, r.ExitCode, r.Stderr)
	}
	where, state, _ = strings.Cut(string(r.Stdout), "\n")
	return where, state, nil
}

// cleanHost returns the clean check's key of the lab host h is (or is a
// namespace of: they share its filesystem); false when the clean check
// does not cover it (a pool machine).
func (s *session) cleanHost(h *Host) (string, snapHost, bool) {
	for h.outer != nil {
		h = h.outer
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, sh := range s.clean.hosts {
		if sh.client == h.client && sh.id == h.id {
			return k, sh, true
		}
	}
	return "", snapHost{}, false
}

// noteFile records what is at path on h (in it under name, when it is a
// directory), before PutFile changes it, for the clean check after the
// run; absent says it is known to be new (TempDir) and need not be read.
// A path inside one already recorded is not: that record holds what was
// there before the run.
func (s *session) noteFile(h *Host, path, name string, absent bool) error {
	key, sh, ok := s.cleanHost(h)
	if !ok {
		return nil
	}
	if s.cleanCovered(key, path) {
		return nil // what was there before is in an earlier record: no job to read it again
	}
	where, state := path, ""
	if !absent {
		var err error
		if where, state, err = runFileScript(sh.client, sh.id, path, name); err != nil {
			return fmt.Errorf("clean check: read %s on %s before changing it: %w", path, h.name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clean.files == nil {
		s.clean.files = map[cleanFile]string{}
	}
	if s.coveredLocked(key, where) {
		return nil // what was there before is in an earlier record
	}
	s.clean.files[cleanFile{host: key, path: where}] = state
	return nil
}

// cleanCovered reports whether a record of host key already holds path.
func (s *session) cleanCovered(key, path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.coveredLocked(key, path)
}

// coveredLocked is cleanCovered with s.mu held.
func (s *session) coveredLocked(key, path string) bool {
	for g := range s.clean.files {
		if g.host == key && within(path, g.path) {
			return true
		}
	}
	return false
}

// within reports whether path is dir or under it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// withoutUnder drops the lines of fileScript's output about entries in
// any of dirs (a find line starts with the entry's path, an md5sum line
// ends with it).
func withoutUnder(state string, dirs []string) string {
	var keep []string
	for _, l := range strings.Split(state, "\n") {
		p, _, _ := strings.Cut(l, " ")
		if _, sum, ok := strings.Cut(l, "  "); ok && len(p) == 32 {
			p = sum
		}
		if !slices.ContainsFunc(dirs, func(d string) bool { return within(p, d) }) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

type snapHost struct {
	name   string // in the recipe that made it
	client pb.AgentClient
	id     string // the agent's host id ("" for a VM guest)
	before string
}

// snapshot takes a host's snapshot: with the agent's SnapshotHosts, or
// with snapshotScript run as a job on an agent that lacks it (an older
// one). The two write different lines: a host's snapshots must all come
// from the same agent, as they do (a lab host's agent lives as long as
// the run).
func snapshot(c pb.AgentClient, host string) (string, error) {
	out, err := snapshotHosts(c, []string{host})
	if err != nil {
		return "", err
	}
	return out[0], nil
}

// snapBatch is how many hosts one SnapshotHosts call asks for: a host's
// snapshot is ~50 KB, and a reply must stay under gRPC's 4 MiB.
const snapBatch = 32

// snapshotHosts takes the snapshots of hosts of one agent, snapBatch
// hosts a call where the agent has SnapshotHosts, the calls in parallel;
// in the order given.
func snapshotHosts(c pb.AgentClient, hosts []string) ([]string, error) {
	if len(hosts) <= snapBatch {
		return snapshotBatch(c, hosts)
	}
	out := make([]string, len(hosts))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := 0; i < len(hosts); i += snapBatch {
		batch := hosts[i:min(i+snapBatch, len(hosts))]
		wg.Go(func() {
			o, err := snapshotBatch(c, batch)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			copy(out[i:], o)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// snapshotBatch is one call of snapshotHosts.
func snapshotBatch(c pb.AgentClient, hosts []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := c.SnapshotHosts(ctx, &pb.SnapshotRequest{Hosts: hosts})
	if status.Code(err) == codes.Unimplemented {
		out := make([]string, len(hosts))
		for i, h := range hosts {
			if out[i], err = snapshotByScript(c, h); err != nil {
				return nil, fmt.Errorf("host %q: %w", h, err)
			}
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if len(r.Hosts) != len(hosts) {
		return nil, fmt.Errorf("the agent answered %d snapshots for %d hosts", len(r.Hosts), len(hosts))
	}
	out := make([]string, len(hosts))
	for i, h := range r.Hosts {
		if len(h.Errors) > 0 {
			return nil, fmt.Errorf("snapshot of host %q is incomplete: %s", hosts[i], strings.Join(h.Errors, "; "))
		}
		out[i] = h.Text
	}
	return out, nil
}

// snapshotByScript runs snapshotScript on a host.
func snapshotByScript(c pb.AgentClient, host string) (string, error) {
	return runSnapshotScript(c, host, snapshotScript)
}

// runSnapshotScript runs script on a host and returns what it printed.
func runSnapshotScript(c pb.AgentClient, host, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := pb.RunJobWhole(ctx, c, &pb.StartJobRequest{Host: host, Argv: []string{"sh", "-c", script}, Desc: "clean check snapshot", Internal: true})
	if err != nil {
		return "", err
	}
	if r.ExitCode != 0 {
		return "", fmt.Errorf("snapshot exited %d: %s", r.ExitCode, r.Stderr)
	}
	return string(r.Stdout), nil
}

// snapInstance records the state of a freshly made lab instance's hosts:
// the namespace hosts in one call to the lab's agent, each VM guest by
// its own agent (snapinstance.go).
func (s *session) snapInstance(lab *pool.Lab, in *pool.Instance) error {
	var names, ids []string
	guests := map[string]string{}
	record := func(name, id string, c pb.AgentClient, host, out string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.clean.hosts == nil {
			s.clean.hosts = map[string]snapHost{}
		}
		s.clean.hosts[id] = snapHost{name: name, client: c, id: host, before: out}
	}
	// The lab took each namespace host's snapshot as it built it
	// (pool.LabOptions.SnapshotFresh), overlapping the other hosts'
	// builds; only those it has none of, or an incomplete one, are
	// taken here.
	defer in.DropFreshSnapshots()
	for name, id := range in.Hosts {
		if g, _ := in.GuestClient(name); g != nil {
			guests[name] = id
			continue
		}
		if sn := in.FreshSnapshot(name); sn != nil && sn.Host == id && len(sn.Errors) == 0 {
			record(name, id, lab.Client(), id, sn.Text)
			continue
		}
		names, ids = append(names, name), append(ids, id)
	}
	var errs []error
	if len(ids) > 0 {
		outs, err := snapshotHosts(lab.Client(), ids)
		if err != nil {
			errs = append(errs, fmt.Errorf("clean check: snapshot of %d lab hosts (%s...): %w", len(ids), ids[0], err))
		} else {
			for i, id := range ids {
				record(names[i], id, lab.Client(), id, outs[i])
			}
		}
	}
	errs = append(errs, snapEach(guests, func(name, id string) error {
		g, _ := in.GuestClient(name)
		out, err := snapshot(g, "")
		if err != nil {
			return fmt.Errorf("clean check: snapshot of lab host %s: %w", id, err)
		}
		record(name, id, g, "", out)
		return nil
	}))
	return errors.Join(errs...)
}

// checkClean compares every lab host with its first snapshot.
func (s *session) checkClean() error {
	s.mu.Lock()
	hosts := s.clean.hosts
	s.mu.Unlock()
	var problems []string
	// The namespace hosts of one agent are snapshotted together, as
	// snapInstance took them.
	afters, errs := map[string]string{}, map[string]error{}
	byClient := map[pb.AgentClient][]string{}
	for id, h := range hosts {
		if h.id != "" {
			byClient[h.client] = append(byClient[h.client], id)
		}
	}
	for c, ids := range byClient {
		outs, err := snapshotHosts(c, ids)
		for i, id := range ids {
			if err != nil {
				errs[id] = err
			} else {
				afters[id] = outs[i]
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(hosts)) {
		h := hosts[id]
		after, err := afters[id], errs[id]
		if h.id == "" {
			after, err = snapshot(h.client, h.id)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("lab host %s: %v", id, err))
			continue
		}
		// A VM guest is held to it too, though it is thrown away after
		// the run: what is left on it would be left on a pool machine.
		before := withoutFallbacks(h.before)
		if d := lineDiff(before, withoutNewSysctls(before, withoutFallbacks(after))); d != "" {
			problems = append(problems, fmt.Sprintf("lab host %s (%s) is not as the lab made it:\n%s", id, h.name, d))
		}
	}
	s.mu.Lock()
	files := maps.Clone(s.clean.files)
	s.mu.Unlock()
	for _, f := range slices.SortedFunc(maps.Keys(files), func(a, b cleanFile) int {
		return strings.Compare(a.host+"\x00"+a.path, b.host+"\x00"+b.path)
	}) {
		h := hosts[f.host]
		_, after, err := runFileScript(h.client, h.id, f.path, "")
		if err != nil {
			problems = append(problems, fmt.Sprintf("lab host %s: %v", f.host, err))
			continue
		}
		// A path recorded inside this one (put into it before this one
		// was) is checked against its own record.
		var inner []string
		for g := range files {
			if g.host == f.host && g.path != f.path && within(g.path, f.path) {
				inner = append(inner, g.path)
			}
		}
		if d := lineDiff(withoutUnder(files[f], inner), withoutUnder(after, inner)); d != "" {
			problems = append(problems, fmt.Sprintf("lab host %s (%s): %s, changed by PutFile or TempDir, is not as before:\n%s", f.host, h.name, f.path, d))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("clean check after the run: %s", strings.Join(problems, "\n"))
	}
	return nil
}

// withoutNewSysctls drops from after the sysctls outside conf/ and
// neigh/ (the per-device ones) that before lacks: a module a recipe
// loaded (sctp, nf_conntrack...) adds its sysctls to every namespace, and
// no restore can unload it.
func withoutNewSysctls(before, after string) string {
	const prefix = "/proc/sys/net/"
	had := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		if key, _, ok := strings.Cut(l, ":"); ok && strings.HasPrefix(key, prefix) {
			had[key] = true
		}
	}
	var out []string
	for _, l := range strings.Split(after, "\n") {
		key, _, ok := strings.Cut(l, ":")
		if ok && strings.HasPrefix(key, prefix) && !had[key] && !strings.Contains(key, "/conf/") && !strings.Contains(key, "/neigh/") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// withoutFallbacks drops the lines about fallback tunnel devices (gre0,
// tunl0, sit0, ip6tnl0...), their ethtool lines among them: the kernel makes them in every namespace when
// a recipe's first tunnel loads the module, and no restore can take a
// loaded module back.
func withoutFallbacks(snap string) string {
	var names []string
	for _, l := range strings.Split(snap, "\n") {
		if _, rest, ok := strings.Cut(l, ": "); ok {
			if name, _, ok := strings.Cut(rest, "@NONE:"); ok && !strings.Contains(name, " ") {
				names = append(names, name)
			}
		}
	}
	var out []string
	for _, l := range strings.Split(snap, "\n") {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(l, "ethtool-") && strings.HasPrefix(l[strings.Index(l, " ")+1:], n+" ") ||
				strings.Contains(l, ": "+n+"@NONE:") || strings.Contains(l, "/"+n+"/") || strings.HasSuffix(l, " dev "+n) || strings.Contains(l, " dev "+n+" ") {
				keep = false
			}
		}
		if keep {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// lineDiff lists the lines only in a ("-") and only in b ("+"), in order,
// "" when both hold the same lines; blank lines do not count.
func lineDiff(a, b string) string {
	lines := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
		return out
	}
	la, lb := lines(a), lines(b)
	count := map[string]int{}
	for _, l := range la {
		count[l]++
	}
	for _, l := range lb {
		count[l]--
	}
	var out []string
	for _, l := range la {
		if count[l] > 0 {
			out = append(out, "- "+l)
			count[l]--
		}
	}
	for _, l := range lb {
		if count[l] < 0 {
			out = append(out, "+ "+l)
			count[l]++
		}
	}
	return strings.Join(out, "\n")
}
