package lnsttest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/devices/tc"
	"github.com/lnst-go/lnst/pool"
)

// Impair is an interface requirement's option that impairs what the
// interface receives: a lossy or slow network declared with the topology,
//
//	lnsttest.IfaceReq("eth0", lnsttest.Net("n1"), lnsttest.Impair{Delay: 20 * time.Millisecond, Loss: 1})
//
// In the local lab it is a qdisc on the lab switch's port towards the
// interface: netem for Delay, Jitter or Loss (with Rate), tbf for a Rate
// alone. The switch runs on this machine's kernel, also under the VM lab:
// where that kernel lacks the qdisc, under -lnst.lab=vm each guest
// impairs what its own interface receives, as a pool machine does
// (below), and on the namespace lab (and -lnst.lab=auto) the recipe
// skips, naming the qdisc. A pool machine's interface is impaired only where its pool
// entry says so (interface param impairable: "true"; the mapper picks only
// such interfaces): there the qdisc is put on an ifb device that the
// interface's received traffic is redirected through, all undone at
// cleanup.
type Impair struct {
	// Delay is added to every packet; Jitter varies it by up to that much
	// either way.
	Delay, Jitter time.Duration
	// Loss drops that share of packets, 0..100 (%).
	Loss float64
	// Rate limits the rate (0: none).
	Rate tc.Rate
}

func (im Impair) applyIface(i *ifaceReq) { i.impair = &im }

// ImpairParam is the pool interface param that allows impairing it.
const ImpairParam = "impairable"

// qdisc is the qdisc that makes the impairment.
func (im Impair) qdisc() (tc.Qdisc, error) {
	switch {
	case im.Delay != 0 || im.Jitter != 0 || im.Loss != 0:
		return tc.Netem{Handle: "1:", Delay: im.Delay, Jitter: im.Jitter, Loss: im.Loss, Rate: im.Rate}, nil
	case im.Rate != 0:
		// A bucket of 5 ms at the rate (at least four full frames), and
		// up to 50 ms of queue.
		burst := max(int(im.Rate.BytesPerSecond()/200), 4*1514)
		return tc.Tbf{Handle: "1:", Rate: im.Rate, Burst: burst, Latency: 50 * time.Millisecond}, nil
	}
	return nil, errors.New("Impair sets nothing: give Delay, Jitter, Loss or Rate")
}

// check validates the impairment of interface iface of host.
func (im Impair) check(host, iface string) (tc.Qdisc, error) {
	q, err := im.qdisc()
	if err == nil {
		err = q.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("host %q interface %q: %w", host, iface, err)
	}
	return q, nil
}

// impairUnmet says which qdisc kind the impairments of reqs need that the
// local lab's switch kernel lacks, "" if none.
func (s *session) impairUnmet(reqs []Requirement) (string, error) {
	for _, r := range reqs {
		for _, i := range r.host.ifaces {
			if i.impair == nil {
				continue
			}
			q, err := i.impair.check(r.host.name, i.name)
			if err != nil {
				return "", err
			}
			lab, err := s.labNow() // the namespace lab's agent: its kernel runs every switch
			if err != nil {
				return "", err
			}
			p, err := s.probe()
			if err != nil {
				return "", err
			}
			if !p.Qdiscs[q.Kind()] {
				return fmt.Sprintf("host %q interface %q: Impair needs the %s qdisc on the lab switch, which runs on this machine's kernel (%s), and it lacks %s",
					r.host.name, i.name, q.Kind(), lab.Hello().Kernel, q.Kind()), nil
			}
		}
	}
	return "", nil
}

// impairKinds are the kernel features impairing a pool machine's
// interface needs beside the qdisc itself.
var impairKinds = []string{"ifb", "ingress", "cls_u32", "act_mirred"}

// impairPool impairs, on a pool machine, what the interface d receives:
// its ingress is redirected through an ifb device whose root qdisc is q.
// An ingress or clsact qdisc the machine has already is used as it is,
// the redirect taking the first priority free there (the ifb hands the
// packets back past the machine's own ingress filters).
func impairPool(t testing.TB, h *Host, d *Device, q tc.Qdisc) {
	t.Helper()
	ifb := h.Create(t, devices.Ifb{Name: impairIfbName(d.Name())})
	ifb.Up(t)
	ifb.AddQdisc(t, q)
	if !slices.ContainsFunc(d.Qdiscs(t), func(q tc.QdiscInfo) bool { return q.Parent == "ingress" }) {
		d.AddQdisc(t, tc.Ingress{})
	}
	prio := 1
	for slices.ContainsFunc(d.Filters(t), func(f tc.FilterInfo) bool { return f.Parent == "ingress" && f.Prio == prio }) {
		prio++
	}
	d.AddFilter(t, tc.U32{Parent: "ingress", Prio: prio, Actions: tc.ActionList{tc.Mirred{Dev: ifb.Name()}}})
}

// impairIfbName names the ifb of an impaired interface: "ifb-" and as
// much of its name as fits.
func impairIfbName(dev string) string {
	n := "ifb-" + dev
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// topoImpair is the qdisc the lab puts on the switch port of interface i,
// nil for none; validate has checked it.
func topoImpair(i ifaceReq) tc.Qdisc {
	if i.impair == nil {
		return nil
	}
	q, _ := i.impair.qdisc()
	return q
}

// impairPoolReqs adds, to a pool interface requirement, the param that
// allows impairing it.
func impairPoolReqs(i ifaceReq, req *pool.IfaceReq) {
	if i.impair == nil {
		return
	}
	if req.Params == nil {
		req.Params = map[string]pool.Pattern{}
	}
	req.Params[ImpairParam] = pool.Pattern{Value: "true"}
}
