package pool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Pattern is a required value of a param: the exact value, or with Regexp
// a regular expression that must match the whole value. A param the pool
// does not give matches no pattern.
type Pattern struct {
	Value  string
	Regexp bool
}

// HostReq is a host a recipe requires: Arch ("" for any) and Params must
// match the pool host's (its arch is also its param "arch").
type HostReq struct {
	Name, Arch string
	Params     map[string]Pattern
	Ifaces     []IfaceReq
}

// IfaceReq is an interface a required host needs. Net is a label:
// interfaces with one label map to interfaces on one pool network, and
// different labels to different pool networks. Driver "" is any driver;
// Params match the pool interface's params, where its speed is the param
// "speed".
type IfaceReq struct {
	Name, Net, Driver string
	Params            map[string]Pattern
}

// Mapping assigns pool hosts to required hosts, by required host name.
type Mapping struct {
	Hosts map[string]HostMatch
}

// HostMatch is the pool host of a required host (Pool, its name in the
// pool) and its interfaces: required interface name to the pool
// interface's name, or its hwaddr if it has no name.
type HostMatch struct {
	Pool   string
	Ifaces map[string]string
}

// Map finds a mapping of reqs to the pool's hosts for which usable returns
// true (nil: all hosts). If there is none, the error is an *UnsatError
// that says which requirement failed and which pool hosts came closest.
func Map(p *Pool, reqs []HostReq, usable func(host string) bool) (Mapping, error) {
	m, err := newMapper(p, reqs, usable)
	if err != nil {
		return Mapping{}, err
	}
	pb := m.problem(m.all())
	var out Mapping
	found := pb.search(false, func(beta []int32) bool {
		out = pb.first(beta)
		return true
	})
	if !found {
		return Mapping{}, m.diagnose()
	}
	return out, nil
}

// AllMatches returns the distinct mappings of reqs to the pool (different
// assignments of pool hosts or interfaces), at most limit of them (no
// limit if limit <= 0), in a deterministic order. With no mapping at all,
// the error is an *UnsatError as from Map.
func AllMatches(p *Pool, reqs []HostReq, limit int) ([]Mapping, error) {
	m, err := newMapper(p, reqs, nil)
	if err != nil {
		return nil, err
	}
	pb := m.problem(m.all())
	var out []Mapping
	pb.search(true, func(beta []int32) bool {
		return pb.enumerate(beta, func(mp Mapping) bool {
			out = append(out, mp)
			return limit > 0 && len(out) >= limit
		})
	})
	if len(out) == 0 {
		return nil, m.diagnose()
	}
	return out, nil
}

// matcher is a compiled Pattern of one param.
type matcher struct {
	key, value string
	re         *regexp.Regexp
}

func (mt matcher) match(v string, ok bool) bool {
	if !ok {
		return false
	}
	if mt.re != nil {
		return mt.re.MatchString(v)
	}
	return v == mt.value
}

func (mt matcher) String() string {
	if mt.re != nil {
		return fmt.Sprintf("%s=~/%s/", mt.key, mt.value)
	}
	return fmt.Sprintf("%s=%s", mt.key, mt.value)
}

func compile(params map[string]Pattern) ([]matcher, error) {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ms []matcher
	for _, k := range keys {
		p := params[k]
		mt := matcher{key: k, value: p.Value}
		if p.Regexp {
			re, err := regexp.Compile(`^(?:` + p.Value + `)$`)
			if err != nil {
				return nil, fmt.Errorf("param %s: %w", k, err)
			}
			mt.re = re
		}
		ms = append(ms, mt)
	}
	return ms, nil
}

// creq is a compiled HostReq.
type creq struct {
	idx    int // in the request
	name   string
	host   []matcher // arch first, then params
	ifaces []cifc
	labels []int32 // distinct labels of its interfaces; cifc.pos indexes it
}

type cifc struct {
	name, net, driver string
	label             int32
	pos               int
	params            []matcher
}

