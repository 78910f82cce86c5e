package lnsttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/pool"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// benchScaleNets is how many networks the large benchmark labs have.
const benchScaleNets = 10

// benchScaleTopo is n hosts on benchScaleNets networks: host i has eth0 on
// network i mod 10, and every even host also eth1 on the next network.
func benchScaleTopo(n int) pool.Topology {
	var t pool.Topology
	for i := range n {
		h := pool.TopoHost{Name: fmt.Sprintf("h%d", i+1), Ifaces: []pool.TopoIface{{Name: "eth0", Net: fmt.Sprintf("n%d", i%benchScaleNets)}}}
		if i%2 == 1 {
			h.Ifaces = append(h.Ifaces, pool.TopoIface{Name: "eth1", Net: fmt.Sprintf("n%d", (i+1)%benchScaleNets)})
		}
		t.Hosts = append(t.Hosts, h)
	}
	return t
}

// benchInNS runs f on a thread in namespace ns (for /proc/sys/net, which
// shows the namespace of the thread that opens it).
func benchInNS(ns netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime ends it with the goroutine.
		return errors.Join(ferr, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func benchWriteSysctl(key, value string) error {
	return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(value), 0)
}

// benchQuietDAD turns detection off for devices made later in n's
// namespace, as the lab agent's Connect does (agent/labdad.go).
func benchQuietDAD(n *benchNS) error {
	return benchInNS(n.ns, func() error { return benchWriteSysctl("net.ipv6.conf.default.accept_dad", "0") })
}

// benchSettleDAD waits for dev's link-local address and puts detection
// back on for dev and the namespace, as the agent does.
func benchSettleDAD(n *benchNS, dev string) error {
	if err := n.waitLinkLocal(dev); err != nil {
		return err
	}
	return benchInNS(n.ns, func() error {
		return errors.Join(benchWriteSysctl("net.ipv6.conf.default.accept_dad", "1"), benchWriteSysctl("net.ipv6.conf."+dev+".accept_dad", "1"))
	})
}

// benchRawN is a raw build of a benchScaleTopo: a switch namespace per
// network with its bridge, and the hosts.
type benchRawN struct {
	sws   []*benchNS
	mu    sync.Mutex
	hosts []*benchNS
}

// benchBuildRawN builds topo with raw netlink calls, as the lab does it,
// to the same usable state: the switches first, then the hosts, par at a
// time (each: namespace with lo up, detection off, a veth pair per
// interface with its port on the network's bridge, both ends up, the wait
// for the link-local address, detection back on).
func benchBuildRawN(topo pool.Topology, par int) (*benchRawN, error) {
	r := &benchRawN{}
	nets := map[string]int{}
	for _, h := range topo.Hosts {
		for _, i := range h.Ifaces {
			if _, ok := nets[i.Net]; ok {
				continue
			}
			sw, err := benchNewNS()
			if err != nil {
				return r, err
			}
			r.sws = append(r.sws, sw)
			nets[i.Net] = len(r.sws) - 1
			off := false
			br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}, MulticastSnooping: &off}
			if err := sw.nl.LinkAdd(br); err != nil {
				return r, fmt.Errorf("add bridge: %w", err)
			}
			if err := sw.nl.LinkSetUp(br); err != nil {
				return r, err
			}
		}
	}
	var swMu = make([]sync.Mutex, len(r.sws))
	var port int
	var portMu sync.Mutex
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	errs := make([]error, len(topo.Hosts))
	for hi, h := range topo.Hosts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[hi] = func() error {
				n, err := benchNewNS()
				if err != nil {
					return err
				}
				r.mu.Lock()
				r.hosts = append(r.hosts, n)
				r.mu.Unlock()
				for _, i := range h.Ifaces {
					if err := benchQuietDAD(n); err != nil {
						return err
					}
					k := nets[i.Net]
					sw := r.sws[k]
					portMu.Lock()
					port++
					name := fmt.Sprintf("p%d", port)
					portMu.Unlock()
					swMu[k].Lock()
					err := func() error {
						bridge, err := sw.nl.LinkByName("br0")
						if err != nil {
							return err
						}
						veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, MasterIndex: bridge.Attrs().Index}, PeerName: i.Name, PeerNamespace: netlink.NsFd(n.ns)}
						if err := sw.nl.LinkAdd(veth); err != nil {
							return fmt.Errorf("add veth: %w", err)
						}
						return sw.nl.LinkSetUp(veth)
					}()
					swMu[k].Unlock()
					if err != nil {
						return err
					}
					l, err := n.nl.LinkByName(i.Name)
					if err != nil {
						return err
					}
					if err := n.nl.LinkSetUp(l); err != nil {
						return err
					}
					if err := benchSettleDAD(n, i.Name); err != nil {
						return err
					}
				}
				return nil
			}()
		})
	}
	wg.Wait()
	return r, errors.Join(errs...)
}

func (r *benchRawN) teardown() {
	for _, h := range r.hosts {
		h.close()
	}
	for _, sw := range r.sws {
		sw.close()
	}
}

// benchMemUsedKiB is the machine's memory in use (MemTotal-MemAvailable).
func benchMemUsedKiB() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	var total, avail int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fs[1], 10, 64)
		switch fs[0] {
		case "MemTotal:":
			total = v
		case "MemAvailable:":
			avail = v
		}
	}
	return total - avail
}

