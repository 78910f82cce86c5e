package nlspec

import (
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testNetns makes a throwaway network namespace and returns it and a
// netlink handle in it; both are closed at cleanup, which destroys the
// namespace and every device left in it.
func testNetns(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	runtime.LockOSThread()
	restored := false
	defer func() {
		// A thread left in the new namespace stays locked and dies with
		// the goroutine.
		if restored {
			runtime.UnlockOSThread()
		}
	}()
	orig, err := netns.Get()
	require.NoError(t, err, "get current netns")
	defer orig.Close()
	ns, err := netns.New()
	require.NoError(t, err, "new netns")
	t.Cleanup(func() { ns.Close() })
	require.NoError(t, netns.Set(orig), "restore netns")
	restored = true
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err, "netlink handle in the new netns")
	t.Cleanup(h.Close)
	return ns, h
}

// inNetns runs f on a thread switched to ns, for calls that act in the
// calling thread's namespace (a Tuntap's LinkAdd). If the thread cannot be
// switched back it stays locked and dies with the goroutine.
func inNetns(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		err = f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// TestKernelCreate creates every kind the kernel here supports in a
// throwaway namespace. Kinds the kernel lacks are logged, not failed,
// except those the lab needs.
func TestKernelCreate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("requires root")
	}
	ns, h := testNetns(t)
	index := func(name string) (int, error) {
		l, err := h.LinkByName(name)
		if err != nil {
			return 0, err
		}
		return l.Attrs().Index, nil
	}
	type kcase struct {
		spec     devices.Spec
		required bool // the lab needs it: failing to create it fails the test
	}
	cases := []kcase{
		{devices.Veth{Name: "lt0", PeerName: "lt1"}, true}, // the parent of the stacked kinds
		{devices.Bridge{Name: "lbr0", STP: true, AgeingTime: time.Minute, HelloTime: time.Second, MulticastSnooping: ptrTo(false)}, true},
		{devices.Bridge{Name: "lbr1", VlanFiltering: true}, false},
		{devices.Vxlan{Name: "lvx0", ID: 42, Local: "198.18.0.1", Remote: "198.18.0.2", Parent: "lt0"}, true},
		{devices.Vxlan{Name: "lvx1", ID: 43, Local: "2001:db8::1", Group: "ff05::42", Parent: "lt0", Port: 8472}, true},
		{devices.Vxlan{Name: "lvx2", External: true, Port: 4791}, true},
		{devices.Vxlan{Name: "lvxgpe0", External: true, GPE: true, Local: "198.18.0.1"}, true},
		{devices.Macvlan{Name: "lmv0", Parent: "lt0", Mode: "bridge"}, true},
		{devices.Macvtap{Name: "lmvt0", Parent: "lt1", Mode: "vepa"}, false},
		{devices.Ipvlan{Name: "lipv0", Parent: "lt1", Mode: "l2"}, false},
		{devices.Vlan{Name: "lt0.10", Parent: "lt0", ID: 10}, false},
		{devices.Bond{Name: "lbond0", Mode: "active-backup", Miimon: 100 * time.Millisecond}, false},
		{devices.Dummy{Name: "ldummy0"}, false},
		{devices.Vrf{Name: "lvrf0", Table: 100}, false},
		{devices.Tuntap{Name: "ltun0", Mode: "tun"}, false},
		{devices.Tuntap{Name: "ltap0", Mode: "tap", Multiqueue: true}, false},
		{devices.Geneve{Name: "lgnv0", ID: 7, Remote: "198.18.0.2"}, false},
		{devices.Gre{Name: "lgre0", Local: "198.18.0.1", Remote: "198.18.0.2", IKey: 1, OKey: 1}, false},
		{devices.Geneve{Name: "lgnv1", External: true}, false},
		{devices.Gretap{Name: "lgtap1", External: true}, false},
		{devices.Gretap{Name: "lgtap0", Local: "198.18.0.1", Remote: "198.18.0.3"}, false},
		{devices.Ip6gre{Name: "lip6gre0", Local: "2001:db8::1", Remote: "2001:db8::2"}, false},
		{devices.Ip6gretap{Name: "lip6gtap0", Local: "2001:db8::1", Remote: "2001:db8::3"}, false},
		{devices.IpIp{Name: "lipip0", Local: "198.18.0.1", Remote: "198.18.0.4", TTL: 64}, false},
		{devices.Sit{Name: "lsit0", Local: "198.18.0.1", Remote: "198.18.0.5", TTL: 64}, false},
		{devices.Ip6Tnl{Name: "lip6t0", Local: "2001:db8::1", Remote: "2001:db8::4", Proto: "ip6ip6"}, false},
		{devices.Vti{Name: "lvti0", Local: "198.18.0.1", Remote: "198.18.0.6", IKey: 1, OKey: 1}, false},
		{devices.Vti6{Name: "lvti60", Local: "2001:db8::1", Remote: "2001:db8::5", IKey: 1, OKey: 1}, false},
		{devices.Wireguard{Name: "lwg0"}, false},
		{devices.Team{Name: "lteam0"}, false},
		{devices.OvsBridge{Name: "lovs0"}, false},
	}
	var created, lacking, other []string
	for _, c := range cases {
		spec := c.spec
		link, err := Link(spec, index)
		if errors.Is(err, ErrNotNetlink) {
			t.Logf("%s: not made with netlink: %v", spec.Kind(), err)
			other = append(other, spec.Kind())
			continue
		}
		require.NoError(t, err, "%#v", spec)
		if gpe, ok := link.(*VxlanGPE); ok {
			err = inNetns(ns, func() error {
				_, err := GPERequest(gpe).Execute(unix.NETLINK_ROUTE, 0)
				return err
			})
		} else if tun, ok := link.(*netlink.Tuntap); ok {
			err = inNetns(ns, func() error { return h.LinkAdd(link) })
			for _, f := range tun.Fds {
				f.Close()
			}
		} else {
			err = h.LinkAdd(link)
		}
		if err != nil {
			if !c.required && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOENT)) {
				t.Logf("%s %s: the kernel lacks it: %v", spec.Kind(), spec.LinkName(), err)
				lacking = append(lacking, spec.Kind())
				continue
			}
			t.Errorf("create %s %s: %v", spec.Kind(), spec.LinkName(), err)
			continue
		}
		name := spec.LinkName()
		t.Cleanup(func() {
			if l, err := h.LinkByName(name); err == nil {
				h.LinkDel(l)
			}
		})
		got, err := h.LinkByName(name)
		if err != nil {
			t.Errorf("%s %s: created but not found: %v", spec.Kind(), name, err)
			continue
		}
		if got.Type() != link.Type() {
			t.Errorf("%s %s: created with type %q, want %q", spec.Kind(), name, got.Type(), link.Type())
			continue
		}
		if v, ok := spec.(devices.Vxlan); ok && v.External {
			// The kernel holds collect-metadata mode (and GPE: a device
			// with no Ethernet header, "link/none").
			vx, _ := got.(*netlink.Vxlan)
			if vx == nil || !vx.FlowBased {
				t.Errorf("%s: made without collect-metadata mode: %+v", name, got)
			}
			if wantNone := v.GPE; wantNone != (got.Attrs().EncapType == "none") {
				t.Errorf("%s: link type %q with GPE %v", name, got.Attrs().EncapType, v.GPE)
			}
		}
		created = append(created, spec.Kind())
	}
	t.Logf("created %d: %v", len(created), created)
	t.Logf("lacking %d: %v", len(lacking), lacking)
	t.Logf("not netlink %d: %v", len(other), other)
}