// truncate is r with only its first n interfaces.
func (r creq) truncate(n int) creq {
	r.ifaces = r.ifaces[:n]
	r.labels = nil
	for _, ifc := range r.ifaces {
		if ifc.pos >= len(r.labels) {
			r.labels = append(r.labels, ifc.label)
		}
	}
	return r
}

// mapper holds one request against one pool.
type mapper struct {
	pool   *Pool
	usable []int // indices of usable pool hosts
	netID  map[string]int32
	nets   []string
	ifNet  [][]int32 // per pool host, per interface: network id or -1
	labels []string
	reqs   []creq
	tuples map[[2]int][]hostTuples // cache by request index and interface count
}

func newMapper(p *Pool, reqs []HostReq, usable func(string) bool) (*mapper, error) {
	if p == nil || len(reqs) == 0 {
		return nil, errors.New("map: no pool or no required host")
	}
	m := &mapper{pool: p, netID: map[string]int32{}, tuples: map[[2]int][]hostTuples{}}
	for i := range p.Hosts {
		h := &p.Hosts[i]
		nets := make([]int32, len(h.Ifaces))
		for j, ifc := range h.Ifaces {
			nets[j] = -1
			if ifc.Net == "" {
				continue
			}
			id, ok := m.netID[ifc.Net]
			if !ok {
				id = int32(len(m.nets))
				m.netID[ifc.Net] = id
				m.nets = append(m.nets, ifc.Net)
			}
			nets[j] = id
		}
		m.ifNet = append(m.ifNet, nets)
		if usable == nil || usable(h.Name) {
			m.usable = append(m.usable, i)
		}
	}
	labelID := map[string]int32{}
	names := map[string]bool{}
	for i, hr := range reqs {
		if hr.Name == "" || names[hr.Name] {
			return nil, fmt.Errorf("map: required host #%d: name %q is empty or used twice", i+1, hr.Name)
		}
		names[hr.Name] = true
		r := creq{idx: i, name: hr.Name}
		if hr.Arch != "" {
			r.host = append(r.host, matcher{key: "arch", value: hr.Arch})
		}
		ms, err := compile(hr.Params)
		if err != nil {
			return nil, fmt.Errorf("map: host %s: %w", hr.Name, err)
		}
		r.host = append(r.host, ms...)
		pos := map[int32]int{}
		inames := map[string]bool{}
		for _, ir := range hr.Ifaces {
			if ir.Name == "" || inames[ir.Name] || ir.Net == "" {
				return nil, fmt.Errorf("map: host %s: interface %q: empty or repeated name, or no network label", hr.Name, ir.Name)
			}
			inames[ir.Name] = true
			ms, err := compile(ir.Params)
			if err != nil {
				return nil, fmt.Errorf("map: host %s: interface %s: %w", hr.Name, ir.Name, err)
			}
			l, ok := labelID[ir.Net]
			if !ok {
				l = int32(len(m.labels))
				labelID[ir.Net] = l
				m.labels = append(m.labels, ir.Net)
			}
			p, ok := pos[l]
			if !ok {
				p = len(r.labels)
				pos[l] = p
				r.labels = append(r.labels, l)
			}
			r.ifaces = append(r.ifaces, cifc{name: ir.Name, net: ir.Net, driver: ir.Driver, label: l, pos: p, params: ms})
		}
		m.reqs = append(m.reqs, r)
	}
	return m, nil
}

func (m *mapper) all() []creq { return m.reqs }

func hostParam(h *Host, key string) (string, bool) {
	if key == "arch" {
		return h.Arch, h.Arch != ""
	}
	v, ok := h.Params[key]
	return v, ok
}

func ifaceParam(ifc *Iface, key string) (string, bool) {
	if key == "speed" {
		return strconv.Itoa(ifc.Speed), ifc.Speed > 0
	}
	v, ok := ifc.Params[key]
	return v, ok
}

// hostMisses are the host requirements of r that pool host h misses.
func hostMisses(r *creq, h *Host) []matcher {
	var miss []matcher
	for _, mt := range r.host {
		if !mt.match(hostParam(h, mt.key)) {
			miss = append(miss, mt)
		}
	}
	return miss
}

