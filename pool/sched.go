package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"
)

// HostProvisioner is a Provisioner of named hosts (StaticProvisioner, the
// pool file's): the mapper sees its Hosts, and Reserve takes the host
// Request.Host names at once, or fails with an error wrapping ErrBusy
// while another process holds it. A Scheduler reserves the host for each
// lease and releases it with the lease.
type HostProvisioner interface {
	Provisioner
	// Hosts are the hosts it leases.
	Hosts() []Host
}

// SlotProvisioner is a Provisioner of alike machines (ExecProvisioner):
// the mapper sees Max slots, pool hosts named SlotName(Name(), n) and
// described by Template(n). A Scheduler reserves a machine for a slot
// when a lease first needs one (Provision), keeps it while it is alive,
// and releases it once no lease used it for Idle.
type SlotProvisioner interface {
	Provisioner
	// Template is the pool host of the n-th machine, from 1.
	Template(n int) Host
	// Idle is how long a machine no lease uses is kept.
	Idle() time.Duration
}

// Provisioners are the provisioners of a pool file: a StaticProvisioner of
// its hosts and an ExecProvisioner per ExecSpec (a LibvirtProvisioner
// per libvirt one), whose commands' stderr
// goes to log (nil: into errors only).
func Provisioners(p *Pool, log io.Writer) []Provisioner {
	out := []Provisioner{&StaticProvisioner{Pool: p}}
	for _, spec := range p.Provisioners {
		if spec.Libvirt != nil {
			out = append(out, NewLibvirtProvisioner(spec, log))
			continue
		}
		out = append(out, NewExecProvisioner(spec, log))
	}
	return out
}

// Claims takes, beside a HostProvisioner's reservation, a claim on each
// host a Scheduler leases: lnsttest's is the agent's own lease, which
// keeps other controllers off the machine. A Scheduler calls its methods
// with its lock held: they may call only its Host, IsSlot and
// MachineHost.
type Claims interface {
	// Claim claims a host of a HostProvisioner as it is leased; a no-op
	// if it is claimed already. An error wrapping ErrBusy says another
	// holds it: the lease waits, and shows the error as why.
	Claim(host string) error
	// Unclaim gives a host's claim back; a no-op if it holds none. It is
	// called once no lease used a host for SchedulerOptions.ClaimIdle,
	// and before a slot's idle machine is released.
	Unclaim(host string)
	// Forget drops what reaches a slot's machine: the machine was
	// released, or it moved to another slot.
	Forget(host string)
}

// SchedulerOptions tune a Scheduler; the zero value is the defaults.
type SchedulerOptions struct {
	// Expect maps a lease's name to how long it held its hosts in an
	// earlier run, for the order of dispatch among leases of one width; a
	// lease it does not name is expected to hold its hosts for the mean
	// of those it names.
	Expect map[string]time.Duration
	// Starve is how long a lease overtaken by a later one waits before
	// the hosts it needs are kept for it (0: a minute): until then
	// narrower leases may take them. Leases that ask together (within
	// leaseGather of each other, as t.Parallel recipes do) do not
	// overtake one another: the order of dispatch is their plan, however
	// long it makes the last of them wait.
	Starve time.Duration
	// Claims claims the leased hosts beside their reservation; nil: no
	// claims.
	Claims Claims
	// ClaimIdle is how long a claim is kept after the last lease of its
	// host ended (0: two seconds): the next lease here takes the host
	// without claiming it again, while others wait at most this long.
	ClaimIdle time.Duration
	// Log receives what happens to provisioned machines outside a lease
	// (an idle machine's release that failed); nil: discarded.
	Log io.Writer
}

