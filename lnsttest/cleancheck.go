package lnsttest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
)

// The lab's hosts are reused by every recipe whose topology fits, and the
// restore after each recipe is what keeps them clean. The clean check
// proves it for the whole run: a snapshot of each lab host when the lab
// made it, and another when the run ends; Main fails the run, naming the
// host and the lines that differ, when they are not the same.

// snapshotScript prints what a recipe may change on a host and must have
// put back: links (with master, MTU, state and addresses), addresses,
// routes and rules of both families in every table, permanent neighbours,
// and the per-device and forwarding sysctls. (Namespaces made with
// Host.Netns are unnamed: they end with the recipe's restore.)
// Counters, timers and dynamic neighbours are left out: traffic changes
// them.
const snapshotScript = `ip -d -o link show | sed 's/ \(qlen\|numtxqueues\|numrxqueues\|gso_max_size\|gso_max_segs\|tso_max_size\|tso_max_segs\|gro_max_size\|gso_ipv4_max_size\|gro_ipv4_max_size\) [0-9]*//g'
ip -o addr show
ip route show table all
ip -6 route show table all
ip rule show
ip -6 rule show
ip neigh show nud permanent
grep -r . /proc/sys/net/ipv4/conf /proc/sys/net/ipv6/conf /proc/sys/net/ipv4/ip_forward 2>/dev/null | grep -v '/stable_secret:'
true`

// cleanCheck holds the snapshots taken when lab hosts were made.
type cleanCheck struct {
	hosts map[string]snapHost // by agent-side name
}

type snapHost struct {
	name   string // in the recipe that made it
	client pb.AgentClient
	id     string // the agent's host id ("" for a VM guest)
	before string
}

// snapshot runs snapshotScript on a host.
func snapshot(c pb.AgentClient, host string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := pb.RunJobWhole(ctx, c, &pb.StartJobRequest{Host: host, Argv: []string{"sh", "-c", snapshotScript}, Desc: "clean check snapshot", Internal: true})
	if err != nil {
		return "", err
	}
	if r.ExitCode != 0 {
		return "", fmt.Errorf("snapshot exited %d: %s", r.ExitCode, r.Stderr)
	}
	return string(r.Stdout), nil
}

// snapInstance records the state of a freshly made lab instance's hosts.
func (s *session) snapInstance(lab *pool.Lab, in *pool.Instance) error {
	for name, id := range in.Hosts {
		c, host := lab.Client(), id
		if g, _ := in.GuestClient(name); g != nil {
			c, host = g, ""
		}
		out, err := snapshot(c, host)
		if err != nil {
			return fmt.Errorf("clean check: snapshot of lab host %s: %w", id, err)
		}
		s.mu.Lock()
		if s.clean.hosts == nil {
			s.clean.hosts = map[string]snapHost{}
		}
		s.clean.hosts[id] = snapHost{name: name, client: c, id: host, before: out}
		s.mu.Unlock()
	}
	return nil
}

// checkClean compares every lab host with its first snapshot.
func (s *session) checkClean() error {
	s.mu.Lock()
	hosts := s.clean.hosts
	s.mu.Unlock()
	var problems []string
	for _, id := range slices.Sorted(maps.Keys(hosts)) {
		h := hosts[id]
		after, err := snapshot(h.client, h.id)
		if err != nil {
			problems = append(problems, fmt.Sprintf("lab host %s: %v", id, err))
			continue
		}
		// A VM guest is held to it too, though it is thrown away after
		// the run: what is left on it would be left on a pool machine.
		if d := lineDiff(withoutFallbacks(h.before), withoutFallbacks(after)); d != "" {
			problems = append(problems, fmt.Sprintf("lab host %s (%s) is not as the lab made it:\n%s", id, h.name, d))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("clean check after the run: %s", strings.Join(problems, "\n"))
	}
	return nil
}

// withoutFallbacks drops the lines about fallback tunnel devices (gre0,
// tunl0, sit0, ip6tnl0...): the kernel makes them in every namespace when
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
			if strings.Contains(l, ": "+n+"@NONE:") || strings.Contains(l, "/"+n+"/") || strings.HasSuffix(l, " dev "+n) || strings.Contains(l, " dev "+n+" ") {
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
