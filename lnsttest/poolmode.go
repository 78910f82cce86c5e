package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// leaseRetry is how often a recipe waiting for busy pool hosts looks again
// (hosts leased by other test processes free up without telling us).
const leaseRetry = 200 * time.Millisecond

// staticPool is a pool of machines from a pool file: their agents, and
// which hosts are leased. Hosts are leased to one recipe at a time, in
// this process (leased) and across controllers by the agent's own lease,
// which one session at a time holds; an flock per host is a shortcut
// between the test processes of this machine.
type staticPool struct {
	p *pool.Pool
	// expect maps a recipe's name to how long it ran in a previous run
	// (-lnst.history), for scheduling.
	expect  map[string]time.Duration
	session string
	stop    chan struct{} // closed by close: heartbeats end

	leaseMu   sync.Mutex // guards instances and lost
	instances map[pb.AgentClient]string
	lost      map[pb.AgentClient]lostLease
	beats     sync.WaitGroup

	mu      sync.Mutex
	waiters []*leaseWaiter  // recipes waiting in lease, in the order of dispatch
	seq     uint64          // waiters so far
	busy    map[string]bool // hosts another process held, as last seen
	retry   *time.Timer     // dispatches again once busy hosts may be free
	gather  *time.Timer     // dispatches to the waiters that came together
	starve  time.Duration   // leaseStarve
	leased  map[string]bool
	locks   map[string]*pool.Machine // hosts whose lease file this process holds
	static  *pool.StaticProvisioner
	conns   map[string]*grpc.ClientConn
	clients map[string]pb.AgentClient
	hellos  map[string]*pb.HelloReply
	stops   map[string]chan struct{} // closed to end a client's heartbeats
	// agentHeld are the hosts whose agent's lease this process holds, and
	// beatDone is closed when a host's heartbeats ended.
	agentHeld map[string]bool
	beatDone  map[string]chan struct{}
	// heldBy says, of the hosts another controller held when we asked
	// their agents, who holds them (refreshed with busy).
	heldBy map[string]error
	// idle releases the agent lease of a host no recipe of this process
	// used for agentIdle.
	idle map[string]*time.Timer
	// noAgentLease makes lease and release not talk to the agents (the
	// scheduling tests' pools have none).
	noAgentLease bool

	// prov holds the machines of the pool file's provisioners, nil
	// without provisioners (provision.go).
	prov *provisioning
	// shipped are the session's test binaries on pool hosts: a released
	// machine's is forgotten with it.
	shipped *shippedBinaries
}

func newStaticPool(p *pool.Pool, session string) *staticPool {
	all, prov := withProvisioners(p)
	return &staticPool{
		p: all, session: session, stop: make(chan struct{}), busy: map[string]bool{}, starve: leaseStarve, leased: map[string]bool{}, locks: map[string]*pool.Machine{},
		conns: map[string]*grpc.ClientConn{}, clients: map[string]pb.AgentClient{}, hellos: map[string]*pb.HelloReply{}, stops: map[string]chan struct{}{},
		agentHeld: map[string]bool{}, beatDone: map[string]chan struct{}{}, heldBy: map[string]error{}, idle: map[string]*time.Timer{},
		prov: prov, static: &pool.StaticProvisioner{Pool: p},
	}
}

func (sp *staticPool) host(name string) *pool.Host {
	for i := range sp.p.Hosts {
		if sp.p.Hosts[i].Name == name {
			return &sp.p.Hosts[i]
		}
	}
	return nil
}

// client returns the agent of a pool host, connecting on first use, with
// this process's lease on it.
func (sp *staticPool) client(name string) (pb.AgentClient, *pb.HelloReply, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	c, hello, err := sp.clientLocked(name)
	if err == nil && !sp.agentHeld[name] {
		err = sp.takeAgentLocked(name)
	}
	if err != nil {
		return nil, nil, err
	}
	return c, hello, nil
}