// Scheduler leases hosts of provisioners to the leases that ask (recipes),
// one lease at a time per host. Waiting leases queue, and whenever hosts
// free up they are offered them in turn: one starving (overtaken by a
// later lease, and waiting for longer than SchedulerOptions.Starve)
// first, then the widest, then the longest expected from
// SchedulerOptions.Expect, then first come. A lease takes hosts as soon
// as it fits. The hosts are those of its HostProvisioners
// and a slot per machine of its SlotProvisioners.
type Scheduler struct {
	p     *Pool                  // every host, slots included, for the mapper
	owner map[string]Provisioner // the HostProvisioner of each host that is no slot
	opts  SchedulerOptions

	mu        sync.Mutex
	waiters   []*waiter       // leases waiting, in the order of dispatch
	seq       uint64          // waiters so far
	busy      map[string]bool // hosts another process held, as last seen
	heldBy    map[string]error
	retry     *time.Timer // dispatches again once busy hosts may be free
	gather    *time.Timer // dispatches to the waiters that came together
	batch     uint64      // gatherings so far: the waiters of one came together
	meanExp   time.Duration
	leased    map[string]bool
	locks     map[string]*Machine // reservations of hosts of HostProvisioners
	claimIdle map[string]*time.Timer
	stopped   bool // Stop was called: claims are no longer given back one by one

	slots *slots // nil without SlotProvisioners (sched_slots.go)
}

// NewScheduler makes the scheduler of provs, every one a HostProvisioner
// or a SlotProvisioner; path names the pool in messages.
func NewScheduler(path string, provs []Provisioner, opts SchedulerOptions) (*Scheduler, error) {
	if opts.Starve <= 0 {
		opts.Starve = leaseStarve
	}
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = claimIdle
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	s := &Scheduler{
		p: &Pool{Path: path}, owner: map[string]Provisioner{}, opts: opts,
		busy: map[string]bool{}, heldBy: map[string]error{}, leased: map[string]bool{}, locks: map[string]*Machine{}, claimIdle: map[string]*time.Timer{},
	}
	var slotProvs []SlotProvisioner
	for _, prov := range provs {
		switch pv := prov.(type) {
		case SlotProvisioner:
			slotProvs = append(slotProvs, pv)
		case HostProvisioner:
			for _, h := range pv.Hosts() {
				if _, dup := s.owner[h.Name]; dup {
					return nil, fmt.Errorf("pool %s: host %s comes from two provisioners", path, h.Name)
				}
				s.owner[h.Name] = pv
				s.p.Hosts = append(s.p.Hosts, h)
			}
		default:
			return nil, fmt.Errorf("pool %s: provisioner %s (%T) serves neither named hosts nor slots", path, prov.Name(), prov)
		}
	}
	s.slots = newSlots(s, slotProvs)
	s.meanExp = meanExpect(opts.Expect)
	return s, nil
}

// Pool is the scheduler's hosts as a pool, slots included, as the mapper
// sees them.
func (s *Scheduler) Pool() *Pool { return s.p }

// Host returns the pool host called name (a slot's template), nil if
// there is none.
func (s *Scheduler) Host(name string) *Host {
	for i := range s.p.Hosts {
		if s.p.Hosts[i].Name == name {
			return &s.p.Hosts[i]
		}
	}
	return nil
}

// Leased reports whether a lease holds the host called name.
func (s *Scheduler) Leased(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leased[name]
}

// claimIdle is SchedulerOptions.ClaimIdle's default.
const claimIdle = 2 * time.Second

// leaseRetry is how often a lease waiting for busy hosts looks again
// (hosts leased by other processes free up without telling us).
const leaseRetry = 200 * time.Millisecond

// leaseGather is how long a lease waits for the leases that ask with it
// (t.Parallel recipes start together), so that hosts go to the widest of
// them first, not to whichever asked first.
const leaseGather = 2 * time.Millisecond

// WaitReport is how often a waiting lease's LeaseRequest.Waiting is called.
const WaitReport = 10 * time.Second

// leaseStarve is SchedulerOptions.Starve's default.
const leaseStarve = time.Minute

// LeaseRequest is what Lease asks for.
type LeaseRequest struct {
	// Name names who asks (a recipe): SchedulerOptions.Expect's key.
	Name string
	// Hosts are the requirements to map onto free hosts.
	Hosts []HostReq
	// Want, when given, is exactly the mapping to lease (Hosts is then
	// not mapped).
	Want *Mapping
	// Waiting, if set, is called every WaitReport while the lease waits.
	Waiting func(WaitStatus)
}

// WaitStatus is a lease that waits.
type WaitStatus struct {
	Name   string
	Waited time.Duration
	// Ahead is how many waiting leases go first.
	Ahead int
	// Why it waits, as last seen: nil before the first dispatch.
	Why error
}

// WaitError is a lease whose context ended while it waited.
type WaitError struct {
	Waited time.Duration
	Why    error // why it waited, as last seen
	Err    error // the context's
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("no pool hosts after waiting %v (%v): %v", e.Waited.Round(time.Second), e.Err, e.Why)
}

