package pool

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// UnsatError says why a request does not fit the pool: the required host
// (and interface) that could not be placed, what it needs, and the pool
// hosts that came closest with what each lacks.
type UnsatError struct {
	Host    string      // the required host
	Iface   string      // its interface, "" if the host itself failed
	Need    string      // what it needs: "interface eth1 on network n2 with driver ixgbe"
	Closest []Candidate // at most 3, closest first
	More    int         // further candidates not listed
	// Short, when set, says why no pool host can do, in place of
	// Closest: the pool lacks something as a whole.
	Short string
}

// Candidate is a pool host that came close, and what it lacks.
type Candidate struct {
	Host, Why string
}

// maxClosest is how many candidates an UnsatError lists.
const maxClosest = 3

func (e *UnsatError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s needs %s", e.Host, e.Need)
	if e.Short != "" {
		b.WriteString("; " + e.Short)
		return b.String()
	}
	if len(e.Closest) == 0 {
		b.WriteString("; no pool host comes close")
		return b.String()
	}
	b.WriteString("; closest: pool host ")
	for i, c := range e.Closest {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", c.Host, c.Why)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, ", and %d more", e.More)
	}
	return b.String()
}

// ranked is a candidate with its distance: lower is closer.
type ranked struct {
	Candidate
	dist, order int
}

func (e *UnsatError) setClosest(cs []ranked) {
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].dist != cs[j].dist {
			return cs[i].dist < cs[j].dist
		}
		return cs[i].order < cs[j].order
	})
	for i, c := range cs {
		if i == maxClosest {
			e.More = len(cs) - maxClosest
			break
		}
		e.Closest = append(e.Closest, c.Candidate)
	}
}

func (r *reqHost) hostNeed() string {
	if len(r.host) == 0 {
		return "a pool host"
	}
	var parts []string
	for _, pat := range r.host {
		if pat.key == "arch" && pat.re == nil {
			parts = append(parts, "arch "+pat.value)
		} else {
			parts = append(parts, "param "+pat.String())
		}
	}
	return "a pool host with " + strings.Join(parts, " and ")
}

func (c *reqIface) need() string {
	s := fmt.Sprintf("interface %s on network %s", c.name, c.net)
	var parts []string
	if c.driver != "" {
		parts = append(parts, "driver "+c.driver)
	}
	for _, pat := range c.params {
		parts = append(parts, "param "+pat.String())
	}
	if len(parts) > 0 {
		s += " with " + strings.Join(parts, " and ")
	}
	return s
}

// diagnose explains why the request does not fit: the first required host
// (in request order) that fits no pool host by itself, else the first
// required host, and its first interface, that cannot be added to those
// before it.
func (m *mapper) diagnose() error {
	if err := m.tooFewNetworks(); err != nil {
		return err
	}
	for i := range m.reqs {
		if err := m.alone(&m.reqs[i]); err != nil {
			return err
		}
	}
	for k := range m.reqs {
		r := m.reqs[k]
		for j := 0; j <= len(r.ifaces); j++ {
			reqs := append(append([]reqHost(nil), m.reqs[:k]...), r.truncate(j))
			if !m.problem(reqs).search(false, func([]int32) bool { return true }) {
				return m.conflict(m.reqs[:k], r, j)
			}
		}
	}
	return errors.New("map: no mapping found (a bug: every requirement fits)")
}

// tooFewNetworks is an *UnsatError if the requirements label more
// networks than the pool has: each label needs a pool network of its own,
// so no choice of hosts can do. It names the first interface whose label
// is one too many.
func (m *mapper) tooFewNetworks() error {
	if len(m.labels) <= len(m.nets) {
		return nil
	}
	for _, r := range m.reqs {
		for _, c := range r.ifaces {
			if int(c.label) != len(m.nets) {
				continue
			}
			have := "no network"
			if len(m.nets) > 0 {
				have = fmt.Sprintf("%d %s (%s)", len(m.nets), plural(len(m.nets), "network", "networks"), strings.Join(m.nets, ", "))
			}
			return &UnsatError{Host: r.name, Iface: c.name, Need: c.need(),
				Short: fmt.Sprintf("the pool has %s, and the requirements label %d (%s): each label needs a pool network of its own",
					have, len(m.labels), strings.Join(m.labels, ", "))}
		}
	}
	return nil
}

