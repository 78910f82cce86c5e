package pool

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// genPool is a deterministic pool of n hosts with 4 interfaces each on 10
// networks, with varied archs, params, drivers and speeds.
func genPool(n int) *Pool {
	rng := rand.New(rand.NewPCG(1, 2))
	drivers := []string{"ixgbe", "i40e", "mlx5_core", "virtio_net"}
	speeds := []int{1000, 10000, 25000, 100000}
	p := &Pool{Path: "gen.yaml"}
	for i := range n {
		h := Host{
			Name:     fmt.Sprintf("m%04d", i),
			Agent:    fmt.Sprintf("m%04d.lab.example:7777", i),
			Insecure: true,
			Arch:     "x86_64",
			Params: map[string]string{
				"rack": fmt.Sprintf("r%d", rng.IntN(20)),
				"cpu":  []string{"intel", "amd"}[rng.IntN(2)],
			},
		}
		if rng.IntN(100) < 15 {
			h.Arch = "aarch64"
		}
		for j := range 4 {
			h.Ifaces = append(h.Ifaces, Iface{
				Name:   fmt.Sprintf("enp%ds0", j+1),
				Net:    fmt.Sprintf("net%d", rng.IntN(10)),
				Driver: drivers[rng.IntN(len(drivers))],
				Speed:  speeds[rng.IntN(len(speeds))],
				Params: map[string]string{"sriov": []string{"yes", "no"}[rng.IntN(2)]},
			})
		}
		p.Hosts = append(p.Hosts, h)
	}
	return p
}

// satRequest is 10 hosts with 20 interfaces on 3 networks.
func satRequest() []HostReq {
	labels := []string{"n1", "n2", "n3"}
	var reqs []HostReq
	for i := range 10 {
		r := HostReq{Name: fmt.Sprintf("h%d", i), Ifaces: []IfaceReq{
			{Name: "eth0", Net: labels[i%3]},
			{Name: "eth1", Net: labels[(i+1)%3]},
		}}
		switch i % 5 {
		case 0:
			r.Ifaces[0].Driver = "ixgbe"
		case 1:
			r.Params = map[string]Pattern{"rack": {Value: "r1[0-9]", Regexp: true}}
		case 2:
			r.Ifaces[1].Params = map[string]Pattern{"speed": exact("25000")}
		case 3:
			r.Params = map[string]Pattern{"cpu": exact("amd")}
			r.Ifaces[0].Params = map[string]Pattern{"sriov": exact("yes")}
		case 4:
			r.Arch = "aarch64"
		}
		reqs = append(reqs, r)
	}
	return reqs
}

// unsatRequest is 10 aarch64 hosts, each with a 25G mlx5_core interface on
// one network n1: every host fits the pool alone, but no pool network has
// that many such hosts.
func unsatRequest() []HostReq {
	var reqs []HostReq
	for i := range 10 {
		reqs = append(reqs, HostReq{Name: fmt.Sprintf("h%d", i), Arch: "aarch64", Ifaces: []IfaceReq{
			{Name: "eth0", Net: "n1", Driver: "mlx5_core", Params: map[string]Pattern{"speed": exact("25000")}},
			{Name: "eth1", Net: []string{"n2", "n3"}[i%2]},
		}})
	}
	return reqs
}

func TestMapper1000(t *testing.T) {
	p := genPool(1000)
	reqs := satRequest()
	mp, err := Map(p, reqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkMapping(t, p, reqs, mp)
	all, err := AllMatches(p, reqs, 50)
	if err != nil || len(all) != 50 {
		t.Fatalf("AllMatches: %d, %v", len(all), err)
	}
	for _, mp := range all {
		checkMapping(t, p, reqs, mp)
	}
	_, err = Map(p, unsatRequest(), nil)
	var ue *UnsatError
	if !errors.As(err, &ue) {
		t.Fatalf("unsat request: err = %v", err)
	}
	t.Log(err)
}

func BenchmarkMapper1000(b *testing.B) {
	p := genPool(1000)
	reqs := satRequest()
	for b.Loop() {
		if _, err := Map(p, reqs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMapper1000Unsat(b *testing.B) {
	p := genPool(1000)
	reqs := unsatRequest()
	for b.Loop() {
		if _, err := Map(p, reqs, nil); err == nil {
			b.Fatal("mapped an unsatisfiable request")
		}
	}
}
