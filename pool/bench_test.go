package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// benchTopo is two hosts, each with eth0 on one network.
var benchTopo = Topology{Hosts: []TopoHost{
	{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
	{Name: "h2", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}},
}}

// BenchmarkLabTwoHosts builds and tears down benchTopo through the lab
// agent (Acquire, then Destroy so that the next Acquire builds again), the
// same topology with raw netlink calls in this process, and through the
// rootless lab's agent (in a user namespace), and prints
//
//	RATIO lab2/netlink2 <x>
//	RATIO rootless2/lab2 <x>
//
// The lab side runs first, then the raw side, each back to back: the
// kernel destroys a namespace, and the devices in it, after the call that
// dropped it returns, and that deferred work slows the next builds.
//
// The raw side does what the lab agent does (agent/host.go, agent/sw.go):
// host namespaces with lo up, a switch namespace with lo up holding a
// bridge without multicast snooping, per host a veth pair with its port on
// the bridge and eth0 in the host, both up. It makes namespaces with
// netns.New, without the mount namespace and sysfs mount the lab gives
// each host, and tears down by closing the namespaces, as the lab does.
// Neither side waits for IPv6 duplicate address detection of the new
// link-local addresses (Require does, with Lab.WaitUsable, on a fresh
// topology): that is a kernel timer of about a second, not work.
func BenchmarkLabTwoHosts(b *testing.B) {
	lab, err := StartLab(LabOptions{AgentLogLevel: "warn"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := lab.Close(); err != nil {
			b.Errorf("close lab: %v", err)
		}
	}()
	// The rootless lab: the same agent in a user namespace (-lnst.lab=rootless).
	rootless, err := StartLab(LabOptions{AgentLogLevel: "warn", UserNS: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := rootless.Close(); err != nil {
			b.Errorf("close rootless lab: %v", err)
		}
	}()
	ctx := context.Background()

	// labOnce and rawOnce build and tear down the topology once, adding
	// the time each part took to t; check also checks what was built.
	labOnceOn := func(lab *Lab, t *benchTimes, check bool) error {
		t0 := time.Now()
		in, err := lab.Acquire(ctx, benchTopo)
		if err != nil {
			return err
		}
		t1 := time.Now()
		if check {
			for name, h := range in.Hosts {
				info, err := lab.Client().LinkInfo(ctx, &pb.LinkRef{Host: h, Name: "eth0"})
				if err == nil && info.State != "up" {
					err = fmt.Errorf("eth0 is %q", info.State)
				}
				if err != nil {
					return errors.Join(fmt.Errorf("host %s: %w", name, err), lab.Destroy(in))
				}
			}
		}
		t2 := time.Now()
		err = lab.Destroy(in)
		t.add(t1.Sub(t0), time.Since(t2))
		return err
	}
	labOnce := func(t *benchTimes, check bool) error { return labOnceOn(lab, t, check) }
	rootlessOnce := func(t *benchTimes, check bool) error { return labOnceOn(rootless, t, check) }
	rawOnce := func(t *benchTimes, check bool) error {
		t0 := time.Now()
		r, err := benchBuildRaw()
		t1 := time.Now()
		if err == nil && check {
			err = r.check()
		}
		t2 := time.Now()
		r.teardown()
		t.add(t1.Sub(t0), time.Since(t2))
		return err
	}

	// One untimed round of each: the lab agent makes its switch on first
	// use, and both sides are checked to build what they should.
	if err := labOnce(&benchTimes{}, true); err != nil {
		b.Fatalf("lab: %v", err)
	}
	if err := rawOnce(&benchTimes{}, true); err != nil {
		b.Fatalf("netlink: %v", err)
	}
	if err := rootlessOnce(&benchTimes{}, true); err != nil {
		b.Fatalf("rootless: %v", err)
	}

	// Each side runs back to back in its own sub-benchmark, so that each
	// pays for the deferred destruction of the namespaces it dropped, as
	// it would in a long run. (Interleaving the two in one loop charges
	// most of the raw side's deferred work to the lab's next build, hidden
	// in the time the lab's teardown spends waiting for the kernel.) The
	// lab goes first: its teardown deletes devices itself and leaves the
	// kernel little to do after it, while the raw side's leftover at its
	// end would fall on the lab's first, few, iterations.
	var perOp [3]time.Duration // lab, netlink, rootless
	for i, side := range []struct {
		name string
		once func(*benchTimes, bool) error
	}{{"lab", labOnce}, {"netlink", rawOnce}, {"rootless", rootlessOnce}} {
		b.Run(side.name, func(b *testing.B) {
			b.ReportAllocs()
			var t benchTimes
			for b.Loop() {
				if err := side.once(&t, false); err != nil {
					b.Fatalf("%s: %v", side.name, err)
				}
			}
			if b.N > 0 {
				n := float64(b.N)
				b.ReportMetric(float64(t.build.Nanoseconds())/n, "build-ns/op")
				b.ReportMetric(float64(t.teardown.Nanoseconds())/n, "teardown-ns/op")
				perOp[i] = benchPerOp(b)
			}
		})
	}
	if perOp[0] > 0 && perOp[1] > 0 {
		fmt.Printf("RATIO lab2/netlink2 %.2f\n", float64(perOp[0])/float64(perOp[1]))
	}
	if perOp[0] > 0 && perOp[2] > 0 {
		fmt.Printf("RATIO rootless2/lab2 %.2f\n", float64(perOp[2])/float64(perOp[0]))
	}
}

// benchPerOp is the time per iteration of the b.Loop just ended.
func benchPerOp(b *testing.B) time.Duration {
	return b.Elapsed() / time.Duration(b.N)
}

// benchTimes adds up the time spent building and tearing down.
type benchTimes struct{ build, teardown time.Duration }

func (t *benchTimes) add(build, teardown time.Duration) {
	t.build += build
	t.teardown += teardown
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

// benchRaw is one raw build of benchTopo: a switch namespace holding the
// bridge, and the hosts.
type benchRaw struct {
	sw    *benchNS
	hosts []*benchNS
}

// benchBuildRaw builds benchTopo in the order the lab does: per host, its
// namespace, then (the first time) the switch and its bridge, then the
// host's veth pair. On error, what was built is returned for teardown.
func benchBuildRaw() (*benchRaw, error) {
	r := &benchRaw{}
	var bridge netlink.Link
	for i := range benchTopo.Hosts {
		h, err := benchNewNS()
		if err != nil {
			return r, err
		}
		r.hosts = append(r.hosts, h)
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
