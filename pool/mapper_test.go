package pool

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// smallPool is
//
//	a  x86_64  rack=r1  eth0 lan ixgbe 10000, eth1 wan i40e 1000
//	b  x86_64  rack=r2  eth0 lan ixgbe 10000, eth1 lan ixgbe 10000
//	c  aarch64 rack=r1  eth0 wan mlx5 25000
func smallPool() *Pool {
	ifc := func(name, net, driver string, speed int) Iface {
		return Iface{Name: name, Net: net, Driver: driver, Speed: speed}
	}
	return &Pool{Path: "small.yaml", Hosts: []Host{
		{Name: "a", Agent: "unix:///a", Arch: "x86_64", Params: map[string]string{"rack": "r1"},
			Ifaces: []Iface{ifc("eth0", "lan", "ixgbe", 10000), ifc("eth1", "wan", "i40e", 1000)}},
		{Name: "b", Agent: "unix:///b", Arch: "x86_64", Params: map[string]string{"rack": "r2"},
			Ifaces: []Iface{ifc("eth0", "lan", "ixgbe", 10000), ifc("eth1", "lan", "ixgbe", 10000)}},
		{Name: "c", Agent: "unix:///c", Arch: "aarch64", Params: map[string]string{"rack": "r1"},
			Ifaces: []Iface{ifc("eth0", "wan", "mlx5", 25000)}},
	}}
}

func exact(v string) Pattern { return Pattern{Value: v} }

// checkMapping fails t if mp breaks a rule of the mapping.
func checkMapping(t testing.TB, p *Pool, reqs []HostReq, mp Mapping) {
	t.Helper()
	if err := mappingError(p, reqs, mp); err != nil {
		t.Fatalf("bad mapping %v: %v", mp, err)
	}
}

func mappingError(p *Pool, reqs []HostReq, mp Mapping) error {
	hosts := map[string]*Host{}
	for i := range p.Hosts {
		hosts[p.Hosts[i].Name] = &p.Hosts[i]
	}
	usedHost := map[string]bool{}
	labelNet := map[string]string{}
	netLabel := map[string]string{}
	if len(mp.Hosts) != len(reqs) {
		return fmt.Errorf("%d hosts mapped, want %d", len(mp.Hosts), len(reqs))
	}
	for _, r := range reqs {
		hm, ok := mp.Hosts[r.Name]
		h := hosts[hm.Pool]
		if !ok || h == nil || usedHost[hm.Pool] {
			return fmt.Errorf("host %s: pool host %q missing or used twice", r.Name, hm.Pool)
		}
		usedHost[hm.Pool] = true
		if r.Arch != "" && h.Arch != r.Arch {
			return fmt.Errorf("host %s: arch", r.Name)
		}
		for k, pat := range r.Params {
			pats, _ := compile(map[string]Pattern{k: pat})
			if !pats[0].match(hostParam(h, k)) {
				return fmt.Errorf("host %s: param %s", r.Name, k)
			}
		}
		usedIf := map[string]bool{}
		for _, ir := range r.Ifaces {
			id := hm.Ifaces[ir.Name]
			var pi *Iface
			for j := range h.Ifaces {
				if h.Ifaces[j].Name == id || (h.Ifaces[j].Name == "" && h.Ifaces[j].HWAddr == id) {
					pi = &h.Ifaces[j]
				}
			}
			if pi == nil || usedIf[id] {
				return fmt.Errorf("host %s interface %s: pool interface %q missing or used twice", r.Name, ir.Name, id)
			}
			usedIf[id] = true
			if ir.Driver != "" && pi.Driver != ir.Driver {
				return fmt.Errorf("host %s interface %s: driver", r.Name, ir.Name)
			}
			for k, pat := range ir.Params {
				pats, _ := compile(map[string]Pattern{k: pat})
				if !pats[0].match(ifaceParam(pi, k)) {
					return fmt.Errorf("host %s interface %s: param %s", r.Name, ir.Name, k)
				}
			}
			if n, ok := labelNet[ir.Net]; ok && n != pi.Net {
				return fmt.Errorf("label %s on networks %s and %s", ir.Net, n, pi.Net)
			}
			if l, ok := netLabel[pi.Net]; pi.Net == "" || (ok && l != ir.Net) {
				return fmt.Errorf("network %q has labels %s and %s", pi.Net, l, ir.Net)
			}
			labelNet[ir.Net], netLabel[pi.Net] = pi.Net, ir.Net
		}
	}
	return nil
}