// clientLocked returns the agent of a pool host, connecting on first use.
// Called with sp.mu held.
func (sp *staticPool) clientLocked(name string) (pb.AgentClient, *pb.HelloReply, error) {
	if c, ok := sp.clients[name]; ok {
		return c, sp.hellos[name], nil
	}
	h, err := sp.machineHost(name)
	if err != nil {
		return nil, nil, fmt.Errorf("pool host %s: %w", name, err)
	}
	// A pool file's machine is up, or the recipe cannot run; a
	// provisioned one's agent may be starting.
	dial := h.Dial
	if sp.slot(name) != nil {
		dial = h.DialStarting
	}
	conn, err := dial(context.Background(), 0)
	if err != nil {
		return nil, nil, fmt.Errorf("pool host %s: %w", name, err)
	}
	c := pb.NewAgentClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), agentCallTimeout)
	hello, err := c.Hello(ctx, &pb.HelloRequest{})
	cancel()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("pool host %s: agent %s: %w", name, h.Agent, err)
	}
	sp.conns[name], sp.clients[name], sp.hellos[name] = conn, c, hello
	return c, hello, nil
}

// agentCallTimeout bounds the calls that take and give back an agent's
// lease, made while the pool's lock is held.
const agentCallTimeout = 10 * time.Second

// agentIdle is how long this process keeps the lease of an agent no
// recipe of it uses: the next recipe here takes the host without asking
// again (and finds the test binary shipped there), while other
// controllers wait at most this long beyond the recipe's end.
const agentIdle = 2 * time.Second

// heldError is an agent's refusal of our lease: another controller holds
// the machine.
type heldError struct {
	host string
	err  error
}

func (e *heldError) Error() string { return fmt.Sprintf("pool host %s is busy: %v", e.host, e.err) }
func (e *heldError) Unwrap() error { return e.err }

// takeAgentLocked takes this session's lease on a pool host's agent and
// keeps it with heartbeats; a *heldError if another controller holds it.
// Called with sp.mu held.
func (sp *staticPool) takeAgentLocked(name string) error {
	c, _, err := sp.clientLocked(name)
	if err != nil {
		return err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	if err := sp.heartbeat(c, stop, done); err != nil {
		if agent.IsLeaseHeld(err) {
			return &heldError{host: name, err: err}
		}
		return fmt.Errorf("pool host %s: agent %s: %w", name, sp.host(name).Agent, err)
	}
	sp.stops[name], sp.beatDone[name], sp.agentHeld[name] = stop, done, true
	return nil
}

// releaseAgentLocked gives back this session's lease on a pool host's
// agent, so that other controllers may use the machine: first the test
// binary shipped there goes (the session may not change the machine
// while it does not hold the lease). Called with sp.mu held.
func (sp *staticPool) releaseAgentLocked(name string) {
	if !sp.agentHeld[name] {
		return
	}
	close(sp.stops[name])
	<-sp.beatDone[name]
	delete(sp.stops, name)
	delete(sp.beatDone, name)
	delete(sp.agentHeld, name)
	c := sp.clients[name]
	if sp.shipped != nil {
		sp.shipped.removeFrom(c, sp.session)
	}
	ctx, cancel := context.WithTimeout(context.Background(), agentCallTimeout)
	c.Release(ctx, &pb.HeartbeatRequest{Session: sp.session})
	cancel()
}

// idleAgentLocked releases the lease of a host's agent once no recipe
// of this process used the host for agentIdle. Called with sp.mu held.
func (sp *staticPool) idleAgentLocked(name string) {
	if !sp.agentHeld[name] || sp.slot(name) != nil {
		return // a provisioner's machine has its own idle time
	}
	if t := sp.idle[name]; t != nil {
		t.Stop()
	}
	sp.idle[name] = time.AfterFunc(agentIdle, func() {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		select {
		case <-sp.stop:
			return // closing: the heartbeats release every lease
		default:
		}
		if !sp.leased[name] {
			sp.releaseAgentLocked(name)
		}
	})
}

// forgetLocked ends the heartbeats to a pool host's agent and closes the
// connection: its machine was released. Called with sp.mu held.
func (sp *staticPool) forgetLocked(name string) {
	if stop := sp.stops[name]; stop != nil {
		close(stop)
	}
	if conn := sp.conns[name]; conn != nil {
		conn.Close()
	}
	if c := sp.clients[name]; c != nil && sp.shipped != nil {
		sp.shipped.forget(c)
	}
	delete(sp.stops, name)
	delete(sp.beatDone, name)
	delete(sp.agentHeld, name)
	delete(sp.conns, name)
	delete(sp.clients, name)
	delete(sp.hellos, name)
}

// heartbeat takes this session's lease on an agent and keeps it, sending a
// heartbeat every third of the agent's lease TTL until close (or until
// stop is closed; done is closed when they end). Should this process die,
// the agent restores the session's changes itself once the lease expires.
func (sp *staticPool) heartbeat(c pb.AgentClient, stop <-chan struct{}, done chan<- struct{}) error {
	req := &pb.HeartbeatRequest{Session: sp.session}
	ctx, cancel := context.WithTimeout(context.Background(), agentCallTimeout)
	r, err := c.Heartbeat(ctx, req)
	cancel()
	if err != nil {
		return fmt.Errorf("take a lease: %w", err)
	}
	sp.setInstance(c, r.Instance)
	every := max(r.Ttl.AsDuration()/3, 50*time.Millisecond)
	sp.beats.Add(1)
	go func() {
		defer sp.beats.Done()
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-sp.stop:
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c.Release(ctx, req)
				cancel()
				return
			case <-tick.C:
				ctx, cancel := context.WithTimeout(context.Background(), every)
				r, err := c.Heartbeat(ctx, req)
				cancel()
				sp.checkLease(c, r, err)
			}
		}
	}()
	return nil
}