func (e *WaitError) Unwrap() error { return e.Err }

// waiter is a lease waiting; its result is set and done closed once it
// has its hosts, or an error.
type waiter struct {
	name string
	// expect is how long the lease held its hosts last time, or the
	// mean of Expect if it is not there (0: no history at all).
	expect time.Duration
	reqs   []HostReq
	want   *Mapping
	width  int    // hosts it needs
	seq    uint64 // order of arrival
	batch  uint64 // the gathering it came in
	since  time.Time
	// overtaken is set once a lease of a later gathering took hosts
	// while this one waited: only then can it starve.
	overtaken bool
	why       error // why it waits, as last seen
	done      chan struct{}
	m         Mapping
	err       error
}

// Lease waits until a mapping of req is on free hosts and leases them,
// until Release. It returns an *UnsatError at once if no mapping exists
// even on an idle pool, and a *WaitError if ctx ends while it waits.
func (s *Scheduler) Lease(ctx context.Context, req LeaseRequest) (Mapping, error) {
	if req.Want == nil {
		if _, err := Map(s.p, req.Hosts, nil); err != nil {
			return Mapping{}, err
		}
	}
	w := &waiter{name: req.Name, reqs: req.Hosts, want: req.Want, width: len(req.Hosts), since: time.Now(), done: make(chan struct{}), expect: s.expect(req.Name)}
	if req.Want != nil {
		w.width = len(req.Want.Hosts)
	}
	s.mu.Lock()
	s.seq++
	w.seq = s.seq
	s.waiters = append(s.waiters, w)
	if s.gather == nil {
		s.batch++
		s.gather = time.AfterFunc(leaseGather, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.gather = nil
			s.dispatch()
		})
	}
	w.batch = s.batch // the gathering it started or joined
	s.mu.Unlock()
	tick := time.NewTicker(WaitReport)
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return w.m, w.err
		case <-ctx.Done():
			s.mu.Lock()
			select {
			case <-w.done:
				s.mu.Unlock()
				return w.m, w.err
			default:
			}
			s.waiters = slices.DeleteFunc(s.waiters, func(o *waiter) bool { return o == w })
			why := w.why
			s.mu.Unlock()
			return Mapping{}, &WaitError{Waited: time.Since(w.since), Why: why, Err: ctx.Err()}
		case <-tick.C:
			if req.Waiting != nil {
				s.mu.Lock()
				st := WaitStatus{Name: w.name, Waited: time.Since(w.since), Ahead: s.ahead(w), Why: w.why}
				s.mu.Unlock()
				req.Waiting(st)
			}
		}
	}
}

// Waiting is the leases that wait, in the order of the last dispatch.
func (s *Scheduler) Waiting() []WaitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []WaitStatus
	for _, w := range s.waiters {
		out = append(out, WaitStatus{Name: w.name, Waited: time.Since(w.since), Ahead: s.ahead(w), Why: w.why})
	}
	return out
}

// before orders waiters: one starving first (see starving); then the
// widest (a narrow lease fits in what is left beside a wide one, not the
// reverse, so wide leases started first pack the pool best); among those
// of one width, the longest expected (the long ones started first leave
// the short ones to fill the gaps at the end); then first come.
//
// Widest first, then longest, packs better than most host-time first
// (hosts x duration) with durations known to +-50%: 1.022 against 1.037
// of the lower bound, mean of 200 simulated workloads of
// BenchmarkSchedule40On8's kind; 1.053 without durations.
func (w *waiter) before(o *waiter, now time.Time, starve time.Duration) bool {
	wstarve, ostarve := w.starving(now, starve), o.starving(now, starve)
	switch {
	case wstarve != ostarve:
		return wstarve
	case wstarve:
		return w.seq < o.seq
	case w.width != o.width:
		return w.width > o.width
	case w.expect != o.expect:
		return w.expect > o.expect
	}
	return w.seq < o.seq
}

// starving reports whether w, overtaken by a later lease, has waited
// for starve: the hosts it needs are then kept for it.
func (w *waiter) starving(now time.Time, starve time.Duration) bool {
	return w.overtaken && now.Sub(w.since) >= starve
}

