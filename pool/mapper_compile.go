package pool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
)

// matcher is a compiled Pattern of one param.
type matcher struct {
	key, value string
	re         *regexp.Regexp
}

func (pat matcher) match(v string, ok bool) bool {
	if !ok {
		return false
	}
	if pat.re != nil {
		return pat.re.MatchString(v)
	}
	return v == pat.value
}

func (pat matcher) String() string {
	if pat.re != nil {
		return fmt.Sprintf("%s=~/%s/", pat.key, pat.value)
	}
	return fmt.Sprintf("%s=%s", pat.key, pat.value)
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
		pat := matcher{key: k, value: p.Value}
		if p.Regexp {
			re, err := regexp.Compile(`^(?:` + p.Value + `)$`)
			if err != nil {
				return nil, fmt.Errorf("param %s: %w", k, err)
			}
			pat.re = re
		}
		ms = append(ms, pat)
	}
	return ms, nil
}

// reqHost is a compiled HostReq.
type reqHost struct {
	idx    int // in the request
	name   string
	host   []matcher // arch first, then params
	ifaces []reqIface
	labels []int32 // distinct labels of its interfaces; reqIface.pos indexes it
}

type reqIface struct {
	name, net, driver string
	label             int32
	pos               int
	params            []matcher
}

// truncate is r with only its first n interfaces.
func (r reqHost) truncate(n int) reqHost {
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
	reqs   []reqHost
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
		r := reqHost{idx: i, name: hr.Name}
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
			r.ifaces = append(r.ifaces, reqIface{name: ir.Name, net: ir.Net, driver: ir.Driver, label: l, pos: p, params: ms})
		}
		m.reqs = append(m.reqs, r)
	}
	return m, nil
}

func (m *mapper) all() []reqHost { return m.reqs }

func hostParam(h *Host, key string) (string, bool) {
	if key == "arch" {
		return h.Arch, h.Arch != ""
	}
	v, ok := h.Params[key]
	return v, ok
}

func ifaceParam(ifc *Iface, key string) (string, bool) {
	switch key {
	case "speed":
		return strconv.Itoa(ifc.Speed), ifc.Speed > 0
	case "sriov":
		if ifc.SRIOV > 0 {
			return strconv.Itoa(ifc.SRIOV), true
		}
	case "switchdev":
		if ifc.Switchdev {
			return "true", true
		}
	}
	v, ok := ifc.Params[key]
	return v, ok
}

// hostMisses are the host requirements of r that pool host h misses.
func hostMisses(r *reqHost, h *Host) []matcher {
	var miss []matcher
	for _, pat := range r.host {
		if !pat.match(hostParam(h, pat.key)) {
			miss = append(miss, pat)
		}
	}
	return miss
}

func hostMatches(r *reqHost, h *Host) bool {
	for _, pat := range r.host {
		if !pat.match(hostParam(h, pat.key)) {
			return false
		}
	}
	return true
}

// ifaceMatches reports whether pool interface ifc meets requirement c,
// network aside.
func ifaceMatches(c *reqIface, ifc *Iface) bool {
	if c.driver != "" && ifc.Driver != c.driver {
		return false
	}
	for _, pat := range c.params {
		if !pat.match(ifaceParam(ifc, pat.key)) {
			return false
		}
	}
	return true
}

// ifaceMisses describes what pool interface ifc misses of requirement c.
func ifaceMisses(c *reqIface, ifc *Iface) []string {
	var miss []string
	if c.driver != "" && ifc.Driver != c.driver {
		if ifc.Driver == "" {
			miss = append(miss, "driver unknown")
		} else {
			miss = append(miss, "driver is "+ifc.Driver)
		}
	}
	for _, pat := range c.params {
		v, ok := ifaceParam(ifc, pat.key)
		switch {
		case !ok:
			miss = append(miss, "no param "+pat.key)
		case !pat.match(v, ok):
			miss = append(miss, fmt.Sprintf("%s is %s", pat.key, v))
		}
	}
	return miss
}

// hostTuples are the network tuples one pool host offers a required host:
// for each label of the required host (reqHost.labels), the pool network
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
func (m *mapper) candidates(r reqHost) []hostTuples {
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
func (m *mapper) hostTuples(r *reqHost, hi int) []string {
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
