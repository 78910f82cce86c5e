package pool

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Machines of SlotProvisioners join a Scheduler's pool as slots: hosts
// named "<provisioner>#<n>" (SlotName), one per machine the provisioner
// may hold, described by its Template for the mapper. A slot is leased
// like a named host; the first lease of it reserves a machine for it
// (Provision), later leases reuse that machine while it is alive, and a
// machine no lease uses for the provisioner's Idle time is released
// (early release: nobody says which leases are still to come).

// provAttempts is how many times a failed reservation is tried.
const provAttempts = 3

// aliveTimeout bounds the check of whether a provisioned machine lives.
const aliveTimeout = 10 * time.Second

// releaseTimeout bounds the release of a provisioned machine.
const releaseTimeout = 2 * time.Minute

// slot is one machine place of a SlotProvisioner.
type slot struct {
	name string
	prov SlotProvisioner
	// n is the slot's place among its provisioner's, from 1: name is
	// "<provisioner>#<n>".
	n int
	// machine is the reservation the slot holds, nil if none.
	machine *Machine
	idle    *time.Timer
}

// stopIdle stops the slot's idle release, if one is pending. Called with
// slots.mu held.
func (sl *slot) stopIdle() {
	if sl.idle != nil {
		sl.idle.Stop()
		sl.idle = nil
	}
}

// slots are the slots of a Scheduler.
type slots struct {
	s      *Scheduler
	ctx    context.Context // cancelled by cancel: pending reservations end
	cancel context.CancelFunc
	wg     sync.WaitGroup // reservations and releases in flight

	mu     sync.Mutex // guards slots' machines and closed; taken after Scheduler.mu
	byName map[string]*slot
	closed bool
}

// newSlots adds to s's pool a slot host for every machine provs may hold;
// nil without provs.
func newSlots(s *Scheduler, provs []SlotProvisioner) *slots {
	if len(provs) == 0 {
		return nil
	}
	ss := &slots{s: s, byName: map[string]*slot{}}
	ss.ctx, ss.cancel = context.WithCancel(context.Background())
	for _, prov := range provs {
		for n := 1; n <= prov.Max(); n++ {
			h := prov.Template(n)
			s.p.Hosts = append(s.p.Hosts, h)
			ss.byName[h.Name] = &slot{name: h.Name, prov: prov, n: n}
		}
	}
	return ss
}

// slot returns the slot called name, nil for a named host.
func (s *Scheduler) slot(name string) *slot {
	if s.slots == nil {
		return nil
	}
	return s.slots.byName[name]
}

// HasSlots reports whether the scheduler has SlotProvisioners.
func (s *Scheduler) HasSlots() bool { return s.slots != nil }

// IsSlot reports whether the host called name is a slot.
func (s *Scheduler) IsSlot(name string) bool { return s.slot(name) != nil }

// MachineHost is how to reach the host called name: for a slot, its
// reserved machine.
func (s *Scheduler) MachineHost(name string) (*Host, error) {
	sl := s.slot(name)
	if sl == nil {
		if h := s.Host(name); h != nil {
			return h, nil
		}
		return nil, fmt.Errorf("pool %s has no host %q", s.p.Path, name)
	}
	s.slots.mu.Lock()
	defer s.slots.mu.Unlock()
	if sl.machine == nil {
		return nil, fmt.Errorf("no machine is reserved for %s", name)
	}
	h := sl.machine.Host
	return &h, nil
}

