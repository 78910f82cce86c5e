package pool

import ()

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
	prob := m.problem(m.all())
	var out Mapping
	found := prob.search(false, func(binding []int32) bool {
		out = prob.first(binding)
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
	prob := m.problem(m.all())
	var out []Mapping
	prob.search(true, func(binding []int32) bool {
		return prob.enumerate(binding, func(mp Mapping) bool {
			out = append(out, mp)
			return limit > 0 && len(out) >= limit
		})
	})
	if len(out) == 0 {
		return nil, m.diagnose()
	}
	return out, nil
}