// lostLease is when and why a lease on an agent was lost: it expired (the
// controller was cut off for longer than the TTL) or the agent restarted.
// Either way the agent undid this run's changes.
type lostLease struct {
	at  time.Time
	err error
}

func (sp *staticPool) setInstance(c pb.AgentClient, instance string) {
	sp.leaseMu.Lock()
	defer sp.leaseMu.Unlock()
	if sp.instances == nil {
		sp.instances, sp.lost = map[pb.AgentClient]string{}, map[pb.AgentClient]lostLease{}
	}
	sp.instances[c] = instance
	delete(sp.lost, c)
}

// checkLease notes a lost lease from a heartbeat's answer.
func (sp *staticPool) checkLease(c pb.AgentClient, r *pb.HeartbeatReply, err error) {
	sp.leaseMu.Lock()
	defer sp.leaseMu.Unlock()
	if _, lost := sp.lost[c]; lost {
		return
	}
	switch {
	case status.Code(err) == codes.FailedPrecondition:
		sp.lost[c] = lostLease{time.Now(), err}
	case err == nil && r.Instance != "" && r.Instance != sp.instances[c]:
		sp.lost[c] = lostLease{time.Now(), errors.New("the agent restarted and undid this run's changes from its journal")}
	}
}

// verifyLease sends a heartbeat now, so that an agent restarted or a lease
// expired since the last one is noticed before a recipe is judged.
func (sp *staticPool) verifyLease(c pb.AgentClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: sp.session})
	sp.checkLease(c, r, err)
}

// lostSince says why the lease on c was lost after t, nil if it was not.
func (sp *staticPool) lostSince(c pb.AgentClient, t time.Time) error {
	sp.leaseMu.Lock()
	defer sp.leaseMu.Unlock()
	if l, ok := sp.lost[c]; ok && l.at.After(t) {
		return l.err
	}
	return nil
}

// lockHost takes a pool host's lease file (pool.StaticProvisioner), shared
// by every test process on this machine; false if another process holds
// it.
func (sp *staticPool) lockHost(name string) (bool, error) {
	if sp.slot(name) != nil {
		return true, nil // a provisioner's machine is this process's alone
	}
	m, err := sp.static.Reserve(context.Background(), pool.Request{Host: name})
	if errors.Is(err, pool.ErrBusy) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	sp.locks[name] = m
	return true, nil
}