func TestMapSatisfiable(t *testing.T) {
	p := smallPool()
	reqs := []HostReq{
		{Name: "h1", Arch: "aarch64", Ifaces: []IfaceReq{{Name: "eth0", Net: "x"}}},
		{Name: "h2", Params: map[string]Pattern{"rack": exact("r1")}, Ifaces: []IfaceReq{{Name: "eth0", Net: "x", Driver: "i40e"}}},
	}
	mp, err := Map(p, reqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkMapping(t, p, reqs, mp)
	if got := fmt.Sprint(mp.Hosts["h1"], mp.Hosts["h2"]); got != "{c map[eth0:eth0]} {a map[eth0:eth1]}" {
		t.Errorf("mapping = %s", got)
	}
}

func TestMapRegexpParams(t *testing.T) {
	p := smallPool()
	for _, tc := range []struct {
		pat  Pattern
		want string // pool host, "" if none
	}{
		{Pattern{Value: "r[2-9]", Regexp: true}, "b"},
		{Pattern{Value: "r", Regexp: true}, ""}, // must match the whole value
		{Pattern{Value: "r.*"}, ""},             // exact, not a regexp
		{exact("r2"), "b"},
	} {
		reqs := []HostReq{{Name: "h1", Params: map[string]Pattern{"rack": tc.pat}, Arch: "x86_64"}}
		mp, err := Map(p, reqs, nil)
		if got := mp.Hosts["h1"].Pool; got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("rack %+v: got %q, %v; want %q", tc.pat, got, err, tc.want)
		}
	}
	speed := []HostReq{{Name: "h1", Ifaces: []IfaceReq{{Name: "e", Net: "x", Params: map[string]Pattern{"speed": {Value: "[0-9]{5}", Regexp: true}}}}}}
	all, err := AllMatches(p, speed, 0)
	if err != nil || len(all) != 4 { // a eth0, c eth0, b eth0, b eth1 have speed >= 10000
		t.Errorf("speed >= 10000: %d matches, %v; want 4", len(all), err)
	}
	if _, err := Map(p, []HostReq{{Name: "h", Params: map[string]Pattern{"x": {Value: "(", Regexp: true}}}}, nil); err == nil {
		t.Error("a bad regexp gave no error")
	}
}

func TestMapLabelsDoNotCollapse(t *testing.T) {
	p := smallPool()
	// Two labels on one host need two pool networks: only a has them.
	reqs := []HostReq{{Name: "h1", Ifaces: []IfaceReq{{Name: "e0", Net: "x"}, {Name: "e1", Net: "y"}}}}
	all, err := AllMatches(p, reqs, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("got %d matches %v, want 2 (a with x=lan,y=wan and x=wan,y=lan)", len(all), all)
	}
	for _, mp := range all {
		checkMapping(t, p, reqs, mp)
		if mp.Hosts["h1"].Pool != "a" {
			t.Errorf("h1 on %s, want a", mp.Hosts["h1"].Pool)
		}
	}
	// Two labels on two hosts: b's networks are both lan, so the hosts
	// cannot both sit on b's lan and still have x != y.
	reqs = []HostReq{
		{Name: "h1", Ifaces: []IfaceReq{{Name: "e0", Net: "x", Driver: "ixgbe"}}},
		{Name: "h2", Ifaces: []IfaceReq{{Name: "e0", Net: "y", Driver: "ixgbe"}}},
	}
	if mp, err := Map(p, reqs, nil); err == nil {
		t.Errorf("labels x and y collapsed onto one network: %v", mp)
	}
}

