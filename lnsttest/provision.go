package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
)

// Machines of a pool file's provisioners join the pool as slots: pool
// hosts named "<provisioner>#<n>" (pool.SlotName), one per machine the
// provisioner may hold, described by its template for the mapper. A slot
// is leased like a static host; the first recipe that leases it reserves
// a machine for it (provision), later recipes reuse that machine while it
// is alive, and a machine no recipe uses for the provisioner's idle time
// is released (early release: Go's testing package does not tell Main
// which tests remain).

// provAttempts is how many times a failed reservation is tried.
const provAttempts = 3

// aliveTimeout bounds the check of whether a provisioned machine lives.
const aliveTimeout = 10 * time.Second

// releaseTimeout bounds a release run at the end, after a signal.
const releaseTimeout = 2 * time.Minute

// provSlot is one machine place of a provisioner.
type provSlot struct {
	name string
	prov *pool.ExecProvisioner
	// n is the slot's place among its provisioner's, from 1: name is
	// "<provisioner>#<n>".
	n int
	// machine is the reservation the slot holds, nil if none.
	machine *pool.Machine
	idle    *time.Timer
}

// stopIdle stops the slot's idle release, if one is pending. Called with
// provisioning.mu held.
func (sl *provSlot) stopIdle() {
	if sl.idle != nil {
		sl.idle.Stop()
		sl.idle = nil
	}
}

// provisioning is the provisioner side of a staticPool.
type provisioning struct {
	ctx    context.Context // cancelled by cancelReservations: pending reservations end
	cancel context.CancelFunc
	wg     sync.WaitGroup // reservations and releases in flight

	mu     sync.Mutex // guards slots' machines and closed; taken after staticPool.mu
	slots  map[string]*provSlot
	closed bool
}

// withProvisioners returns the pool p with a slot host for every machine
// its provisioners may hold, and the slots.
func withProvisioners(p *pool.Pool) (*pool.Pool, *provisioning) {
	if len(p.Provisioners) == 0 {
		return p, nil
	}
	all := *p
	all.Hosts = append([]pool.Host(nil), p.Hosts...)
	pr := &provisioning{slots: map[string]*provSlot{}}
	pr.ctx, pr.cancel = context.WithCancel(context.Background())
	for _, spec := range p.Provisioners {
		prov := pool.NewExecProvisioner(spec, os.Stderr)
		for n := 1; n <= spec.Max; n++ {
			h := spec.Template(n)
			all.Hosts = append(all.Hosts, h)
			pr.slots[h.Name] = &provSlot{name: h.Name, prov: prov, n: n}
		}
	}
	return &all, pr
}

// slot returns the provisioner slot called name, nil for a static host.
func (sp *staticPool) slot(name string) *provSlot {
	if sp.prov == nil {
		return nil
	}
	return sp.prov.slots[name]
}

// machineHost is how to reach the pool host called name: for a slot, its
// reserved machine.
func (sp *staticPool) machineHost(name string) (*pool.Host, error) {
	sl := sp.slot(name)
	if sl == nil {
		return sp.host(name), nil
	}
	sp.prov.mu.Lock()
	defer sp.prov.mu.Unlock()
	if sl.machine == nil {
		return nil, fmt.Errorf("no machine is reserved for %s", name)
	}
	h := sl.machine.Host
	return &h, nil
}