func hostMatches(r *creq, h *Host) bool {
	for _, mt := range r.host {
		if !mt.match(hostParam(h, mt.key)) {
			return false
		}
	}
	return true
}

// ifaceMatches reports whether pool interface ifc meets requirement c,
// network aside.
func ifaceMatches(c *cifc, ifc *Iface) bool {
	if c.driver != "" && ifc.Driver != c.driver {
		return false
	}
	for _, mt := range c.params {
		if !mt.match(ifaceParam(ifc, mt.key)) {
			return false
		}
	}
	return true
}

// ifaceMisses describes what pool interface ifc misses of requirement c.
func ifaceMisses(c *cifc, ifc *Iface) []string {
	var miss []string
	if c.driver != "" && ifc.Driver != c.driver {
		if ifc.Driver == "" {
			miss = append(miss, "driver unknown")
		} else {
			miss = append(miss, "driver is "+ifc.Driver)
		}
	}
	for _, mt := range c.params {
		v, ok := ifaceParam(ifc, mt.key)
		switch {
		case !ok:
			miss = append(miss, "no param "+mt.key)
		case !mt.match(v, ok):
			miss = append(miss, fmt.Sprintf("%s is %s", mt.key, v))
		}
	}
	return miss
}

// hostTuples are the network tuples one pool host offers a required host:
// for each label of the required host (creq.labels), the pool network
// its interfaces with that label could be on, all labels on distinct
// networks, each required interface on a distinct matching pool interface.
type hostTuples struct {
	host   int
	tuples []string // sorted keys, see tupleKey
}

