package pool

import (
	"fmt"
	"sort"
	"strings"
)

// problem is a set of required hosts over the usable pool hosts, with the
// pool hosts grouped into classes: hosts with the same tuples for every
// required host are interchangeable, so the search and the matching
// count them instead of trying each.
type problem struct {
	m       *mapper
	reqs    []reqHost
	labels  []int32 // labels used by reqs
	classes [][]int // pool host indices, in pool order
	cands   [][]tupleGroup
}

// tupleGroup is one tuple of a required host and the classes offering it.
type tupleGroup struct {
	nets    []int32
	classes []int32
}

func (m *mapper) problem(reqs []reqHost) *problem {
	prob := &problem{m: m, reqs: reqs, cands: make([][]tupleGroup, len(reqs))}
	seenLabel := map[int32]bool{}
	per := make(map[int]map[int][]string) // pool host -> req -> tuples
	var order []int
	for ri, r := range reqs {
		for _, l := range r.labels {
			if !seenLabel[l] {
				seenLabel[l] = true
				prob.labels = append(prob.labels, l)
			}
		}
		for _, ht := range m.candidates(r) {
			if per[ht.host] == nil {
				per[ht.host] = map[int][]string{}
				order = append(order, ht.host)
			}
			per[ht.host][ri] = ht.tuples
		}
	}
	sort.Ints(order)
	classOf := map[string]int{}
	groupOf := make([]map[string]int, len(reqs))
	for i := range groupOf {
		groupOf[i] = map[string]int{}
	}
	for _, hi := range order {
		var sig strings.Builder
		for ri := range reqs {
			if ts, ok := per[hi][ri]; ok {
				fmt.Fprintf(&sig, "%d[%s]", ri, strings.Join(ts, ","))
			}
		}
		c, ok := classOf[sig.String()]
		if ok {
			prob.classes[c] = append(prob.classes[c], hi)
			continue
		}
		c = len(prob.classes)
		classOf[sig.String()] = c
		prob.classes = append(prob.classes, []int{hi})
		for ri := range reqs {
			for _, t := range per[hi][ri] {
				g, ok := groupOf[ri][t]
				if !ok {
					g = len(prob.cands[ri])
					groupOf[ri][t] = g
					prob.cands[ri] = append(prob.cands[ri], tupleGroup{nets: tupleNets(t)})
				}
				prob.cands[ri][g].classes = append(prob.cands[ri][g].classes, int32(c))
			}
		}
	}
	return prob
}

// consistent reports whether a tuple of r fits the partial binding binding
// (label -> network) whose inverse is owner (network -> label).
func consistent(r *reqHost, nets []int32, binding, owner []int32) bool {
	for p, l := range r.labels {
		n := nets[p]
		if b := binding[l]; b >= 0 {
			if n != b {
				return false
			}
		} else if owner[n] >= 0 {
			return false
		}
	}
	return true
}

// matching is a matching of required hosts to classes of pool hosts,
// each class holding as many required hosts as its capacity.
type matching struct {
	prob           *problem
	binding, owner []int32
	capacity       []int
	assigned       [][]int // per class, required hosts
	classOf        []int   // per required host
	visit          []int
	stamp          int
}

func (prob *problem) newMatching(binding, owner []int32, capacity []int) *matching {
	match := &matching{prob: prob, binding: binding, owner: owner, capacity: capacity,
		assigned: make([][]int, len(prob.classes)), classOf: make([]int, len(prob.reqs)), visit: make([]int, len(prob.classes))}
	if match.capacity == nil {
		match.capacity = make([]int, len(prob.classes))
		for c, members := range prob.classes {
			match.capacity[c] = len(members)
		}
	}
	return match
}

// solve matches required hosts from..end, and reports whether all fit.
func (match *matching) solve(from int) bool {
	for r := from; r < len(match.prob.reqs); r++ {
		match.stamp++
		if !match.augment(r) {
			return false
		}
	}
	return true
}

func (match *matching) augment(r int) bool {
	req := &match.prob.reqs[r]
	// First a free class, then displacing another host.
	for _, g := range match.prob.cands[r] {
		if !consistent(req, g.nets, match.binding, match.owner) {
			continue
		}
		for _, c := range g.classes {
			if len(match.assigned[c]) < match.capacity[c] {
				match.assigned[c] = append(match.assigned[c], r)
				match.classOf[r] = int(c)
				return true
			}
		}
	}
	for _, g := range match.prob.cands[r] {
		if !consistent(req, g.nets, match.binding, match.owner) {
			continue
		}
		for _, c := range g.classes {
			if match.visit[c] == match.stamp || match.capacity[c] == 0 {
				continue
			}
			match.visit[c] = match.stamp
			for k, other := range match.assigned[c] {
				if match.augment(other) {
					match.assigned[c][k] = r
					match.classOf[r] = int(c)
					return true
				}
			}
		}
	}
	return false
}

func (prob *problem) feasible(binding, owner []int32) bool {
	return prob.newMatching(binding, owner, nil).solve(0)
}

