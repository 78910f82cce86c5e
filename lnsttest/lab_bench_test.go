package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/pool"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// benchLabTopo is two hosts, each with eth0 on one network.
var benchLabTopo = pool.Topology{Hosts: []pool.TopoHost{
	{Name: "h1", Ifaces: []pool.TopoIface{{Name: "eth0", Net: "n1"}}},
	{Name: "h2", Ifaces: []pool.TopoIface{{Name: "eth0", Net: "n1"}}},
}}

// benchLabRounds is how many times each side of BenchmarkLabTwoHosts
// runs per iteration, the sides interleaved (ABC, then CBA).
const benchLabRounds = 6

// BenchmarkLabTwoHosts builds benchLabTopo fresh and tears it down, three
// ways, interleaved round by round, and prints the median per-round ratio
// with its spread:
//
//	RATIO lab2/netlink2 <x> (min, max, n)    lab / netlink
//	RATIO rootless2/lab2 <x> (min, max, n)   rootless / lab
//
// The sides:
//
//   - lab: what Require does for a recipe on a fresh instance of the
//     namespace lab (the session's lab agent, another process):
//     LabProvisioner.Reserve, which is Lab.Acquire and Lab.WaitUsable
//     (every interface up with its IPv6 link-local address past duplicate
//     address detection), and the clean check's snapshot of the new
//     instance as Require takes it (snapInstance: one SnapshotHosts call
//     to the lab agent for all its hosts); then Lab.Destroy, so that the next round builds
//     again. It times the Require part and the Destroy.
//   - rootless: the same with a lab agent in a user namespace
//     (-lnst.lab=rootless).
//   - netlink, the floor: the same topology built to the same usable
//     state with raw netlink calls in this process, as the lab agent
//     builds it (agent/host.go, agent/sw.go): host namespaces with lo up,
//     a switch namespace with lo up holding a bridge without multicast
//     snooping, per host a veth pair with its port on the bridge and eth0
//     in the host, both up; then, for every host in parallel, the wait
//     until eth0 has its link-local address (from address
//     notifications), detection off for it and back on after. It
//     makes namespaces with netns.New, without the mount namespace and
//     sysfs mount the lab gives each host (the lab's cost), and tears down
//     by closing the namespaces. It times the build with the wait, and
//     the teardown.
//
// Both sides give eth0 its link-local address without duplicate address
// detection and then turn detection back on (agent/labdad.go): before,
// both waited one to two seconds of kernel timer for it. Neither
// teardown deletes devices: both drop the last reference to each
// namespace (the lab's agent ends the host's thread), and the kernel
// destroys the namespace and its devices after the call returns. That
// deferred work is drained, untimed, after every side's round (see
// benchDrain), so that no side's leftover lands on the next side's build.
func BenchmarkLabTwoHosts(b *testing.B) {
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
	opts := labOptions()
	opts.UserNS = true
	rootless, err := pool.StartLab(opts)
	if err != nil {
		b.Fatalf("start the rootless lab: %v", err)
	}
	defer func() {
		if err := rootless.Close(); err != nil {
			b.Errorf("close rootless lab: %v", err)
		}
	}()
	drain, err := newBenchDrain()
	if err != nil {
		b.Fatalf("drain: %v", err)
	}
	defer drain.close()
	ctx := context.Background()

	type times struct{ build, teardown time.Duration }
	requireOnce := func(lab *pool.Lab, check bool) (times, error) {
		var t times
		t0 := time.Now()
		lp := &pool.LabProvisioner{Lab: lab}
		m, err := lp.Reserve(ctx, pool.Request{Topology: benchLabTopo})
		if err != nil {
			return t, err
		}
		in := m.Instance
		if !in.Fresh {
			// One an earlier benchmark released: not what is timed.
			return t, errors.Join(errors.New("the lab reused an instance"), lab.Destroy(in))
		}
		if err := (&session{}).snapInstance(lab, in); err != nil {
			return t, errors.Join(err, lab.Destroy(in))
		}
		t1 := time.Now()
		if check {
			for name, id := range in.Hosts {
				info, err := lab.Client().LinkInfo(ctx, &pb.LinkRef{Host: id, Name: "eth0"})
				if err == nil && info.State != "up" {
					err = fmt.Errorf("eth0 is %q", info.State)
				}
				if err != nil {
					return t, errors.Join(fmt.Errorf("host %s: %w", name, err), lab.Destroy(in))
				}
			}
		}
		t2 := time.Now()
		err = lab.Destroy(in)
		t.build, t.teardown = t1.Sub(t0), time.Since(t2)
		return t, err
	}
	rawOnce := func(check bool) (times, error) {
		var t times
		t0 := time.Now()
		r, err := benchBuildRaw()
		if err == nil {
			err = r.waitUsable()
		}
		t1 := time.Now()
		if err == nil && check {
			err = r.check()
		}
		t2 := time.Now()
		r.teardown()
		t.build, t.teardown = t1.Sub(t0), time.Since(t2)
		return t, err
	}
	sides := []struct {
		name string
		once func(check bool) (times, error)
	}{
		{"lab", func(c bool) (times, error) { return requireOnce(lab, c) }},
		{"netlink", rawOnce},
		{"rootless", func(c bool) (times, error) { return requireOnce(rootless, c) }},
	}
	// One untimed round of each: the lab agents make their switches on
	// first use, an instance an earlier benchmark released is destroyed,
	// and every side is checked to build what it should.
	for _, side := range sides {
		if _, err := side.once(true); err != nil && side.name != "netlink" {
			// A reused instance was destroyed: the next one is fresh.
			_, err = side.once(true)
			if err != nil {
				b.Fatalf("%s: %v", side.name, err)
			}
		} else if err != nil {
			b.Fatalf("%s: %v", side.name, err)
		}
	}
	if err := drain.wait(); err != nil {
		b.Fatal(err)
	}
	build := make([][]time.Duration, len(sides))
	total := make([][]time.Duration, len(sides))
	var drainT time.Duration
	round := 0
	for b.Loop() {
		for range benchLabRounds {
			for k := range sides {
				i := k
				if round%2 == 1 {
					i = len(sides) - 1 - k
				}
				t, err := sides[i].once(false)
				if err != nil {
					b.Fatalf("%s: %v", sides[i].name, err)
				}
				build[i] = append(build[i], t.build)
				total[i] = append(total[i], t.build+t.teardown)
				b.StopTimer()
				start := time.Now()
				if err := drain.wait(); err != nil {
					b.Fatal(err)
				}
				drainT += time.Since(start)
				b.StartTimer()
			}
			round++
		}
	}
	for i, side := range sides {
		med, _, _ := benchratio.Durations(build[i])
		b.ReportMetric(float64(med.Microseconds())/1000, side.name+"-build-ms")
		med, _, _ = benchratio.Durations(total[i])
		b.ReportMetric(float64(med.Microseconds())/1000, side.name+"-ms")
	}
	if round > 0 {
		b.ReportMetric(float64(drainT.Microseconds())/1000/float64(round*len(sides)), "drain-ms")
	}
	benchratio.Print("lab2/netlink2", benchratio.Ratios(total[0], total[1]))
	benchratio.Print("rootless2/lab2", benchratio.Ratios(total[2], total[0]))
	fmt.Printf("lab2/netlink2 build only (Require against build and DAD wait): %s\n", benchratio.Spread(benchratio.Ratios(build[0], build[1])))
}