// plural is one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// alone is an *UnsatError if r fits no usable pool host by itself.
func (m *mapper) alone(r *reqHost) error {
	usable := map[int]bool{}
	var hosts []int
	for _, hi := range m.usable {
		usable[hi] = true
		if hostMatches(r, &m.pool.Hosts[hi]) {
			hosts = append(hosts, hi)
		}
	}
	if len(hosts) == 0 {
		e := &UnsatError{Host: r.name, Need: r.hostNeed()}
		var cs []ranked
		for hi := range m.pool.Hosts {
			h := &m.pool.Hosts[hi]
			var why []string
			for _, pat := range hostMisses(r, h) {
				v, ok := hostParam(h, pat.key)
				if !ok {
					why = append(why, "no "+pat.key)
				} else {
					why = append(why, pat.key+" is "+v)
				}
			}
			if !usable[hi] {
				why = append(why, "not usable")
			}
			cs = append(cs, ranked{Candidate{h.Name, strings.Join(why, ", ")}, len(why), hi})
		}
		e.setClosest(cs)
		return e
	}
	for j := 1; j <= len(r.ifaces); j++ {
		if len(m.candidates(r.truncate(j))) > 0 {
			continue
		}
		c := &r.ifaces[j-1]
		e := &UnsatError{Host: r.name, Iface: c.name, Need: c.need()}
		var cs []ranked
		for _, hi := range hosts {
			cs = append(cs, m.ifaceWhy(r, j-1, hi, nil, ""))
		}
		e.setClosest(cs)
		return e
	}
	return nil
}

// ifaceWhy says why pool host hi does not give r's interface k: no
// matching interface, none on a network in nets (if not nil; users are
// the hosts with interfaces on that label), or a conflict with the other
// requirements.
func (m *mapper) ifaceWhy(r *reqHost, k, hi int, nets map[int32]bool, users string) ranked {
	h := &m.pool.Hosts[hi]
	c := &r.ifaces[k]
	var best []string
	var matching []int
	for j := range h.Ifaces {
		miss := ifaceMisses(c, &h.Ifaces[j])
		if m.ifNet[hi][j] < 0 {
			miss = append(miss, "not on a network")
		}
		if len(miss) == 0 {
			matching = append(matching, j)
		} else if best == nil || len(miss) < len(best) {
			best = miss
		}
	}
	switch {
	case len(h.Ifaces) == 0:
		return ranked{Candidate{h.Name, "has no interfaces"}, 100, hi}
	case len(matching) == 0:
		return ranked{Candidate{h.Name, strings.Join(best, ", ")}, 10 + len(best), hi}
	case nets != nil:
		on := false
		for _, j := range matching {
			on = on || nets[m.ifNet[hi][j]]
		}
		if !on {
			return ranked{Candidate{h.Name, fmt.Sprintf("has no interface on a network shared with %s %s interfaces", users, c.net)}, 5, hi}
		}
	}
	if nets != nil {
		return ranked{Candidate{h.Name, "has matching interfaces, but none that fits the networks the other hosts need"}, 1, hi}
	}
	var others []string
	for _, o := range r.ifaces[:k] {
		others = append(others, o.name)
	}
	if len(others) == 0 {
		return ranked{Candidate{h.Name, "its matching interfaces are on networks the other labels need"}, 1, hi}
	}
	return ranked{Candidate{h.Name, "has matching interfaces, but not together with " + strings.Join(others, ", ")}, 1, hi}
}

// conflict explains why r with its first j interfaces cannot be added to
// before, which fit the pool.
func (m *mapper) conflict(before []reqHost, r reqHost, j int) error {
	var hosts []int
	for _, hi := range m.usable {
		if hostMatches(&r, &m.pool.Hosts[hi]) {
			hosts = append(hosts, hi)
		}
	}
	relaxed := append([]reqHost(nil), before...)
	if j > 0 {
		relaxed = append(relaxed, r.truncate(j-1))
	}
	prob := m.problem(relaxed)
	taken := map[int]string{}
	var sol Mapping
	prob.search(false, func(binding []int32) bool { sol = prob.first(binding); return true })
	byName := map[string]int{}
	for hi := range m.pool.Hosts {
		byName[m.pool.Hosts[hi].Name] = hi
	}
	for name, hm := range sol.Hosts {
		if name != r.name {
			taken[byName[hm.Pool]] = name
		}
	}
	if j == 0 {
		e := &UnsatError{Host: r.name, Need: "one more pool host: " + r.hostNeed()}
		var cs []ranked
		for _, hi := range hosts {
			why := "cannot be combined with the other hosts"
			if t, ok := taken[hi]; ok {
				why = "taken by " + t
			}
			cs = append(cs, ranked{Candidate{m.pool.Hosts[hi].Name, why}, 0, hi})
		}
		e.setClosest(cs)
		return e
	}
	c := &r.ifaces[j-1]
	e := &UnsatError{Host: r.name, Iface: c.name, Need: c.need()}
	// The networks the label can have, and the hosts that use it.
	var nets map[int32]bool
	var users []string
	for _, q := range relaxed {
		for _, ifc := range q.ifaces {
			if ifc.label == c.label {
				users = append(users, q.name+"'s")
				break
			}
		}
	}
	if len(users) > 0 {
		nets = map[int32]bool{}
		prob.search(true, func(binding []int32) bool {
			nets[binding[c.label]] = true
			return false
		})
	}
	var cs []ranked
	for _, hi := range hosts {
		rk := m.ifaceWhy(&r, j-1, hi, nets, strings.Join(users, " and "))
		if t, ok := taken[hi]; ok && rk.dist <= 1 {
			rk.Why = "taken by " + t
		}
		cs = append(cs, rk)
	}
	e.setClosest(cs)
	return e
}