func TestMapDistinctInterfaces(t *testing.T) {
	p := smallPool()
	reqs := []HostReq{{Name: "h1", Ifaces: []IfaceReq{{Name: "e0", Net: "x"}, {Name: "e1", Net: "x"}}}}
	mp, err := Map(p, reqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkMapping(t, p, reqs, mp)
	if hm := mp.Hosts["h1"]; hm.Pool != "b" || hm.Ifaces["e0"] != "eth0" || hm.Ifaces["e1"] != "eth1" {
		t.Errorf("h1 = %v, want b with eth0, eth1", hm)
	}
	// Three interfaces on one network: no host has three.
	reqs[0].Ifaces = append(reqs[0].Ifaces, IfaceReq{Name: "e2", Net: "x"})
	if _, err := Map(p, reqs, nil); err == nil {
		t.Error("three interfaces mapped onto two")
	}
}

func TestMapUsable(t *testing.T) {
	p := smallPool()
	reqs := []HostReq{{Name: "h1", Arch: "x86_64"}}
	mp, err := Map(p, reqs, func(h string) bool { return h != "a" })
	if err != nil || mp.Hosts["h1"].Pool != "b" {
		t.Errorf("with a unusable: %v, %v; want b", mp, err)
	}
	_, err = Map(p, reqs, func(h string) bool { return h == "c" })
	want := "host h1 needs a pool host with arch x86_64; closest: pool host a (not usable), b (not usable), c (arch is aarch64)"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n  %v\nwant:\n  %s", err, want)
	}
}

func TestAllMatchesCount(t *testing.T) {
	p := smallPool()
	reqs := []HostReq{
		{Name: "h1", Ifaces: []IfaceReq{{Name: "e0", Net: "x"}}},
		{Name: "h2", Ifaces: []IfaceReq{{Name: "e0", Net: "x"}}},
	}
	// x on lan: (h1,h2) on (a,b) with b's eth0 or eth1, or on (b,a): 2+2.
	// x on wan: (a,c) or (c,a): 2. Total 6.
	all, err := AllMatches(p, reqs, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Fatalf("got %d matches, want 6: %v", len(all), all)
	}
	seen := map[string]bool{}
	for _, mp := range all {
		checkMapping(t, p, reqs, mp)
		key := fmt.Sprint(mp.Hosts["h1"], mp.Hosts["h2"])
		if seen[key] {
			t.Errorf("match %s twice", key)
		}
		seen[key] = true
	}
	again, _ := AllMatches(p, reqs, 0)
	if fmt.Sprint(again) != fmt.Sprint(all) {
		t.Error("two calls gave different orders")
	}
	if three, _ := AllMatches(p, reqs, 3); fmt.Sprint(three) != fmt.Sprint(all[:3]) {
		t.Errorf("limit 3 gave %v, want the first 3 of %v", three, all)
	}
}

