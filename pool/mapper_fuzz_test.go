package pool

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// FuzzMap builds a small pool, a request and a set of usable hosts from
// the fuzz bytes, and checks Map and AllMatches against trying every
// assignment: Map does not panic; it finds a mapping exactly when one
// exists, and the one it finds is valid (distinct usable pool hosts,
// distinct interfaces on a network, arch, params and driver matching,
// each label on one network and distinct labels on distinct networks);
// AllMatches returns every valid mapping once, and none when Map fails.
func FuzzMap(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x02\x00\x01\x11\x21\x01\x11\x21\x01\x00\x01\x00\x00"))
	f.Add([]byte("\x03\x10\x22\x31\x41\x51\x13\x22\x33\x02\x00\x01\x11\x02\x20\x03\x01"))
	f.Add([]byte("fuzz the mapper with a longer request and pool description"))
	f.Add([]byte{4, 0xff, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &fuzzBytes{b: data}
		p := fuzzPool(d)
		reqs := fuzzReqs(d)
		usableMask := d.next()
		usable := func(name string) bool {
			i, _ := strconv.Atoi(strings.TrimPrefix(name, "m"))
			return usableMask&(1<<i) != 0
		}
		if err := fuzzReqError(reqs); err != nil {
			if _, err2 := Map(p, reqs, nil); err2 == nil {
				t.Fatalf("Map accepted a bad request (%v): %+v", err, reqs)
			}
			if _, err2 := AllMatches(p, reqs, 0); err2 == nil {
				t.Fatalf("AllMatches accepted a bad request (%v): %+v", err, reqs)
			}
			return
		}
		for _, use := range []func(string) bool{nil, usable} {
			want := fuzzBruteForce(p, reqs, use)
			mp, err := Map(p, reqs, use)
			if (err == nil) != (len(want) > 0) {
				t.Fatalf("Map = %v, %v; brute force finds %d mappings\npool %+v\nreqs %+v", mp, err, len(want), p.Hosts, reqs)
			}
			if err != nil {
				if _, ok := err.(*UnsatError); !ok {
					t.Fatalf("Map error %T is not an *UnsatError: %v", err, err)
				}
				continue
			}
			if e := fuzzMappingError(p, reqs, use, mp); e != nil {
				t.Fatalf("Map gave a bad mapping %v: %v\npool %+v\nreqs %+v", mp, e, p.Hosts, reqs)
			}
		}
		want := fuzzBruteForce(p, reqs, nil)
		all, err := AllMatches(p, reqs, 0)
		if (err != nil) != (len(all) == 0) || (err != nil) != (len(want) == 0) {
			t.Fatalf("AllMatches = %d mappings, %v; brute force finds %d", len(all), err, len(want))
		}
		got := map[string]bool{}
		for _, mp := range all {
			if e := fuzzMappingError(p, reqs, nil, mp); e != nil {
				t.Fatalf("AllMatches gave a bad mapping %v: %v", mp, e)
			}
			k := fuzzMappingKey(mp)
			if got[k] {
				t.Fatalf("AllMatches gave %s twice", k)
			}
			got[k] = true
		}
		if len(got) != len(want) {
			t.Fatalf("AllMatches gave %d mappings, brute force %d\npool %+v\nreqs %+v", len(got), len(want), p.Hosts, reqs)
		}
		if limited, _ := AllMatches(p, reqs, 2); len(limited) != min(2, len(want)) {
			t.Fatalf("AllMatches with limit 2 gave %d mappings of %d", len(limited), len(want))
		}
	})
}

// fuzzBytes hands out the fuzz input a byte at a time, then zeros.
type fuzzBytes struct{ b []byte }