// benchDrain waits out the kernel's deferred destruction of namespaces
// dropped so far. The kernel destroys dropped namespaces in order, all
// those queued at once in one batch, on one work queue: it drops a
// namespace of its own holding one end of a veth pair whose other end is
// in a namespace it keeps, and waits until that end is gone, which it is
// once the dropped namespace, and every one dropped before it, is
// destroyed.
type benchDrain struct {
	hold *benchNS
	n    int
}

func newBenchDrain() (*benchDrain, error) {
	hold, err := benchNewNS()
	if err != nil {
		return nil, err
	}
	return &benchDrain{hold: hold}, nil
}

func (d *benchDrain) close() { d.hold.close() }

// wait returns once the namespaces dropped before it are destroyed.
func (d *benchDrain) wait() error {
	x, err := benchNewNS()
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	d.n++
	name := fmt.Sprintf("drain%d", d.n)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "drain", PeerNamespace: netlink.NsFd(x.ns)}
	err = d.hold.nl.LinkAdd(veth)
	x.close()
	if err != nil {
		return fmt.Errorf("drain: add veth: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := d.hold.nl.LinkByName(name)
		var nf netlink.LinkNotFoundError
		switch {
		case errors.As(err, &nf):
			return nil
		case err != nil:
			return fmt.Errorf("drain: %w", err)
		case time.Now().After(deadline):
			return errors.New("drain: the kernel has not destroyed a dropped namespace in a minute")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// benchNewNetns makes a network namespace and returns its handle, leaving
// the calling goroutine's thread in the namespace it was in.
func benchNewNetns() (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	defer orig.Close()
	ns, err := netns.New()
	if serr := netns.Set(orig); serr != nil {
		// The thread is in an unknown namespace: keep it locked, so that
		// the runtime ends it with the goroutine rather than reuse it.
		if err == nil {
			ns.Close()
		}
		return -1, fmt.Errorf("back to the original namespace: %w", serr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return -1, err
	}
	return ns, nil
}

// benchNS is a namespace with a netlink handle in it.
type benchNS struct {
	ns netns.NsHandle
	nl *netlink.Handle
}

// benchNewNS makes a namespace with lo up, as the lab makes a host.
func benchNewNS() (*benchNS, error) {
	ns, err := benchNewNetns()
	if err != nil {
		return nil, fmt.Errorf("new namespace: %w", err)
	}
	n := &benchNS{ns: ns}
	n.nl, err = netlink.NewHandleAt(ns)
	if err == nil {
		var lo netlink.Link
		lo, err = n.nl.LinkByName("lo")
		if err == nil {
			err = n.nl.LinkSetUp(lo)
		}
	}
	if err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *benchNS) close() {
	if n.nl != nil {
		n.nl.Close()
	}
	n.ns.Close()
}

// waitLinkLocal waits, from address notifications, until device name has
// an IPv6 link-local address that has finished duplicate address
// detection.
func (n *benchNS) waitLinkLocal(name string) error {
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	ns := n.ns
	if err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{Namespace: &ns}); err != nil {
		return fmt.Errorf("subscribe to addresses: %w", err)
	}
	defer func() {
		close(done)
		go func() {
			for range ch {
			}
		}()
	}()
	l, err := n.nl.LinkByName(name)
	if err != nil {
		return err
	}
	deadline := time.After(30 * time.Second)
	for {
		addrs, err := n.nl.AddrList(l, unix.AF_INET6)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if a.IP.IsLinkLocalUnicast() {
				if a.Flags&unix.IFA_F_DADFAILED != 0 {
					return fmt.Errorf("%s: duplicate address detection of %s failed", name, a.IP)
				}
				if a.Flags&unix.IFA_F_TENTATIVE == 0 {
					return nil
				}
			}
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("%s: no usable link-local address in 30s", name)
		}
	}
}

// benchRaw is one raw build of benchLabTopo: a switch namespace holding
// the bridge, and the hosts.
type benchRaw struct {
	sw    *benchNS
	hosts []*benchNS
}

// benchBuildRaw builds benchLabTopo in the order the lab does: per host,
// its namespace, then (the first time) the switch and its bridge, then the
// host's veth pair. On error, what was built is returned for teardown.
func benchBuildRaw() (*benchRaw, error) {
	r := &benchRaw{}
	var bridge netlink.Link
	for i := range benchLabTopo.Hosts {
		h, err := benchNewNS()
		if err != nil {
			return r, err
		}
		r.hosts = append(r.hosts, h)
		// As the lab's Connect: eth0's link-local address comes
		// without detection (agent/labdad.go).
		if err := benchQuietDAD(h); err != nil {
			return r, err
		}
		if r.sw == nil {
			if r.sw, err = benchNewNS(); err != nil {
				return r, err
			}
			off := false
			br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br1"}, MulticastSnooping: &off}
			if err := r.sw.nl.LinkAdd(br); err != nil {
				return r, fmt.Errorf("add bridge: %w", err)
			}
			if err := r.sw.nl.LinkSetUp(br); err != nil {
				return r, err
			}
		}
		// As the lab's connect: find the bridge, add the veth pair with
		// its port on the bridge and eth0 in the host, set both up.
		if bridge, err = r.sw.nl.LinkByName("br1"); err != nil {
			return r, err
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: fmt.Sprintf("p%d", i+1), MasterIndex: bridge.Attrs().Index},
			PeerName:      "eth0",
			PeerNamespace: netlink.NsFd(h.ns),
		}
		if err := r.sw.nl.LinkAdd(veth); err != nil {
			return r, fmt.Errorf("add veth: %w", err)
		}
		if err := r.sw.nl.LinkSetUp(veth); err != nil {
			return r, err
		}
		eth0, err := h.nl.LinkByName("eth0")
		if err != nil {
			return r, err
		}
		if err := h.nl.LinkSetUp(eth0); err != nil {
			return r, err
		}
	}
	return r, nil
}

// waitUsable waits, for every host in parallel, until its eth0 is usable
// as the lab makes it: its link-local address there, detection back on.
func (r *benchRaw) waitUsable() error {
	var wg sync.WaitGroup
	errs := make([]error, len(r.hosts))
	for i, h := range r.hosts {
		wg.Go(func() { errs[i] = benchSettleDAD(h, "eth0") })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// teardown closes every namespace; the kernel removes them and their
// devices after it returns.
func (r *benchRaw) teardown() {
	for i := len(r.hosts) - 1; i >= 0; i-- {
		r.hosts[i].close()
	}
	if r.sw != nil {
		r.sw.close()
	}
}

// check checks that a raw build is what the lab builds.
func (r *benchRaw) check() error {
	br, err := r.sw.nl.LinkByName("br1")
	if err != nil {
		return err
	}
	for i, h := range r.hosts {
		eth0, err := h.nl.LinkByName("eth0")
		if err != nil {
			return fmt.Errorf("host %d: %w", i, err)
		}
		if eth0.Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("host %d: eth0 is down", i)
		}
		port, err := r.sw.nl.LinkByName(fmt.Sprintf("p%d", i+1))
		if err != nil {
			return err
		}
		if port.Attrs().MasterIndex != br.Attrs().Index || port.Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("port p%d is down or not on the bridge", i+1)
		}
	}
	return nil
}