func TestMapUnsatMessages(t *testing.T) {
	// p1 is the only server; m7 has ixgbe on another network, m9 has
	// lan1 with another driver.
	conflictPool := &Pool{Hosts: []Host{
		{Name: "p1", Params: map[string]string{"role": "server"}, Ifaces: []Iface{{Name: "eth0", Net: "lan1", Driver: "ixgbe"}}},
		{Name: "m7", Ifaces: []Iface{{Name: "eth0", Net: "lan2", Driver: "ixgbe"}}},
		{Name: "m9", Ifaces: []Iface{{Name: "eth0", Net: "lan1", Driver: "i40e"}}},
	}}
	for _, tc := range []struct {
		name string
		pool *Pool
		reqs []HostReq
		want string
	}{
		{"arch", smallPool(), []HostReq{{Name: "h1", Arch: "sparc64"}},
			"host h1 needs a pool host with arch sparc64; closest: pool host a (arch is x86_64), b (arch is x86_64), c (arch is aarch64)"},
		{"param", smallPool(), []HostReq{{Name: "h1", Arch: "aarch64", Params: map[string]Pattern{"rack": {Value: "r[2-3]", Regexp: true}}}},
			"host h1 needs a pool host with arch aarch64 and param rack=~/r[2-3]/; closest: pool host b (arch is x86_64), c (rack is r1), a (arch is x86_64, rack is r1)"},
		{"driver", smallPool(), []HostReq{{Name: "h1", Arch: "aarch64", Ifaces: []IfaceReq{{Name: "eth0", Net: "x", Driver: "ixgbe"}}}},
			"host h1 needs interface eth0 on network x with driver ixgbe; closest: pool host c (driver is mlx5)"},
		{"network", conflictPool, []HostReq{
			{Name: "h1", Params: map[string]Pattern{"role": exact("server")}, Ifaces: []IfaceReq{{Name: "eth0", Net: "n2"}}},
			{Name: "h2", Ifaces: []IfaceReq{{Name: "eth1", Net: "n2", Driver: "ixgbe"}}},
		}, "host h2 needs interface eth1 on network n2 with driver ixgbe; closest: pool host p1 (taken by h1), m7 (has no interface on a network shared with h1's n2 interfaces), m9 (driver is i40e)"},
		{"too few hosts", smallPool(), []HostReq{{Name: "h1", Arch: "x86_64"}, {Name: "h2", Arch: "x86_64"}, {Name: "h3", Arch: "x86_64"}},
			"host h3 needs one more pool host: a pool host with arch x86_64; closest: pool host a (taken by h1), b (taken by h2)"},
		{"interfaces together", smallPool(), []HostReq{{Name: "h1", Arch: "x86_64", Ifaces: []IfaceReq{
			{Name: "e0", Net: "x", Driver: "i40e"}, {Name: "e1", Net: "x"}}}},
			"host h1 needs interface e1 on network x; closest: pool host a (has matching interfaces, but not together with e0), b (has matching interfaces, but not together with e0)"},
		{"too few networks", &Pool{Hosts: []Host{
			{Name: "m1", Ifaces: []Iface{{Name: "enp1s0", Net: "lan"}, {Name: "enp2s0", Net: "lan"}}},
			{Name: "m2", Ifaces: []Iface{{Name: "enp1s0", Net: "lan"}, {Name: "enp2s0", Net: "lan"}}},
		}}, []HostReq{
			{Name: "h1", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1"}, {Name: "eth1", Net: "n2"}}},
			{Name: "h2", Ifaces: []IfaceReq{{Name: "eth0", Net: "n1"}, {Name: "eth1", Net: "n2"}}},
		}, "host h1 needs interface eth1 on network n2; the pool has 1 network (lan), and the requirements label 2 (n1, n2): each label needs a pool network of its own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Map(tc.pool, tc.reqs, nil)
			var ue *UnsatError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want an *UnsatError", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n  %v\nwant:\n  %s", err, tc.want)
			}
			if _, err := AllMatches(tc.pool, tc.reqs, 10); !errors.As(err, &ue) {
				t.Errorf("AllMatches: err = %v, want an *UnsatError", err)
			}
		})
	}
}

func TestMapBadRequests(t *testing.T) {
	p := smallPool()
	for _, reqs := range [][]HostReq{
		nil,
		{{Name: ""}},
		{{Name: "h"}, {Name: "h"}},
		{{Name: "h", Ifaces: []IfaceReq{{Name: "e", Net: ""}}}},
		{{Name: "h", Ifaces: []IfaceReq{{Name: "e", Net: "x"}, {Name: "e", Net: "x"}}}},
	} {
		if _, err := Map(p, reqs, nil); err == nil {
			t.Errorf("Map(%v) gave no error", reqs)
		}
	}
}