// expect is how long the lease called name is expected to hold its
// hosts: as SchedulerOptions.Expect says, else the mean of what it says
// (0 without history).
func (s *Scheduler) expect(name string) time.Duration {
	if d, ok := s.opts.Expect[name]; ok {
		return d
	}
	return s.meanExp
}

// meanExpect is the mean of the durations of expect, 0 if it is empty.
func meanExpect(expect map[string]time.Duration) time.Duration {
	if len(expect) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range expect {
		sum += d
	}
	return sum / time.Duration(len(expect))
}

// ahead counts the waiters w would let go first. Called with s.mu held.
func (s *Scheduler) ahead(w *waiter) int {
	n, now := 0, time.Now()
	for _, o := range s.waiters {
		if o != w && o.before(w, now, s.opts.Starve) {
			n++
		}
	}
	return n
}

var errBusy = errors.New("the hosts are busy")

// dispatch offers the free hosts to the waiting leases, in the order of
// before, and leases them to every one that fits. A lease waiting longer
// than Starve keeps the hosts it waits for from those after it. Hosts
// held by other processes free up without telling us: while a lease
// waits and some are, dispatch runs again every leaseRetry. Called with
// s.mu held.
func (s *Scheduler) dispatch() {
	now := time.Now()
	sort.SliceStable(s.waiters, func(i, j int) bool { return s.waiters[i].before(s.waiters[j], now, s.opts.Starve) })
	kept := map[string]bool{} // for a starving waiter
	free := s.freeHosts(kept)
	waiting := s.waiters[:0]
	var latest uint64 // the latest gathering a lease of took hosts
	for _, w := range s.waiters {
		m, err := Mapping{}, error(errBusy)
		tried := w.width <= free // a mapping takes distinct hosts
		if tried {
			m, err = s.tryLease(w, kept)
		}
		if err == nil {
			free -= len(m.Hosts)
			w.m = m
			close(w.done)
			latest = max(latest, w.batch)
			continue
		}
		var unsat *UnsatError
		if !errors.As(err, &unsat) && !errors.Is(err, errBusy) {
			w.err = err
			close(w.done)
			continue
		}
		w.why = s.withHolders(err)
		waiting = append(waiting, w)
		starving := w.starving(now, s.opts.Starve)
		if starving {
			s.keep(w, kept)
		}
		if tried || starving { // hosts may have turned busy or kept
			free = s.freeHosts(kept)
		}
	}
	clear(s.waiters[len(waiting):])
	s.waiters = waiting
	for _, w := range s.waiters {
		if w.batch < latest {
			w.overtaken = true
		}
	}
	if len(s.waiters) == 0 {
		clear(s.busy) // the next lease to come looks afresh
		clear(s.heldBy)
	}
	if len(s.waiters) > 0 && len(s.busy) > 0 && s.retry == nil {
		s.retry = time.AfterFunc(leaseRetry, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.retry = nil
			clear(s.busy)
			clear(s.heldBy)
			s.dispatch()
		})
	}
}