// provision makes sure every slot of a mapping this recipe leased holds a
// live machine: it takes an idle machine of the same provisioner from a
// slot no recipe leases, keeps one that still answers, and reserves the
// others, all in parallel. A dead machine is released and replaced.
func (sp *staticPool) provision(t *testing.T, m pool.Mapping) error {
	if sp.prov == nil {
		return nil
	}
	var need []*provSlot
	sp.mu.Lock()
	sp.prov.mu.Lock()
	for _, hm := range m.Hosts {
		sl := sp.slot(hm.Pool)
		if sl == nil {
			continue
		}
		sl.stopIdle()
		if sl.machine == nil {
			sp.adoptIdle(sl)
		}
		need = append(need, sl)
	}
	sp.prov.mu.Unlock()
	sp.mu.Unlock()

	errs := make([]error, len(need))
	var wg sync.WaitGroup
	for i, sl := range need {
		wg.Go(func() { errs[i] = sp.ready(t, sl) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// adoptIdle moves to sl the machine of another slot of its provisioner
// that no recipe leases, if there is one: every machine of a provisioner
// is alike. Called with sp.mu and sp.prov.mu held.
func (sp *staticPool) adoptIdle(sl *provSlot) {
	for _, o := range sp.prov.slots {
		if o == sl || o.prov != sl.prov || o.machine == nil || sp.leased[o.name] {
			continue
		}
		o.stopIdle()
		sl.machine, o.machine = o.machine, nil
		sp.forgetLocked(o.name)
		return
	}
}

// ready makes sure sl holds a live machine, reserving one if needed.
func (sp *staticPool) ready(t *testing.T, sl *provSlot) error {
	t.Helper()
	sp.prov.mu.Lock()
	m := sl.machine
	sp.prov.mu.Unlock()
	if m != nil {
		ctx, cancel := context.WithTimeout(sp.prov.ctx, aliveTimeout)
		err := sl.prov.Alive(ctx, m)
		cancel()
		if err == nil {
			return nil
		}
		t.Logf("lnsttest: machine %s of %s is dead (%v): releasing it and reserving another", m, sl.name, err)
		sp.dropMachine(sl, m)
	}
	var err error
	for attempt := 1; attempt <= provAttempts; attempt++ {
		if m, err = sp.reserve(sl); err == nil {
			t.Logf("lnsttest: %s is machine %s", sl.name, m)
			return nil
		}
		if sp.prov.ctx.Err() != nil {
			break
		}
		t.Logf("lnsttest: reservation %d of %d for %s failed: %v", attempt, provAttempts, sl.name, err)
	}
	return fmt.Errorf("pool host %s: %w", sl.name, err)
}

// reserve runs one reservation for sl and stores its machine.
func (sp *staticPool) reserve(sl *provSlot) (*pool.Machine, error) {
	pr := sp.prov
	pr.mu.Lock()
	if pr.closed {
		pr.mu.Unlock()
		return nil, errors.New("the run is ending: no more reservations")
	}
	pr.wg.Add(1)
	pr.mu.Unlock()
	defer pr.wg.Done()
	m, err := sl.prov.Reserve(pr.ctx, pool.Request{Host: sl.name})
	if err != nil {
		return nil, err
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.closed { // abort came while the machine was being handed over
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		return nil, errors.Join(errors.New("the run is ending"), sl.prov.Release(ctx, m))
	}
	sl.machine = m
	return m, nil
}

// dropMachine releases m, the machine of sl, and forgets its agent.
func (sp *staticPool) dropMachine(sl *provSlot, m *pool.Machine) error {
	sp.mu.Lock()
	sp.prov.mu.Lock()
	if sl.machine == m {
		sl.machine = nil
	}
	sp.forgetLocked(sl.name)
	if !sp.prov.closed { // after it, nothing is added to wg
		sp.prov.wg.Add(1) // the end of the run waits for this release
		defer sp.prov.wg.Done()
	}
	sp.prov.mu.Unlock()
	sp.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	return sl.prov.Release(ctx, m)
}

// deadHost is a provisioned machine found dead when a recipe ended.
type deadHost struct {
	why    string
	client pb.AgentClient // the recipe's connection to it, nil if none
}

// settle checks, when a recipe ends, the slots it leased, in parallel: a
// dead machine is released (the next recipe that leases the slot gets
// another), a live one waits idle for the next recipe. It returns what
// died.
func (sp *staticPool) settle(m pool.Mapping) []deadHost {
	if sp.prov == nil {
		return nil
	}
	var (
		mu   sync.Mutex
		dead []deadHost
		wg   sync.WaitGroup
	)
	for _, hm := range m.Hosts {
		sl := sp.slot(hm.Pool)
		if sl == nil {
			continue
		}
		sp.prov.mu.Lock()
		mach := sl.machine
		sp.prov.mu.Unlock()
		if mach == nil {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), aliveTimeout)
			err := sl.prov.Alive(ctx, mach)
			cancel()
			if err == nil {
				sp.idleAfter(sl, mach)
				return
			}
			sp.mu.Lock()
			d := deadHost{why: fmt.Sprintf("pool host %s (machine %s) died: %v", hm.Pool, mach, err), client: sp.clients[hm.Pool]}
			sp.mu.Unlock()
			if rerr := sp.dropMachine(sl, mach); rerr != nil {
				d.why += fmt.Sprintf("; releasing it failed: %v", rerr)
			} else {
				d.why += "; it was released"
			}
			mu.Lock()
			dead = append(dead, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(dead, func(i, j int) bool { return dead[i].why < dead[j].why })
	return dead
}

// idleAfter releases sl's machine once no recipe has leased the slot for
// the provisioner's idle time.
func (sp *staticPool) idleAfter(sl *provSlot, m *pool.Machine) {
	sp.prov.mu.Lock()
	defer sp.prov.mu.Unlock()
	sl.stopIdle()
	sl.idle = time.AfterFunc(sl.prov.Spec().Idle, func() {
		sp.mu.Lock()
		leased, c := sp.leased[sl.name], sp.clients[sl.name]
		sp.mu.Unlock()
		if leased {
			return
		}
		if c != nil {
			// The agent undoes what this run left there (a shipped test
			// binary) before the machine goes back.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.Release(ctx, &pb.HeartbeatRequest{Session: sp.session})
			cancel()
		}
		sp.mu.Lock()
		leased = sp.leased[sl.name]
		sp.prov.mu.Lock()
		mine := sl.machine == m && !leased && !sp.prov.closed
		if mine {
			sl.machine, sl.idle = nil, nil
			sp.forgetLocked(sl.name)
			sp.prov.wg.Add(1)
		}
		sp.prov.mu.Unlock()
		sp.mu.Unlock()
		if !mine {
			return
		}
		defer sp.prov.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		if err := sl.prov.Release(ctx, m); err != nil {
			fmt.Fprintf(os.Stderr, "lnsttest: release idle machine %s: %v\n", m, err)
		}
	})
}

// cancelReservations ends provisioning: pending reservations are
// cancelled, each releasing what it had reserved, and no new one starts.
// Safe to call more than once.
func (sp *staticPool) cancelReservations() {
	pr := sp.prov
	if pr == nil {
		return
	}
	pr.mu.Lock()
	pr.closed = true
	pr.mu.Unlock()
	pr.cancel()
	pr.wg.Wait()
}

// releaseMachines releases every machine held, in parallel, after
// cancelReservations.
func (sp *staticPool) releaseMachines() error {
	pr := sp.prov
	if pr == nil {
		return nil
	}
	pr.mu.Lock()
	var held []*provSlot
	for _, sl := range pr.slots {
		sl.stopIdle()
		if sl.machine != nil {
			held = append(held, sl)
		}
	}
	pr.mu.Unlock()
	errs := make([]error, len(held))
	var wg sync.WaitGroup
	for i, sl := range held {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
			defer cancel()
			pr.mu.Lock()
			m := sl.machine
			sl.machine = nil
			pr.mu.Unlock()
			if m != nil {
				errs[i] = sl.prov.Release(ctx, m)
			}
		})
	}
	wg.Wait()
	pr.wg.Wait() // releases of idle and dead machines under way
	return errors.Join(errs...)
}

// allMatches is pool.AllMatches for ForEachMatch, with every provisioner's
// machines counted once: they are alike, so a mapping that differs from
// another only in which slots of a provisioner it takes is the same match.
// The mapper sees at most as many slots of a provisioner as reqs has
// hosts.
func (sp *staticPool) allMatches(reqs []pool.HostReq) ([]pool.Mapping, error) {
	if sp.prov == nil {
		return pool.AllMatches(sp.p, reqs, 0)
	}
	few := *sp.p
	few.Hosts = nil
	for _, h := range sp.p.Hosts {
		if sl := sp.slot(h.Name); sl != nil && sl.n > len(reqs) {
			continue
		}
		few.Hosts = append(few.Hosts, h)
	}
	all, err := pool.AllMatches(&few, reqs, 0)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []pool.Mapping
	for _, m := range all {
		key := pool.Mapping{Hosts: map[string]pool.HostMatch{}}
		for req, hm := range m.Hosts {
			if sl := sp.slot(hm.Pool); sl != nil {
				hm.Pool = sl.prov.Name() + "#"
			}
			key.Hosts[req] = hm
		}
		if k := fmt.Sprint(key.Hosts); !seen[k] {
			seen[k] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// forget drops the test binary shipped through c from those removed at
// the end: its machine was released.
func (sb *shippedBinaries) forget(c pb.AgentClient) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	delete(sb.hosts, c)
}