// TestMapUnnamedInterface: an interface without a name is given by hwaddr.
func TestMapUnnamedInterface(t *testing.T) {
	p := &Pool{Hosts: []Host{{Name: "m", Ifaces: []Iface{{HWAddr: "52:54:00:00:00:01", Net: "n", Speed: 1000}}}}}
	mp, err := Map(p, []HostReq{{Name: "h", Ifaces: []IfaceReq{{Name: "e", Net: "x", Params: map[string]Pattern{"speed": exact(strconv.Itoa(1000))}}}}}, nil)
	if err != nil || mp.Hosts["h"].Ifaces["e"] != "52:54:00:00:00:01" {
		t.Errorf("got %v, %v", mp, err)
	}
}

// TestMapAgainstBruteForce compares Map and AllMatches with trying every
// assignment, on small random pools and requests.
func TestMapAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for iter := range 300 {
		p := &Pool{}
		for i := range 2 + rng.IntN(4) {
			h := Host{Name: fmt.Sprintf("m%d", i), Arch: []string{"x86_64", "aarch64"}[rng.IntN(2)]}
			for j := range rng.IntN(4) {
				h.Ifaces = append(h.Ifaces, Iface{Name: fmt.Sprintf("e%d", j),
					Net: []string{"", "n0", "n1", "n2"}[rng.IntN(4)], Driver: []string{"d0", "d1"}[rng.IntN(2)]})
			}
			p.Hosts = append(p.Hosts, h)
		}
		var reqs []HostReq
		for i := range 1 + rng.IntN(3) {
			r := HostReq{Name: fmt.Sprintf("h%d", i)}
			if rng.IntN(3) == 0 {
				r.Arch = "x86_64"
			}
			for j := range rng.IntN(3) {
				ir := IfaceReq{Name: fmt.Sprintf("i%d", j), Net: []string{"x", "y"}[rng.IntN(2)]}
				if rng.IntN(3) == 0 {
					ir.Driver = "d0"
				}
				r.Ifaces = append(r.Ifaces, ir)
			}
			reqs = append(reqs, r)
		}
		want := bruteForce(p, reqs)
		all, err := AllMatches(p, reqs, 0)
		if len(all) != want || (want == 0) != (err != nil) {
			t.Fatalf("#%d: AllMatches gave %d, %v; brute force %d\npool %+v\nreqs %+v", iter, len(all), err, want, p.Hosts, reqs)
		}
		for _, mp := range all {
			checkMapping(t, p, reqs, mp)
		}
		mp, err := Map(p, reqs, nil)
		if (want == 0) != (err != nil) {
			t.Fatalf("#%d: Map gave %v, %v; brute force %d", iter, mp, err, want)
		}
		if err == nil {
			checkMapping(t, p, reqs, mp)
		}
	}
}

// bruteForce counts the valid mappings by trying every assignment.
func bruteForce(p *Pool, reqs []HostReq) int {
	n := 0
	mp := Mapping{Hosts: map[string]HostMatch{}}
	var hostRec func(r int)
	var ifRec func(r, k int)
	hostRec = func(r int) {
		if r == len(reqs) {
			if mappingError(p, reqs, mp) == nil {
				n++
			}
			return
		}
		for _, h := range p.Hosts {
			mp.Hosts[reqs[r].Name] = HostMatch{Pool: h.Name, Ifaces: map[string]string{}}
			ifRec(r, 0)
		}
		delete(mp.Hosts, reqs[r].Name)
	}
	ifRec = func(r, k int) {
		if k == len(reqs[r].Ifaces) {
			hostRec(r + 1)
			return
		}
		hm := mp.Hosts[reqs[r].Name]
		for _, h := range p.Hosts {
			if h.Name != hm.Pool {
				continue
			}
			for _, ifc := range h.Ifaces {
				hm.Ifaces[reqs[r].Ifaces[k].Name] = ifc.Name
				ifRec(r, k+1)
			}
		}
		delete(hm.Ifaces, reqs[r].Ifaces[k].Name)
	}
	hostRec(0)
	return n
}