// BenchmarkLabScale50 and BenchmarkLabScale200: RATIO lab50/netlink50
// and lab200/netlink200, median per-round ratio with spread.
func BenchmarkLabScale50(b *testing.B)  { benchLabScale(b, 50) }
func BenchmarkLabScale200(b *testing.B) { benchLabScale(b, 200) }

// benchLabScale builds benchScaleTopo(n) fresh and tears it down two
// ways, interleaved round by round (AB, then BA), and prints RATIO
// lab<n>/netlink<n> over build plus teardown:
//
//   - lab: what Require does for a recipe on a fresh instance of the
//     namespace lab: LabProvisioner.Reserve (Lab.Acquire, which builds
//     the hosts in parallel, and WaitUsable) and the clean check's
//     snapshot of every host (snapInstance, as Require takes it: one
//     SnapshotHosts call to the lab agent); then Lab.Destroy.
//   - netlink, the floor: the same topology built to the same usable state
//     with raw netlink calls in this process (benchBuildRawN, as many
//     hosts at a time as the lab), torn down by closing the namespaces.
//
// The kernel's deferred destruction of the dropped namespaces is drained,
// untimed, after each side (benchDrain), so it lands on neither side's
// next build. It also prints the machine memory a namespace host costs
// (the lab's instance built, against before), as ns_host_kib.
func benchLabScale(b *testing.B, n int) {
	s := current()
	if s == nil || s.pool != nil {
		b.Skip("requires the local lab: run under lnsttest.Main without -lnst.pool")
	}
	if unix.Geteuid() != 0 {
		b.Skip("the netlink side needs root")
	}
	lab, err := s.labNow()
	if err != nil {
		b.Fatalf("start the lab: %v", err)
	}
	drain, err := newBenchDrain()
	if err != nil {
		b.Fatalf("drain: %v", err)
	}
	defer drain.close()
	ctx := context.Background()
	topo := benchScaleTopo(n)
	var memKiB []float64
	var reserve, snaps []time.Duration
	labOnce := func() (time.Duration, error) {
		t0 := time.Now()
		before := benchMemUsedKiB()
		lp := &pool.LabProvisioner{Lab: lab}
		m, err := lp.Reserve(ctx, pool.Request{Topology: topo})
		if err != nil {
			return 0, err
		}
		in := m.Instance
		if !in.Fresh {
			return 0, errors.Join(errors.New("the lab reused an instance"), lab.Destroy(in))
		}
		reserve = append(reserve, time.Since(t0))
		t1 := time.Now()
		if err := (&session{}).snapInstance(lab, in); err != nil {
			return 0, errors.Join(err, lab.Destroy(in))
		}
		snaps = append(snaps, time.Since(t1))
		memKiB = append(memKiB, float64(benchMemUsedKiB()-before)/float64(n))
		err = lab.Destroy(in)
		return time.Since(t0), err
	}
	var rawBuild []time.Duration
	rawOnce := func() (time.Duration, error) {
		t0 := time.Now()
		r, err := benchBuildRawN(topo, 8)
		rawBuild = append(rawBuild, time.Since(t0))
		r.teardown()
		return time.Since(t0), err
	}
	sides := []struct {
		name string
		once func() (time.Duration, error)
	}{{"lab", labOnce}, {"netlink", rawOnce}}
	for _, side := range sides {
		if _, err := side.once(); err != nil {
			b.Fatalf("%s: %v", side.name, err)
		}
		if err := drain.wait(); err != nil {
			b.Fatal(err)
		}
	}
	memKiB, reserve, rawBuild, snaps = nil, nil, nil, nil
	total := make([][]time.Duration, len(sides))
	round := 0
	for b.Loop() {
		for k := range sides {
			i := k
			if round%2 == 1 {
				i = len(sides) - 1 - k
			}
			d, err := sides[i].once()
			if err != nil {
				b.Fatalf("%s: %v", sides[i].name, err)
			}
			total[i] = append(total[i], d)
			b.StopTimer()
			if err := drain.wait(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		round++
	}
	for i, side := range sides {
		med, lo, hi := benchratio.Durations(total[i])
		b.ReportMetric(float64(med.Microseconds())/1000, side.name+"-ms")
		fmt.Printf("%s%d: median %v (min %v, max %v, n %d)\n", side.name, n, med.Round(time.Millisecond), lo.Round(time.Millisecond), hi.Round(time.Millisecond), len(total[i]))
	}
	mem := benchratio.Median(memKiB)
	b.ReportMetric(mem, "ns_host_kib")
	fmt.Printf("ns_host_kib %.0f (machine memory in use per namespace host of lab%d, median of %d builds)\n", mem, n, len(memKiB))
	benchratio.Print(fmt.Sprintf("lab%d/netlink%d", n, n), benchratio.Ratios(total[0], total[1]))
	med, lo, hi := benchratio.Durations(snaps)
	b.ReportMetric(float64(med.Microseconds())/1000, "snapshot-ms")
	fmt.Printf("lab%d snapshot of the new instance (snapInstance): median %v (min %v, max %v, n %d)\n", n, med.Round(time.Millisecond), lo.Round(time.Millisecond), hi.Round(time.Millisecond), len(snaps))
	fmt.Printf("lab%d/netlink%d build only (Reserve, without the clean check's snapshots and the teardown, against the raw build): %s\n", n, n, benchratio.Spread(benchratio.Ratios(reserve, rawBuild)))
}