// lease waits until a mapping of reqs (or want, when given) is on free
// hosts and leases them. It returns an *pool.UnsatError at once if no
// mapping exists even on an idle pool.
//
// Waiting recipes queue, and whenever hosts free up they are offered them
// in turn (see dispatch): a recipe takes machines as soon as it fits.
func (sp *staticPool) lease(t testing.TB, reqs []pool.HostReq, want *pool.Mapping) (pool.Mapping, error) {
	if want == nil {
		if _, err := pool.Map(sp.p, reqs, nil); err != nil {
			return pool.Mapping{}, err
		}
	}
	w := &leaseWaiter{reqs: reqs, want: want, width: len(reqs), since: time.Now(), done: make(chan struct{}), expect: sp.expect[t.Name()]}
	if want != nil {
		w.width = len(want.Hosts)
	}
	sp.mu.Lock()
	sp.seq++
	w.seq = sp.seq
	sp.waiters = append(sp.waiters, w)
	if sp.gather == nil {
		sp.gather = time.AfterFunc(leaseGather, func() {
			sp.mu.Lock()
			defer sp.mu.Unlock()
			sp.gather = nil
			sp.dispatch()
		})
	}
	sp.mu.Unlock()
	tick := time.NewTicker(leaseLog)
	defer tick.Stop()
	var deadline <-chan time.Time
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if at, ok := d.Deadline(); ok {
			left := time.Until(at)
			timer := time.NewTimer(left - min(leaseDeadlineMargin, left/10))
			defer timer.Stop()
			deadline = timer.C
		}
	}
	for {
		select {
		case <-w.done:
			return w.m, w.err
		case <-deadline:
			sp.mu.Lock()
			select {
			case <-w.done:
				sp.mu.Unlock()
				return w.m, w.err
			default:
			}
			sp.waiters = slices.DeleteFunc(sp.waiters, func(o *leaseWaiter) bool { return o == w })
			why := w.why
			sp.mu.Unlock()
			return pool.Mapping{}, &waitedOutError{waited: time.Since(w.since), why: why}
		case <-tick.C:
			sp.mu.Lock()
			why, ahead := w.why, sp.ahead(w)
			sp.mu.Unlock()
			t.Logf("lnsttest: waiting %v for pool hosts to free up, %d recipes first in line (%v)", time.Since(w.since).Round(time.Second), ahead, why)
		}
	}
}

// leaseDeadlineMargin is how long before the test binary's deadline
// (-test.timeout) a recipe still waiting for pool hosts gives up (at most
// a tenth of the time left when it began to wait), so that it skips
// saying who holds them rather than the binary panicking.
const leaseDeadlineMargin = time.Minute

// waitedOutError is a recipe that waited for pool hosts until close to
// the test binary's deadline.
type waitedOutError struct {
	waited time.Duration
	why    error
}

func (e *waitedOutError) Error() string {
	return fmt.Sprintf("no pool hosts for this recipe after waiting %v, close to the test binary's deadline (-test.timeout): %v", e.waited.Round(time.Second), e.why)
}

// leaseGather is how long a recipe that asks for hosts waits for the
// recipes that ask with it (t.Parallel recipes start together), so that
// hosts go to the widest of them first, not to whichever asked first.
const leaseGather = 2 * time.Millisecond

// leaseLog is how often a waiting recipe logs that it waits.
const leaseLog = 10 * time.Second

// leaseStarve is how long a recipe waits before the hosts it needs are
// kept for it: until then narrower recipes may take hosts it waits for.
const leaseStarve = time.Minute

// leaseWaiter is a recipe waiting in lease; its result is set and done
// closed once it has its hosts, or an error.
type leaseWaiter struct {
	// expect is how long the recipe ran last time (0: unknown), from
	// -lnst.history.
	expect time.Duration
	reqs   []pool.HostReq
	want   *pool.Mapping
	width  int    // hosts it needs
	seq    uint64 // order of arrival
	since  time.Time
	why    error // why it waits, as last seen
	done   chan struct{}
	m      pool.Mapping
	err    error
}

// before orders waiters: one starving since longer first; then, when
// their durations are known from a previous run, the one with more
// host-time (hosts x duration: the longest and widest work started first
// leaves the short and narrow to fill the gaps); then the widest (a narrow
// recipe fits in what is left beside a wide one, not the reverse, so wide
// recipes started first pack the pool best when durations are unknown);
// then first come.
func (w *leaseWaiter) before(o *leaseWaiter, now time.Time, starve time.Duration) bool {
	wstarve, ostarve := now.Sub(w.since) >= starve, now.Sub(o.since) >= starve
	wwork, owork := time.Duration(w.width)*w.expect, time.Duration(o.width)*o.expect
	switch {
	case wstarve != ostarve:
		return wstarve
	case wstarve:
		return w.seq < o.seq
	case wwork != owork:
		return wwork > owork
	case w.width != o.width:
		return w.width > o.width
	}
	return w.seq < o.seq
}