// Provision makes sure every slot of a leased mapping holds a live
// machine: it takes an idle machine of the same provisioner from a slot
// no lease holds, keeps one that still answers, and reserves the others,
// all in parallel, trying a failed reservation provAttempts times. A dead
// machine is released and replaced. logf, if set, is told what happens.
// The reservations end when ctx does or the scheduler stops.
func (s *Scheduler) Provision(ctx context.Context, m Mapping, logf func(format string, args ...any)) error {
	if s.slots == nil {
		return nil
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.slots.ctx, cancel)()
	var need []*slot
	var moved []string // slots whose machine another took
	s.mu.Lock()
	s.slots.mu.Lock()
	for _, hm := range m.Hosts {
		sl := s.slot(hm.Pool)
		if sl == nil {
			continue
		}
		sl.stopIdle()
		if sl.machine == nil {
			if from := s.adoptIdle(sl); from != "" {
				moved = append(moved, from)
			}
		}
		need = append(need, sl)
	}
	s.slots.mu.Unlock()
	for _, name := range moved {
		s.forget(name)
	}
	s.mu.Unlock()

	errs := make([]error, len(need))
	var wg sync.WaitGroup
	for i, sl := range need {
		wg.Go(func() { errs[i] = s.ready(ctx, sl, logf) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// adoptIdle moves to sl the machine of another slot of its provisioner
// that no lease holds, if there is one (every machine of a provisioner
// is alike), and returns that slot's name. Called with s.mu and
// s.slots.mu held.
func (s *Scheduler) adoptIdle(sl *slot) string {
	for _, o := range s.slots.byName {
		if o == sl || o.prov != sl.prov || o.machine == nil || s.leased[o.name] {
			continue
		}
		o.stopIdle()
		sl.machine, o.machine = o.machine, nil
		return o.name
	}
	return ""
}

// forget tells the claims that a slot's machine is gone from it. Called
// with s.mu held, not s.slots.mu: Claims may ask for MachineHost.
func (s *Scheduler) forget(name string) {
	if s.opts.Claims != nil {
		s.opts.Claims.Forget(name)
	}
}

// ready makes sure sl holds a live machine, reserving one if needed.
func (s *Scheduler) ready(ctx context.Context, sl *slot, logf func(string, ...any)) error {
	s.slots.mu.Lock()
	m := sl.machine
	s.slots.mu.Unlock()
	if m != nil {
		actx, cancel := context.WithTimeout(ctx, aliveTimeout)
		err := sl.prov.Alive(actx, m)
		cancel()
		if err == nil {
			return nil
		}
		logf("machine %s of %s is dead (%v): releasing it and reserving another", m, sl.name, err)
		s.dropMachine(sl, m)
	}
	var err error
	for attempt := 1; attempt <= provAttempts; attempt++ {
		if m, err = s.reserveSlot(ctx, sl); err == nil {
			logf("%s is machine %s", sl.name, m)
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		logf("reservation %d of %d for %s failed: %v", attempt, provAttempts, sl.name, err)
	}
	return fmt.Errorf("pool host %s: %w", sl.name, err)
}

// reserveSlot runs one reservation for sl and stores its machine.
func (s *Scheduler) reserveSlot(ctx context.Context, sl *slot) (*Machine, error) {
	ss := s.slots
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return nil, errors.New("the run is ending: no more reservations")
	}
	ss.wg.Add(1)
	ss.mu.Unlock()
	defer ss.wg.Done()
	m, err := sl.prov.Reserve(ctx, Request{Host: sl.name})
	if err != nil {
		return nil, err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed { // the end came while the machine was being handed over
		rctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		return nil, errors.Join(errors.New("the run is ending"), sl.prov.Release(rctx, m))
	}
	sl.machine = m
	return m, nil
}

// dropMachine releases m, the machine of sl, and forgets it.
func (s *Scheduler) dropMachine(sl *slot, m *Machine) error {
	s.mu.Lock()
	s.slots.mu.Lock()
	if sl.machine == m {
		sl.machine = nil
	}
	if !s.slots.closed { // after it, nothing is added to wg
		s.slots.wg.Add(1) // releaseAll waits for this release
		defer s.slots.wg.Done()
	}
	s.slots.mu.Unlock()
	s.forget(sl.name)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	return sl.prov.Release(ctx, m)
}

// DeadHost is a provisioned machine found dead when a lease ended.
type DeadHost struct {
	Host string // the slot
	Why  string
}

// Settle checks, when a lease ends, the slots of its mapping, in
// parallel: a dead machine is released (the next lease of the slot gets
// another), a live one waits idle for the next lease. It returns what
// died, sorted by Why. Call it before Release.
func (s *Scheduler) Settle(m Mapping) []DeadHost {
	if s.slots == nil {
		return nil
	}
	var (
		mu   sync.Mutex
		dead []DeadHost
		wg   sync.WaitGroup
	)
	for _, hm := range m.Hosts {
		sl := s.slot(hm.Pool)
		if sl == nil {
			continue
		}
		s.slots.mu.Lock()
		mach := sl.machine
		s.slots.mu.Unlock()
		if mach == nil {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), aliveTimeout)
			err := sl.prov.Alive(ctx, mach)
			cancel()
			if err == nil {
				s.idleAfter(sl, mach)
				return
			}
			d := DeadHost{Host: hm.Pool, Why: fmt.Sprintf("pool host %s (machine %s) died: %v", hm.Pool, mach, err)}
			if rerr := s.dropMachine(sl, mach); rerr != nil {
				d.Why += fmt.Sprintf("; releasing it failed: %v", rerr)
			} else {
				d.Why += "; it was released"
			}
			mu.Lock()
			dead = append(dead, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(dead, func(i, j int) bool { return dead[i].Why < dead[j].Why })
	return dead
}

// idleAfter releases sl's machine once no lease has held the slot for
// the provisioner's idle time: its claim is given back first (the agent
// undoes what was left there), then the machine.
func (s *Scheduler) idleAfter(sl *slot, m *Machine) {
	s.slots.mu.Lock()
	defer s.slots.mu.Unlock()
	sl.stopIdle()
	sl.idle = time.AfterFunc(sl.prov.Idle(), func() {
		s.mu.Lock()
		s.slots.mu.Lock()
		mine := sl.machine == m && !s.leased[sl.name] && !s.slots.closed
		if mine {
			sl.machine, sl.idle = nil, nil
			s.slots.wg.Add(1)
		}
		s.slots.mu.Unlock()
		if mine && s.opts.Claims != nil {
			s.opts.Claims.Unclaim(sl.name)
			s.opts.Claims.Forget(sl.name)
		}
		s.mu.Unlock()
		if !mine {
			return
		}
		defer s.slots.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		if err := sl.prov.Release(ctx, m); err != nil {
			fmt.Fprintf(s.opts.Log, "release idle machine %s: %v\n", m, err)
		}
	})
}

// cancelAll ends provisioning: pending reservations are cancelled, each
// releasing what it had reserved, and no new one starts. Safe to call
// more than once, and on nil.
func (ss *slots) cancelAll() {
	if ss == nil {
		return
	}
	ss.mu.Lock()
	ss.closed = true
	ss.mu.Unlock()
	ss.cancel()
	ss.wg.Wait()
}

// releaseAll releases every machine held, in parallel, after cancelAll.
func (ss *slots) releaseAll() error {
	if ss == nil {
		return nil
	}
	ss.mu.Lock()
	var held []*slot
	for _, sl := range ss.byName {
		sl.stopIdle()
		if sl.machine != nil {
			held = append(held, sl)
		}
	}
	ss.mu.Unlock()
	errs := make([]error, len(held))
	var wg sync.WaitGroup
	for i, sl := range held {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
			defer cancel()
			ss.mu.Lock()
			m := sl.machine
			sl.machine = nil
			ss.mu.Unlock()
			if m != nil {
				errs[i] = sl.prov.Release(ctx, m)
			}
		})
	}
	wg.Wait()
	ss.wg.Wait() // releases of idle and dead machines under way
	return errors.Join(errs...)
}

// AllMatches is AllMatches of the scheduler's pool, with every
// provisioner's machines counted once: they are alike, so a mapping that
// differs from another only in which slots of a provisioner it takes is
// the same match. The mapper sees at most as many slots of a provisioner
// as reqs has hosts.
func (s *Scheduler) AllMatches(reqs []HostReq) ([]Mapping, error) {
	if s.slots == nil {
		return AllMatches(s.p, reqs, 0)
	}
	few := *s.p
	few.Hosts = nil
	for _, h := range s.p.Hosts {
		if sl := s.slot(h.Name); sl != nil && sl.n > len(reqs) {
			continue
		}
		few.Hosts = append(few.Hosts, h)
	}
	all, err := AllMatches(&few, reqs, 0)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Mapping
	for _, m := range all {
		key := Mapping{Hosts: map[string]HostMatch{}}
		for req, hm := range m.Hosts {
			if sl := s.slot(hm.Pool); sl != nil {
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