func tupleKey(nets []int32) string {
	b := make([]byte, 0, 4*len(nets))
	for _, n := range nets {
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return string(b)
}

func tupleNets(key string) []int32 {
	nets := make([]int32, len(key)/4)
	for i := range nets {
		nets[i] = int32(binary.BigEndian.Uint32([]byte(key[4*i:])))
	}
	return nets
}

// candidates are the usable pool hosts that can hold r, with their tuples.
func (m *mapper) candidates(r creq) []hostTuples {
	key := [2]int{r.idx, len(r.ifaces)}
	if ht, ok := m.tuples[key]; ok {
		return ht
	}
	var out []hostTuples
	for _, hi := range m.usable {
		h := &m.pool.Hosts[hi]
		if !hostMatches(&r, h) {
			continue
		}
		if ts := m.hostTuples(&r, hi); len(ts) > 0 {
			out = append(out, hostTuples{host: hi, tuples: ts})
		}
	}
	m.tuples[key] = out
	return out
}

// hostTuples enumerates the tuples of r on pool host hi. Pool interfaces
// on one network that match the same required interfaces are
// interchangeable: the search takes the first free one of each group.
func (m *mapper) hostTuples(r *creq, hi int) []string {
	h := &m.pool.Hosts[hi]
	if len(r.ifaces) == 0 {
		return []string{""}
	}
	type group struct {
		net   int32
		match []bool // per required interface
		n     int
	}
	var groups []*group
	byKey := map[string]*group{}
	for j := range h.Ifaces {
		net := m.ifNet[hi][j]
		if net < 0 {
			continue
		}
		match := make([]bool, len(r.ifaces))
		key := []byte(strconv.Itoa(int(net)) + ":")
		anyMatch := false
		for k := range r.ifaces {
			match[k] = ifaceMatches(&r.ifaces[k], &h.Ifaces[j])
			anyMatch = anyMatch || match[k]
			key = append(key, "01"[b2i(match[k])])
		}
		if !anyMatch {
			continue
		}
		g := byKey[string(key)]
		if g == nil {
			g = &group{net: net, match: match}
			byKey[string(key)] = g
			groups = append(groups, g)
		}
		g.n++
	}
	tuple := make([]int32, len(r.labels))
	for i := range tuple {
		tuple[i] = -1
	}
	seen := map[string]bool{}
	var out []string
	var dfs func(k int)
	dfs = func(k int) {
		if k == len(r.ifaces) {
			key := tupleKey(tuple)
			if !seen[key] {
				seen[key] = true
				out = append(out, key)
			}
			return
		}
		c := &r.ifaces[k]
		for _, g := range groups {
			if g.n == 0 || !g.match[k] {
				continue
			}
			old := tuple[c.pos]
			if old >= 0 && old != g.net {
				continue
			}
			if old < 0 && netTaken(tuple, g.net) {
				continue
			}
			tuple[c.pos] = g.net
			g.n--
			dfs(k + 1)
			g.n++
			tuple[c.pos] = old
		}
	}
	dfs(0)
	sort.Strings(out)
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func netTaken(tuple []int32, net int32) bool {
	for _, n := range tuple {
		if n == net {
			return true
		}
	}
	return false
}

// problem is a set of required hosts over the usable pool hosts, with the
// pool hosts grouped into classes: hosts with the same tuples for every
// required host are interchangeable, so the search and the matching
// count them instead of trying each.
type problem struct {
	m       *mapper
	reqs    []creq
	labels  []int32 // labels used by reqs
	classes [][]int // pool host indices, in pool order
	cands   [][]tupleGroup
}

// tupleGroup is one tuple of a required host and the classes offering it.
type tupleGroup struct {
	nets    []int32
	classes []int32
}

func (m *mapper) problem(reqs []creq) *problem {
	pb := &problem{m: m, reqs: reqs, cands: make([][]tupleGroup, len(reqs))}
	seenLabel := map[int32]bool{}
	per := make(map[int]map[int][]string) // pool host -> req -> tuples
	var order []int
	for ri, r := range reqs {
		for _, l := range r.labels {
			if !seenLabel[l] {
				seenLabel[l] = true
				pb.labels = append(pb.labels, l)
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
			pb.classes[c] = append(pb.classes[c], hi)
			continue
		}
		c = len(pb.classes)
		classOf[sig.String()] = c
		pb.classes = append(pb.classes, []int{hi})
		for ri := range reqs {
			for _, t := range per[hi][ri] {
				g, ok := groupOf[ri][t]
				if !ok {
					g = len(pb.cands[ri])
					groupOf[ri][t] = g
					pb.cands[ri] = append(pb.cands[ri], tupleGroup{nets: tupleNets(t)})
				}
				pb.cands[ri][g].classes = append(pb.cands[ri][g].classes, int32(c))
			}
		}
	}
	return pb
}

// consistent reports whether a tuple of r fits the partial binding beta
// (label -> network) whose inverse is owner (network -> label).
func consistent(r *creq, nets []int32, beta, owner []int32) bool {
	for p, l := range r.labels {
		n := nets[p]
		if b := beta[l]; b >= 0 {
			if n != b {
				return false
			}
		} else if owner[n] >= 0 {
			return false
		}
	}
	return true
}

// matcher state: a matching of required hosts to classes with capacities.
type matching struct {
	pb          *problem
	beta, owner []int32
	capacity    []int
	assigned    [][]int // per class, required hosts
	classOf     []int   // per required host
	visit       []int
	stamp       int
}

func (pb *problem) newMatching(beta, owner []int32, capacity []int) *matching {
	mt := &matching{pb: pb, beta: beta, owner: owner, capacity: capacity,
		assigned: make([][]int, len(pb.classes)), classOf: make([]int, len(pb.reqs)), visit: make([]int, len(pb.classes))}
	if mt.capacity == nil {
		mt.capacity = make([]int, len(pb.classes))
		for c, members := range pb.classes {
			mt.capacity[c] = len(members)
		}
	}
	return mt
}

// solve matches required hosts from..end, and reports whether all fit.
func (mt *matching) solve(from int) bool {
	for r := from; r < len(mt.pb.reqs); r++ {
		mt.stamp++
		if !mt.augment(r) {
			return false
		}
	}
	return true
}

func (mt *matching) augment(r int) bool {
	req := &mt.pb.reqs[r]
	// First a free class, then displacing another host.
	for _, g := range mt.pb.cands[r] {
		if !consistent(req, g.nets, mt.beta, mt.owner) {
			continue
		}
		for _, c := range g.classes {
			if len(mt.assigned[c]) < mt.capacity[c] {
				mt.assigned[c] = append(mt.assigned[c], r)
				mt.classOf[r] = int(c)
				return true
			}
		}
	}
	for _, g := range mt.pb.cands[r] {
		if !consistent(req, g.nets, mt.beta, mt.owner) {
			continue
		}
		for _, c := range g.classes {
			if mt.visit[c] == mt.stamp || mt.capacity[c] == 0 {
				continue
			}
			mt.visit[c] = mt.stamp
			for k, other := range mt.assigned[c] {
				if mt.augment(other) {
					mt.assigned[c][k] = r
					mt.classOf[r] = int(c)
					return true
				}
			}
		}
	}
	return false
}

func (pb *problem) feasible(beta, owner []int32) bool {
	return pb.newMatching(beta, owner, nil).solve(0)
}

// search binds labels to pool networks, one label at a time, the label
// with the fewest feasible networks first (inOrder: in order of first use,
// for a stable enumeration), checking after each binding that the
// required hosts still fit distinct pool hosts. At each full binding it
// calls visit, and stops when visit returns true.
func (pb *problem) search(inOrder bool, visit func(beta []int32) bool) bool {
	beta := make([]int32, len(pb.m.labels))
	for i := range beta {
		beta[i] = -1
	}
	owner := make([]int32, len(pb.m.nets))
	for i := range owner {
		owner[i] = -1
	}
	if !pb.feasible(beta, owner) {
		return false
	}
	var dfs func(bound int) bool
	dfs = func(bound int) bool {
		if bound == len(pb.labels) {
			return visit(beta)
		}
		best, bestNets := int32(-1), []int32(nil)
		for _, l := range pb.labels {
			if beta[l] >= 0 {
				continue
			}
			var nets []int32
			for n := range owner {
				if owner[n] >= 0 {
					continue
				}
				beta[l], owner[n] = int32(n), l
				if pb.feasible(beta, owner) {
					nets = append(nets, int32(n))
				}
				beta[l], owner[n] = -1, -1
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
			beta[best], owner[n] = n, best
			stop := dfs(bound + 1)
			beta[best], owner[n] = -1, -1
			if stop {
				return true
			}
		}
		return false
	}
	return dfs(0)
}

// first is a mapping at the full binding beta, known to be feasible.
func (pb *problem) first(beta []int32) Mapping {
	owner := pb.owners(beta)
	mt := pb.newMatching(beta, owner, nil)
	mt.solve(0)
	out := Mapping{Hosts: map[string]HostMatch{}}
	for c, rs := range mt.assigned {
		sort.Ints(rs)
		for k, r := range rs {
			hi := pb.classes[c][k]
			ifaces := pb.ifaceAssignments(&pb.reqs[r], hi, beta, 1)
			out.Hosts[pb.reqs[r].name] = pb.hostMatch(&pb.reqs[r], hi, ifaces[0])
		}
	}
	return out
}

func (pb *problem) owners(beta []int32) []int32 {
	owner := make([]int32, len(pb.m.nets))
	for i := range owner {
		owner[i] = -1
	}
	for l, n := range beta {
		if n >= 0 {
			owner[n] = int32(l)
		}
	}
	return owner
}

func (pb *problem) hostMatch(r *creq, hi int, ifaces []int) HostMatch {
	h := &pb.m.pool.Hosts[hi]
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
// interfaces to distinct interfaces of pool host hi on the networks beta
// binds, in order.
func (pb *problem) ifaceAssignments(r *creq, hi int, beta []int32, limit int) [][]int {
	h := &pb.m.pool.Hosts[hi]
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
			if used[j] || pb.m.ifNet[hi][j] != beta[c.label] || !ifaceMatches(c, &h.Ifaces[j]) {
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

// enumerate calls emit with every mapping at the full binding beta, hosts
// in pool order for each required host in request order, until emit
// returns true.
func (pb *problem) enumerate(beta []int32, emit func(Mapping) bool) bool {
	owner := pb.owners(beta)
	capacity := make([]int, len(pb.classes))
	for c, members := range pb.classes {
		capacity[c] = len(members)
	}
	used := map[int]bool{}
	hosts := make([]int, len(pb.reqs))
	classOf := map[int]int{}
	for c, members := range pb.classes {
		for _, hi := range members {
			classOf[hi] = c
		}
	}
	var dfs func(r int) bool
	dfs = func(r int) bool {
		if r == len(pb.reqs) {
			return pb.emitIfaces(beta, hosts, emit)
		}
		var cands []int
		for _, g := range pb.cands[r] {
			if consistent(&pb.reqs[r], g.nets, beta, owner) {
				for _, c := range g.classes {
					cands = append(cands, pb.classes[c]...)
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
			mt := pb.newMatching(beta, owner, capacity)
			ok := mt.solve(r + 1)
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

func (pb *problem) emitIfaces(beta []int32, hosts []int, emit func(Mapping) bool) bool {
	all := make([][][]int, len(pb.reqs))
	for r := range pb.reqs {
		all[r] = pb.ifaceAssignments(&pb.reqs[r], hosts[r], beta, 0)
	}
	pick := make([]int, len(pb.reqs))
	for {
		mp := Mapping{Hosts: map[string]HostMatch{}}
		for r := range pb.reqs {
			mp.Hosts[pb.reqs[r].name] = pb.hostMatch(&pb.reqs[r], hosts[r], all[r][pick[r]])
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

// UnsatError says why a request does not fit the pool: the required host
// (and interface) that could not be placed, what it needs, and the pool
// hosts that came closest with what each lacks.
type UnsatError struct {
	Host    string      // the required host
	Iface   string      // its interface, "" if the host itself failed
	Need    string      // what it needs: "interface eth1 on network n2 with driver ixgbe"
	Closest []Candidate // at most 3, closest first
	More    int         // further candidates not listed
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

func (r *creq) hostNeed() string {
	if len(r.host) == 0 {
		return "a pool host"
	}
	var parts []string
	for _, mt := range r.host {
		if mt.key == "arch" && mt.re == nil {
			parts = append(parts, "arch "+mt.value)
		} else {
			parts = append(parts, "param "+mt.String())
		}
	}
	return "a pool host with " + strings.Join(parts, " and ")
}

func (c *cifc) need() string {
	s := fmt.Sprintf("interface %s on network %s", c.name, c.net)
	var parts []string
	if c.driver != "" {
		parts = append(parts, "driver "+c.driver)
	}
	for _, mt := range c.params {
		parts = append(parts, "param "+mt.String())
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
	for i := range m.reqs {
		if err := m.alone(&m.reqs[i]); err != nil {
			return err
		}
	}
	for k := range m.reqs {
		r := m.reqs[k]
		for j := 0; j <= len(r.ifaces); j++ {
			reqs := append(append([]creq(nil), m.reqs[:k]...), r.truncate(j))
			if !m.problem(reqs).search(false, func([]int32) bool { return true }) {
				return m.conflict(m.reqs[:k], r, j)
			}
		}
	}
	return errors.New("map: no mapping found (a bug: every requirement fits)")
}

// alone is an *UnsatError if r fits no usable pool host by itself.
func (m *mapper) alone(r *creq) error {
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
			for _, mt := range hostMisses(r, h) {
				v, ok := hostParam(h, mt.key)
				if !ok {
					why = append(why, "no "+mt.key)
				} else {
					why = append(why, mt.key+" is "+v)
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
func (m *mapper) ifaceWhy(r *creq, k, hi int, nets map[int32]bool, users string) ranked {
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
func (m *mapper) conflict(before []creq, r creq, j int) error {
	var hosts []int
	for _, hi := range m.usable {
		if hostMatches(&r, &m.pool.Hosts[hi]) {
			hosts = append(hosts, hi)
		}
	}
	relaxed := append([]creq(nil), before...)
	if j > 0 {
		relaxed = append(relaxed, r.truncate(j-1))
	}
	pb := m.problem(relaxed)
	taken := map[int]string{}
	var sol Mapping
	pb.search(false, func(beta []int32) bool { sol = pb.first(beta); return true })
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
		pb.search(true, func(beta []int32) bool {
			nets[beta[c.label]] = true
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