// search binds labels to pool networks, one label at a time, the label
// with the fewest feasible networks first (inOrder: in order of first use,
// for a stable enumeration), checking after each binding that the
// required hosts still fit distinct pool hosts. At each full binding it
// calls visit, and stops when visit returns true.
func (prob *problem) search(inOrder bool, visit func(binding []int32) bool) bool {
	binding := make([]int32, len(prob.m.labels))
	for i := range binding {
		binding[i] = -1
	}
	owner := make([]int32, len(prob.m.nets))
	for i := range owner {
		owner[i] = -1
	}
	if !prob.feasible(binding, owner) {
		return false
	}
	var dfs func(bound int) bool
	dfs = func(bound int) bool {
		if bound == len(prob.labels) {
			return visit(binding)
		}
		best, bestNets := int32(-1), []int32(nil)
		for _, l := range prob.labels {
			if binding[l] >= 0 {
				continue
			}
			var nets []int32
			for n := range owner {
				if owner[n] >= 0 {
					continue
				}
				binding[l], owner[n] = int32(n), l
				if prob.feasible(binding, owner) {
					nets = append(nets, int32(n))
				}
				binding[l], owner[n] = -1, -1
			}
			if len(nets) == 0 {
				return false
			}
			if best < 0 || len(nets) < len(bestNets) {
				best, bestNets = l, nets
			}
			if inOrder {
				break
			}
		}
		for _, n := range bestNets {
			binding[best], owner[n] = n, best
			stop := dfs(bound + 1)
			binding[best], owner[n] = -1, -1
			if stop {
				return true
			}
		}
		return false
	}
	return dfs(0)
}

// first is a mapping at the full binding binding, known to be feasible.
func (prob *problem) first(binding []int32) Mapping {
	owner := prob.owners(binding)
	match := prob.newMatching(binding, owner, nil)
	match.solve(0)
	out := Mapping{Hosts: map[string]HostMatch{}}
	for c, rs := range match.assigned {
		sort.Ints(rs)
		for k, r := range rs {
			hi := prob.classes[c][k]
			ifaces := prob.ifaceAssignments(&prob.reqs[r], hi, binding, 1)
			out.Hosts[prob.reqs[r].name] = prob.hostMatch(&prob.reqs[r], hi, ifaces[0])
		}
	}
	return out
}

func (prob *problem) owners(binding []int32) []int32 {
	owner := make([]int32, len(prob.m.nets))
	for i := range owner {
		owner[i] = -1
	}
	for l, n := range binding {
		if n >= 0 {
			owner[n] = int32(l)
		}
	}
	return owner
}

func (prob *problem) hostMatch(r *reqHost, hi int, ifaces []int) HostMatch {
	h := &prob.m.pool.Hosts[hi]
	hm := HostMatch{Pool: h.Name, Ifaces: map[string]string{}}
	for k, j := range ifaces {
		id := h.Ifaces[j].Name
		if id == "" {
			id = h.Ifaces[j].HWAddr
		}
		hm.Ifaces[r.ifaces[k].name] = id
	}
	return hm
}

// ifaceAssignments are up to limit (all if limit <= 0) assignments of r's
// interfaces to distinct interfaces of pool host hi on the networks binding
// binds, in order.
func (prob *problem) ifaceAssignments(r *reqHost, hi int, binding []int32, limit int) [][]int {
	h := &prob.m.pool.Hosts[hi]
	var out [][]int
	cur := make([]int, len(r.ifaces))
	used := make([]bool, len(h.Ifaces))
	var dfs func(k int) bool
	dfs = func(k int) bool {
		if k == len(r.ifaces) {
			out = append(out, append([]int(nil), cur...))
			return limit > 0 && len(out) >= limit
		}
		c := &r.ifaces[k]
		for j := range h.Ifaces {
			if used[j] || prob.m.ifNet[hi][j] != binding[c.label] || !ifaceMatches(c, &h.Ifaces[j]) {
				continue
			}
			used[j], cur[k] = true, j
			stop := dfs(k + 1)
			used[j] = false
			if stop {
				return true
			}
		}
		return false
	}
	dfs(0)
	return out
}

// enumerate calls emit with every mapping at the full binding binding, hosts
// in pool order for each required host in request order, until emit
// returns true.
func (prob *problem) enumerate(binding []int32, emit func(Mapping) bool) bool {
	owner := prob.owners(binding)
	capacity := make([]int, len(prob.classes))
	for c, members := range prob.classes {
		capacity[c] = len(members)
	}
	used := map[int]bool{}
	hosts := make([]int, len(prob.reqs))
	classOf := map[int]int{}
	for c, members := range prob.classes {
		for _, hi := range members {
			classOf[hi] = c
		}
	}
	var dfs func(r int) bool
	dfs = func(r int) bool {
		if r == len(prob.reqs) {
			return prob.emitIfaces(binding, hosts, emit)
		}
		var cands []int
		for _, g := range prob.cands[r] {
			if consistent(&prob.reqs[r], g.nets, binding, owner) {
				for _, c := range g.classes {
					cands = append(cands, prob.classes[c]...)
				}
			}
		}
		sort.Ints(cands)
		for _, hi := range cands {
			if used[hi] {
				continue
			}
			c := classOf[hi]
			used[hi], hosts[r] = true, hi
			capacity[c]--
			// The hosts after r must still fit the hosts left.
			match := prob.newMatching(binding, owner, capacity)
			ok := match.solve(r + 1)
			stop := ok && dfs(r+1)
			capacity[c]++
			used[hi] = false
			if stop {
				return true
			}
		}
		return false
	}
	return dfs(0)
}

func (prob *problem) emitIfaces(binding []int32, hosts []int, emit func(Mapping) bool) bool {
	all := make([][][]int, len(prob.reqs))
	for r := range prob.reqs {
		all[r] = prob.ifaceAssignments(&prob.reqs[r], hosts[r], binding, 0)
	}
	pick := make([]int, len(prob.reqs))
	for {
		mp := Mapping{Hosts: map[string]HostMatch{}}
		for r := range prob.reqs {
			mp.Hosts[prob.reqs[r].name] = prob.hostMatch(&prob.reqs[r], hosts[r], all[r][pick[r]])
		}
		if emit(mp) {
			return true
		}
		r := len(pick) - 1
		for ; r >= 0; r-- {
			pick[r]++
			if pick[r] < len(all[r]) {
				break
			}
			pick[r] = 0
		}
		if r < 0 {
			return false
		}
	}
}