// ahead counts the waiters w would let go first.
func (sp *staticPool) ahead(w *leaseWaiter) int {
	n, now := 0, time.Now()
	for _, o := range sp.waiters {
		if o != w && o.before(w, now, sp.starve) {
			n++
		}
	}
	return n
}

var errBusy = errors.New("the hosts are busy")

// dispatch offers the free hosts to the waiting recipes, in the order of
// before, and leases them to every one that fits. A recipe waiting longer
// than leaseStarve keeps the hosts it waits for from those after it.
// Hosts held by other test processes free up without telling us: while a
// recipe waits and some are, dispatch runs again every leaseRetry.
// Called with sp.mu held.
func (sp *staticPool) dispatch() {
	now := time.Now()
	sort.SliceStable(sp.waiters, func(i, j int) bool { return sp.waiters[i].before(sp.waiters[j], now, sp.starve) })
	kept := map[string]bool{} // for a starving waiter
	free := sp.freeHosts(kept)
	waiting := sp.waiters[:0]
	for _, w := range sp.waiters {
		m, err := pool.Mapping{}, error(errBusy)
		tried := w.width <= free // a mapping takes distinct hosts
		if tried {
			m, err = sp.tryLease(w, kept)
		}
		if err == nil {
			free -= len(m.Hosts)
			w.m = m
			close(w.done)
			continue
		}
		var unsat *pool.UnsatError
		if !errors.As(err, &unsat) && !errors.Is(err, errBusy) {
			w.err = err
			close(w.done)
			continue
		}
		w.why = sp.withHolders(err)
		waiting = append(waiting, w)
		starving := now.Sub(w.since) >= sp.starve
		if starving {
			sp.keep(w, kept)
		}
		if tried || starving { // hosts may have turned busy or kept
			free = sp.freeHosts(kept)
		}
	}
	clear(sp.waiters[len(waiting):])
	sp.waiters = waiting
	if len(sp.waiters) == 0 {
		clear(sp.busy) // the next recipe to come looks afresh
		clear(sp.heldBy)
	}
	if len(sp.waiters) > 0 && len(sp.busy) > 0 && sp.retry == nil {
		sp.retry = time.AfterFunc(leaseRetry, func() {
			sp.mu.Lock()
			defer sp.mu.Unlock()
			sp.retry = nil
			clear(sp.busy)
			clear(sp.heldBy)
			sp.dispatch()
		})
	}
}