func (d *fuzzBytes) next() byte {
	if len(d.b) == 0 {
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// pick chooses from choices with the next byte.
func (d *fuzzBytes) pick(choices ...string) string { return choices[int(d.next())%len(choices)] }

// fuzzPool is a valid pool of 1 to 4 hosts m0..m3 with up to 3 interfaces
// each, named e0..e2 or known by hwaddr only.
func fuzzPool(d *fuzzBytes) *Pool {
	p := &Pool{Path: "/fuzz.yaml"}
	for i := range 1 + int(d.next()%4) {
		h := Host{Name: fmt.Sprintf("m%d", i), Agent: "unix:///run/lnst.sock", Arch: d.pick("x86_64", "aarch64", "")}
		if v := d.pick("", "a", "b"); v != "" {
			h.Params = map[string]string{"k": v}
		}
		for j := range int(d.next() % 4) {
			c := d.next()
			ifc := Iface{
				Name:   fmt.Sprintf("e%d", j),
				Net:    []string{"", "n0", "n1", "n2"}[c&3],
				Driver: []string{"", "virtio", "ixgbe"}[(c>>2)%3],
				Speed:  []int{0, 1000, 10000, 0}[(c>>4)&3],
			}
			if c&0x40 != 0 {
				ifc.Name, ifc.HWAddr = "", fmt.Sprintf("52:54:00:00:%02x:%02x", i, j)
			}
			if c&0x80 != 0 {
				ifc.Params = map[string]string{"q": "x"}
			}
			h.Ifaces = append(h.Ifaces, ifc)
		}
		p.Hosts = append(p.Hosts, h)
	}
	return p
}

// fuzzPatterns are the patterns requests use, one of them a bad regexp.
var fuzzPatterns = []Pattern{{Value: "a"}, {Value: "b"}, {Value: "a|b", Regexp: true}, {Value: ".*", Regexp: true}, {Value: "("}, {Value: "(", Regexp: true}, {Value: "x"}, {Value: "1000"}, {Value: "1.*", Regexp: true}}

// fuzzReqs is a request for 1 to 3 hosts with up to 3 interfaces each;
// now and then a name is empty or repeated.
func fuzzReqs(d *fuzzBytes) []HostReq {
	var reqs []HostReq
	for i := range 1 + int(d.next()%3) {
		c := d.next()
		r := HostReq{Name: fmt.Sprintf("h%d", i), Arch: []string{"", "", "x86_64", "aarch64"}[c&3]}
		switch c >> 5 {
		case 6:
			r.Name = ""
		case 7:
			r.Name = "h0"
		}
		if c&0x10 != 0 {
			r.Params = map[string]Pattern{d.pick("k", "arch", "z"): fuzzPatterns[int(d.next())%len(fuzzPatterns)]}
		}
		for j := range int(d.next() % 4) {
			c := d.next()
			ir := IfaceReq{Name: fmt.Sprintf("i%d", j), Net: []string{"x", "y", "z", "x"}[c&3], Driver: []string{"", "virtio", "ixgbe", ""}[(c>>2)&3]}
			if c&0x10 != 0 {
				ir.Params = map[string]Pattern{d.pick("speed", "q"): fuzzPatterns[int(d.next())%len(fuzzPatterns)]}
			}
			if c&0xe0 == 0xe0 {
				ir.Net = ""
			}
			r.Ifaces = append(r.Ifaces, ir)
		}
		reqs = append(reqs, r)
	}
	return reqs
}

// fuzzReqError is what is wrong with reqs as a request: an empty or
// repeated name, an interface without a label, a bad regexp.
func fuzzReqError(reqs []HostReq) error {
	names := map[string]bool{}
	for _, r := range reqs {
		if r.Name == "" || names[r.Name] {
			return fmt.Errorf("host name %q", r.Name)
		}
		names[r.Name] = true
		pats := []map[string]Pattern{r.Params}
		for _, ir := range r.Ifaces {
			if ir.Net == "" {
				return fmt.Errorf("interface %s has no label", ir.Name)
			}
			pats = append(pats, ir.Params)
		}
		for _, ps := range pats {
			for k, pt := range ps {
				if _, err := regexp.Compile(pt.Value); pt.Regexp && err != nil {
					return fmt.Errorf("param %s: %v", k, err)
				}
			}
		}
	}
	return nil
}

// fuzzMatch reports whether a param value (ok: the pool gives it) meets
// a pattern.
func fuzzMatch(pt Pattern, v string, ok bool) bool {
	if !ok {
		return false
	}
	if pt.Regexp {
		return regexp.MustCompile(`^(?:` + pt.Value + `)$`).MatchString(v)
	}
	return v == pt.Value
}

func fuzzHostParam(h *Host, k string) (string, bool) {
	if k == "arch" {
		return h.Arch, h.Arch != ""
	}
	v, ok := h.Params[k]
	return v, ok
}

func fuzzIfaceParam(ifc *Iface, k string) (string, bool) {
	if k == "speed" {
		return strconv.Itoa(ifc.Speed), ifc.Speed > 0
	}
	v, ok := ifc.Params[k]
	return v, ok
}

// fuzzMappingError says what breaks the rules of a mapping in mp.
func fuzzMappingError(p *Pool, reqs []HostReq, usable func(string) bool, mp Mapping) error {
	if len(mp.Hosts) != len(reqs) {
		return fmt.Errorf("%d hosts mapped, want %d", len(mp.Hosts), len(reqs))
	}
	usedHost := map[string]bool{}
	labelNet, netLabel := map[string]string{}, map[string]string{}
	for _, r := range reqs {
		hm, ok := mp.Hosts[r.Name]
		var h *Host
		for i := range p.Hosts {
			if p.Hosts[i].Name == hm.Pool {
				h = &p.Hosts[i]
			}
		}
		if !ok || h == nil || usedHost[hm.Pool] || (usable != nil && !usable(hm.Pool)) {
			return fmt.Errorf("host %s: pool host %q missing, used twice or not usable", r.Name, hm.Pool)
		}
		usedHost[hm.Pool] = true
		if r.Arch != "" && h.Arch != r.Arch {
			return fmt.Errorf("host %s: arch %q", r.Name, h.Arch)
		}
		for k, pt := range r.Params {
			if v, ok := fuzzHostParam(h, k); !fuzzMatch(pt, v, ok) {
				return fmt.Errorf("host %s: param %s", r.Name, k)
			}
		}
		if len(hm.Ifaces) != len(r.Ifaces) {
			return fmt.Errorf("host %s: %d interfaces mapped, want %d", r.Name, len(hm.Ifaces), len(r.Ifaces))
		}
		usedIf := map[string]bool{}
		for _, ir := range r.Ifaces {
			id, ok := hm.Ifaces[ir.Name]
			var pi *Iface
			for j := range h.Ifaces {
				if h.Ifaces[j].Name == id || (h.Ifaces[j].Name == "" && h.Ifaces[j].HWAddr == id) {
					pi = &h.Ifaces[j]
				}
			}
			if !ok || pi == nil || usedIf[id] {
				return fmt.Errorf("host %s interface %s: pool interface %q missing or used twice", r.Name, ir.Name, id)
			}
			usedIf[id] = true
			if ir.Driver != "" && pi.Driver != ir.Driver {
				return fmt.Errorf("host %s interface %s: driver %q", r.Name, ir.Name, pi.Driver)
			}
			for k, pt := range ir.Params {
				if v, ok := fuzzIfaceParam(pi, k); !fuzzMatch(pt, v, ok) {
					return fmt.Errorf("host %s interface %s: param %s", r.Name, ir.Name, k)
				}
			}
			if pi.Net == "" {
				return fmt.Errorf("host %s interface %s: pool interface %s is on no network", r.Name, ir.Name, id)
			}
			if n, ok := labelNet[ir.Net]; ok && n != pi.Net {
				return fmt.Errorf("label %s on networks %s and %s", ir.Net, n, pi.Net)
			}
			if l, ok := netLabel[pi.Net]; ok && l != ir.Net {
				return fmt.Errorf("network %s has labels %s and %s", pi.Net, l, ir.Net)
			}
			labelNet[ir.Net], netLabel[pi.Net] = pi.Net, ir.Net
		}
	}
	return nil
}

// fuzzBruteForce returns the keys of every valid mapping, trying every
// assignment of distinct pool hosts and distinct interfaces.
func fuzzBruteForce(p *Pool, reqs []HostReq, usable func(string) bool) map[string]bool {
	out := map[string]bool{}
	mp := Mapping{Hosts: map[string]HostMatch{}}
	usedHost := map[string]bool{}
	usedIf := map[string]bool{}
	var hostRec func(r int)
	var ifRec func(r, k int, h *Host)
	hostRec = func(r int) {
		if r == len(reqs) {
			if fuzzMappingError(p, reqs, usable, mp) == nil {
				out[fuzzMappingKey(mp)] = true
			}
			return
		}
		for i := range p.Hosts {
			if usedHost[p.Hosts[i].Name] {
				continue
			}
			usedHost[p.Hosts[i].Name] = true
			mp.Hosts[reqs[r].Name] = HostMatch{Pool: p.Hosts[i].Name, Ifaces: map[string]string{}}
			ifRec(r, 0, &p.Hosts[i])
			usedHost[p.Hosts[i].Name] = false
		}
		delete(mp.Hosts, reqs[r].Name)
	}
	ifRec = func(r, k int, h *Host) {
		if k == len(reqs[r].Ifaces) {
			hostRec(r + 1)
			return
		}
		hm := mp.Hosts[reqs[r].Name]
		for _, ifc := range h.Ifaces {
			id := ifc.Name
			if id == "" {
				id = ifc.HWAddr
			}
			key := h.Name + "/" + id
			if usedIf[key] {
				continue
			}
			usedIf[key] = true
			hm.Ifaces[reqs[r].Ifaces[k].Name] = id
			ifRec(r, k+1, h)
			usedIf[key] = false
		}
		delete(hm.Ifaces, reqs[r].Ifaces[k].Name)
	}
	hostRec(0)
	return out
}

// fuzzMappingKey is mp as a string, the same for equal mappings.
func fuzzMappingKey(mp Mapping) string {
	var parts []string
	for r, hm := range mp.Hosts {
		var ifs []string
		for i, id := range hm.Ifaces {
			ifs = append(ifs, i+"="+id)
		}
		sort.Strings(ifs)
		parts = append(parts, r+":"+hm.Pool+"{"+strings.Join(ifs, ",")+"}")
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