// withHolders adds to why a lease waits who holds hosts, as their claims
// said. Called with s.mu held.
func (s *Scheduler) withHolders(err error) error {
	if len(s.heldBy) == 0 {
		return err
	}
	var hosts []string
	for h := range s.heldBy {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	errs := []error{err}
	for _, h := range hosts {
		errs = append(errs, s.heldBy[h])
	}
	return errors.Join(errs...)
}

// freeHosts counts the hosts neither leased, nor busy, nor kept.
func (s *Scheduler) freeHosts(kept map[string]bool) int {
	n := 0
	for i := range s.p.Hosts {
		if h := s.p.Hosts[i].Name; !s.leased[h] && !s.busy[h] && !kept[h] {
			n++
		}
	}
	return n
}

// keep adds to kept the hosts a starving waiter waits for: those of the
// mapping it would have if this scheduler released every host.
func (s *Scheduler) keep(w *waiter, kept map[string]bool) {
	m := w.want
	if m == nil {
		mm, err := Map(s.p, w.reqs, func(h string) bool { return !s.busy[h] && !kept[h] })
		if err != nil {
			return
		}
		m = &mm
	}
	for _, hm := range m.Hosts {
		kept[hm.Pool] = true
	}
}

// tryLease maps a waiter's requirements onto hosts free here and not
// kept, then reserves and claims them; a host another process holds is
// marked busy and the mapping tried again.
func (s *Scheduler) tryLease(w *waiter, kept map[string]bool) (Mapping, error) {
	free := func(h string) bool { return !s.leased[h] && !s.busy[h] && !kept[h] }
	for {
		var m Mapping
		if w.want != nil {
			m = *w.want
			for _, hm := range m.Hosts {
				if !free(hm.Pool) {
					return m, errBusy
				}
			}
		} else {
			var err error
			m, err = Map(s.p, w.reqs, free)
			if err != nil {
				return m, err
			}
		}
		var got []string
		ok := true
		for _, hm := range m.Hosts {
			locked, err := s.reserveHost(hm.Pool)
			if err == nil && locked {
				err = s.claim(hm.Pool)
				if errors.Is(err, ErrBusy) {
					s.heldBy[hm.Pool], locked, err = err, false, nil
				}
				if !locked || err != nil {
					s.unreserve([]string{hm.Pool})
				}
			}
			if err != nil {
				s.unreserve(got)
				return m, err // it names the host
			}
			if !locked {
				s.busy[hm.Pool] = true
				ok = false
				break
			}
			got = append(got, hm.Pool)
		}
		if ok {
			for _, h := range got {
				s.leased[h] = true
			}
			return m, nil
		}
		s.unreserve(got)
	}
}

// reserveHost reserves a host of a HostProvisioner for a lease; false if
// another process holds it. A slot is this scheduler's alone. Called with
// s.mu held.
func (s *Scheduler) reserveHost(name string) (bool, error) {
	prov := s.owner[name]
	if prov == nil {
		return true, nil // a slot
	}
	m, err := prov.Reserve(context.Background(), Request{Host: name})
	if errors.Is(err, ErrBusy) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.locks[name] = m
	return true, nil
}

// claim claims a leased host of a HostProvisioner (a slot's machine is
// this scheduler's alone, and claimed by whoever reaches it). Called with
// s.mu held.
func (s *Scheduler) claim(name string) error {
	if s.opts.Claims == nil || s.owner[name] == nil {
		return nil
	}
	return s.opts.Claims.Claim(name)
}

// unreserve releases the reservations of hosts. Called with s.mu held.
func (s *Scheduler) unreserve(hosts []string) {
	for _, h := range hosts {
		if m := s.locks[h]; m != nil {
			s.owner[h].Release(context.Background(), m) // a lease file: never fails
			delete(s.locks, h)
		}
	}
}

// Release returns a mapping's hosts and offers them to the waiting
// leases; the claim of a host no lease takes is given back after
// ClaimIdle.
func (s *Scheduler) Release(m Mapping) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hosts []string
	for _, hm := range m.Hosts {
		delete(s.leased, hm.Pool)
		hosts = append(hosts, hm.Pool)
	}
	s.unreserve(hosts)
	s.dispatch()
	for _, h := range hosts {
		if !s.leased[h] {
			s.idleClaim(h)
		}
	}
}

// idleClaim gives back the claim of a host of a HostProvisioner once no
// lease used it for ClaimIdle. Called with s.mu held.
func (s *Scheduler) idleClaim(name string) {
	if s.opts.Claims == nil || s.owner[name] == nil {
		return // a slot's machine has its own idle time
	}
	if t := s.claimIdle[name]; t != nil {
		t.Stop()
	}
	s.claimIdle[name] = time.AfterFunc(s.opts.ClaimIdle, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.stopped && !s.leased[name] {
			s.opts.Claims.Unclaim(name)
		}
	})
}

// Stop ends the scheduling: pending reservations of slots are cancelled,
// each releasing what it had reserved, no new one starts, and claims are
// no longer given back one by one (their holder gives them all back).
// Close releases what is still held. Safe to call more than once.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	s.stopped = true
	for _, t := range s.claimIdle {
		t.Stop()
	}
	s.mu.Unlock()
	s.slots.cancelAll()
}

// Close stops the scheduler and releases every reservation: the hosts
// leased and the slots' machines.
func (s *Scheduler) Close() error {
	s.Stop()
	s.mu.Lock()
	var all []string
	for h := range s.locks {
		all = append(all, h)
	}
	s.unreserve(all)
	s.mu.Unlock()
	return s.slots.releaseAll()
}