// withHolders adds to why a recipe waits the controllers that hold pool
// hosts, as their agents said. Called with sp.mu held.
func (sp *staticPool) withHolders(err error) error {
	if len(sp.heldBy) == 0 {
		return err
	}
	var hosts []string
	for h := range sp.heldBy {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	errs := []error{err}
	for _, h := range hosts {
		errs = append(errs, sp.heldBy[h])
	}
	return errors.Join(errs...)
}

// freeHosts counts the hosts neither leased, nor busy, nor kept.
func (sp *staticPool) freeHosts(kept map[string]bool) int {
	n := 0
	for i := range sp.p.Hosts {
		if h := sp.p.Hosts[i].Name; !sp.leased[h] && !sp.busy[h] && !kept[h] {
			n++
		}
	}
	return n
}

// keep adds to kept the hosts a starving waiter waits for: those of the
// mapping it would have if this process released every host.
func (sp *staticPool) keep(w *leaseWaiter, kept map[string]bool) {
	m := w.want
	if m == nil {
		mm, err := pool.Map(sp.p, w.reqs, func(h string) bool { return !sp.busy[h] && !kept[h] })
		if err != nil {
			return
		}
		m = &mm
	}
	for _, hm := range m.Hosts {
		kept[hm.Pool] = true
	}
}

// tryLease maps a waiter's requirements onto hosts free in this process
// and not kept, then takes their lease files; a host another process
// holds is marked busy and the mapping tried again.
func (sp *staticPool) tryLease(w *leaseWaiter, kept map[string]bool) (pool.Mapping, error) {
	free := func(h string) bool { return !sp.leased[h] && !sp.busy[h] && !kept[h] }
	for {
		var m pool.Mapping
		if w.want != nil {
			m = *w.want
			for _, hm := range m.Hosts {
				if !free(hm.Pool) {
					return m, errBusy
				}
			}
		} else {
			var err error
			m, err = pool.Map(sp.p, w.reqs, free)
			if err != nil {
				return m, err
			}
		}
		var got []string
		ok := true
		for _, hm := range m.Hosts {
			locked, err := sp.lockHost(hm.Pool)
			if err == nil && locked {
				err = sp.takeAgentIfPooled(hm.Pool)
				var held *heldError
				if errors.As(err, &held) {
					sp.heldBy[hm.Pool], locked, err = held, false, nil
				}
				if !locked || err != nil {
					sp.unlock([]string{hm.Pool})
				}
			}
			if err != nil {
				sp.unlock(got)
				return m, err // it names the host
			}
			if !locked {
				sp.busy[hm.Pool] = true
				ok = false
				break
			}
			got = append(got, hm.Pool)
		}
		if ok {
			for _, h := range got {
				sp.leased[h] = true
			}
			return m, nil
		}
		sp.unlock(got)
	}
}

// takeAgentIfPooled takes the lease on the agent of a pool host of the
// pool file (a provisioner's machine is this process's alone, and has no
// agent before it is provisioned). Called with sp.mu held.
func (sp *staticPool) takeAgentIfPooled(name string) error {
	if sp.noAgentLease || sp.slot(name) != nil || sp.agentHeld[name] {
		return nil
	}
	return sp.takeAgentLocked(name)
}

func (sp *staticPool) unlock(hosts []string) {
	for _, h := range hosts {
		if m := sp.locks[h]; m != nil {
			sp.static.Release(context.Background(), m) // closes the lease file: never fails
			delete(sp.locks, h)
		}
	}
}

// release returns a mapping's hosts to the pool and offers them to the
// waiting recipes.
func (sp *staticPool) release(m pool.Mapping) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var hosts []string
	for _, hm := range m.Hosts {
		delete(sp.leased, hm.Pool)
		hosts = append(hosts, hm.Pool)
	}
	sp.unlock(hosts)
	sp.dispatch()
	for _, h := range hosts {
		if !sp.leased[h] {
			sp.idleAgentLocked(h)
		}
	}
}

func (sp *staticPool) close() error {
	sp.cancelReservations()
	sp.stopAgents()
	return sp.releaseMachines()
}

// stopAgents ends the heartbeats, releasing this run's lease on every
// agent (each undoes what the run left), closes the connections and
// gives the lease files back.
func (sp *staticPool) stopAgents() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	select {
	case <-sp.stop:
	default:
		close(sp.stop)
	}
	sp.beats.Wait()
	for _, t := range sp.idle {
		t.Stop()
	}
	clear(sp.agentHeld)
	for _, c := range sp.conns {
		c.Close()
	}
	var all []string
	for h := range sp.locks {
		all = append(all, h)
	}
	sp.unlock(all)
}

// poolReqs turns requirements into the mapper's.
func poolReqs(reqs []Requirement) []pool.HostReq {
	var out []pool.HostReq
	for _, r := range reqs {
		h := pool.HostReq{Name: r.host.name, Arch: r.host.arch, Params: patterns(r.host.params, r.host.regexps)}
		for _, i := range r.host.ifaces {
			h.Ifaces = append(h.Ifaces, pool.IfaceReq{Name: i.name, Net: i.net, Driver: i.driver, Params: patterns(i.params, i.regexps)})
		}
		out = append(out, h)
	}
	return out
}

func patterns(params map[string]string, regexps map[string]bool) map[string]pool.Pattern {
	if len(params) == 0 {
		return nil
	}
	p := map[string]pool.Pattern{}
	for k, v := range params {
		p[k] = pool.Pattern{Value: v, Regexp: regexps[k]}
	}
	return p
}

// matchPool leases pool hosts for reqs (exactly want, when given) and
// makes the Match. The lease is released when t ends.
func (s *session) matchPool(t *testing.T, reqs []Requirement, want *pool.Mapping) *Match {
	t.Helper()
	sp := s.pool
	mapping, err := sp.lease(t, poolReqs(reqs), want)
	var unsat *pool.UnsatError
	var waitedOut *waitedOutError
	if errors.As(err, &waitedOut) {
		if cfg.strict {
			t.Fatalf("lnsttest.Require: %v (-lnst.strict)", err)
		}
		t.Skipf("lnsttest.Require: %v", err)
	}
	if errors.As(err, &unsat) {
		unmet(t, "lnsttest.Require", fmt.Sprintf("pool %s: %v", sp.p.Path, err))
	}
	if err != nil {
		t.Fatalf("lnsttest.Require: %v", err)
	}
	st := s.state(t)
	leased := time.Now()
	t.Cleanup(func() {
		st.restore()
		s.hostsDied(t, st, sp.settle(mapping))
		// Verified while this process still holds the leases: release
		// may give them back.
		defer sp.release(mapping)
		for _, hm := range mapping.Hosts {
			sp.mu.Lock()
			c := sp.clients[hm.Pool]
			sp.mu.Unlock()
			if c == nil {
				continue // never reached, or released: its machine died
			}
			sp.verifyLease(c)
			if err := sp.lostSince(c, leased); err != nil {
				t.Errorf("pool host %s: this recipe's lease was lost: %v; its changes there were undone under it, so its results are not valid", hm.Pool, err)
			}
		}
	})
	// Before anything is done on the hosts: a destructive recipe runs
	// only where every host's pool entry allows what it declared.
	var hosts []*pool.Host
	for _, r := range reqs {
		hosts = append(hosts, sp.host(mapping.Hosts[r.host.name].Pool))
	}
	st.mu.Lock()
	st.poolHosts = append(st.poolHosts, hosts...)
	st.mu.Unlock()
	if reason := destructiveDenied(s.declared(t.Name()), hosts, sp.p.Path); reason != "" {
		t.Skipf("lnsttest.Require: %s", reason)
	}
	if err := sp.provision(t, mapping); err != nil {
		t.Fatalf("lnsttest.Require: %v", err)
	}
	var matched []matchHost
	for _, r := range reqs {
		hm := mapping.Hosts[r.host.name]
		c, hello, err := sp.client(hm.Pool)
		if err != nil {
			t.Fatalf("lnsttest.Require: %v", err)
		}
		st.use(c)
		h := &Host{s: s, client: c, name: r.host.name, id: "", ifaces: map[string]string{}}
		if err := resolveIfaces(h, sp.host(hm.Pool), hm.Ifaces); err != nil {
			t.Fatalf("lnsttest.Require: pool host %s: %v", hm.Pool, err)
		}
		st.watchConsole(t, h.name, sp.host(hm.Pool)) // poolconsole.go
		s.addHostInfo(hm.Pool, hello)
		matched = append(matched, matchHost{h: h, where: hm.Pool, kernel: hello.Kernel, need: r.host.kernel})
	}
	return st.newMatch(t, matched)
}

// resolveIfaces finds the real names of a pool host's mapped interfaces:
// one given by hwaddr only is looked up on the host.
func resolveIfaces(h *Host, ph *pool.Host, mapped map[string]string) error {
	var links *pb.LinksReply
	for req, id := range mapped {
		if _, err := net.ParseMAC(id); err != nil {
			h.ifaces[req] = id // a name
			continue
		}
		if links == nil {
			var err error
			if links, err = h.client.Links(context.Background(), &pb.HostRef{}); err != nil {
				return fmt.Errorf("list devices: %w", err)
			}
		}
		found := false
		for _, l := range links.Links {
			if net.HardwareAddr(l.Hwaddr).String() == id {
				h.ifaces[req], found = l.Name, true
			}
		}
		if !found {
			return fmt.Errorf("no device has hwaddr %s (interface %s of the pool file)", id, req)
		}
	}
	return nil
}
