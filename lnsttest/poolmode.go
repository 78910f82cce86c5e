package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"google.golang.org/grpc"
)

// staticPool is lnsttest's side of a pool of machines (-lnst.pool): the
// scheduler that leases them to recipes (pool.Scheduler, over the pool
// file's provisioners), and their agents (poolagent.go). Hosts are leased
// to one recipe at a time, in this process by the scheduler and across
// controllers by the agent's own lease, which one session at a time
// holds; an flock per host is a shortcut between the test processes of
// this machine.
type staticPool struct {
	p       *pool.Pool // the scheduler's: the pool file's hosts and the provisioners' slots
	sched   *pool.Scheduler
	session string
	stop    chan struct{} // closed by close: heartbeats end

	leaseMu   sync.Mutex // guards instances and lost
	instances map[pb.AgentClient]string
	lost      map[pb.AgentClient]lostLease
	beats     sync.WaitGroup

	// mu guards the agents' state below; taken after the scheduler's
	// lock (pool.Claims).
	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn
	clients map[string]pb.AgentClient
	hellos  map[string]*pb.HelloReply
	stops   map[string]chan struct{} // closed to end a client's heartbeats
	// agentHeld are the hosts whose agent's lease this process holds, and
	// beatDone is closed when a host's heartbeats ended.
	agentHeld map[string]bool
	beatDone  map[string]chan struct{}

	// shipped are the session's test binaries on pool hosts: a released
	// machine's is forgotten with it.
	shipped *shippedBinaries
}

// newStaticPool is the pool of the pool file p, scheduled in the order
// expect gives (-lnst.history: how long each recipe ran last time).
func newStaticPool(p *pool.Pool, session string, expect map[string]time.Duration) (*staticPool, error) {
	return openPool(p.Path, pool.Provisioners(p, os.Stderr), session, expect)
}

// openPool is the pool of provs; path names it in messages.
func openPool(path string, provs []pool.Provisioner, session string, expect map[string]time.Duration) (*staticPool, error) {
	sp := &staticPool{
		session: session, stop: make(chan struct{}),
		conns: map[string]*grpc.ClientConn{}, clients: map[string]pb.AgentClient{}, hellos: map[string]*pb.HelloReply{}, stops: map[string]chan struct{}{},
		agentHeld: map[string]bool{}, beatDone: map[string]chan struct{}{},
	}
	sched, err := pool.NewScheduler(path, provs, pool.SchedulerOptions{Expect: expect, Claims: sp, ClaimIdle: agentIdle, Log: os.Stderr})
	if err != nil {
		return nil, err
	}
	sp.sched, sp.p = sched, sched.Pool()
	return sp, nil
}

func (sp *staticPool) host(name string) *pool.Host { return sp.sched.Host(name) }

// lease waits until a mapping of reqs (or want, when given) is on free
// hosts and leases them (pool.Scheduler.Lease), logging through t every
// pool.WaitReport while it waits. It returns an *pool.UnsatError at once
// if no mapping exists even on an idle pool, and a *waitedOutError close
// to the test binary's deadline.
func (sp *staticPool) lease(t testing.TB, reqs []pool.HostReq, want *pool.Mapping) (pool.Mapping, error) {
	ctx := context.Background()
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if at, ok := d.Deadline(); ok {
			left := time.Until(at)
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, left-min(leaseDeadlineMargin, left/10))
			defer cancel()
		}
	}
	m, err := sp.sched.Lease(ctx, pool.LeaseRequest{Name: t.Name(), Hosts: reqs, Want: want, Waiting: func(w pool.WaitStatus) {
		t.Logf("lnsttest: waiting %v for pool hosts to free up, %d recipes first in line (%v)", w.Waited.Round(time.Second), w.Ahead, w.Why)
	}})
	var waited *pool.WaitError
	if errors.As(err, &waited) {
		return m, &waitedOutError{waited: waited.Waited, why: waited.Why}
	}
	return m, err
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

// close ends the pool: pending reservations end, every agent's lease is
// given back (each agent undoes what the run left), then every host and
// machine goes back to its provisioner.
func (sp *staticPool) close() error {
	sp.sched.Stop()
	sp.stopAgents()
	return sp.sched.Close()
}

// poolReqs turns requirements into the mapper's.
func poolReqs(reqs []Requirement) []pool.HostReq {
	var out []pool.HostReq
	for _, r := range reqs {
		h := pool.HostReq{Name: r.host.name, Arch: r.host.arch, Params: patterns(r.host.params, r.host.regexps)}
		for _, i := range r.host.ifaces {
			req := pool.IfaceReq{Name: i.name, Net: i.net, Driver: i.driver, Params: patterns(i.params, i.regexps)}
			impairPoolReqs(i, &req) // impair.go
			h.Ifaces = append(h.Ifaces, req)
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
	var tcDevs []tcDev
	t.Cleanup(func() {
		st.restore()
		s.resetQdiscs(st, tcDevs)
		st.finishWatch(t) // sysinfo.go: kernel log, counters, agent logs
		s.hostsDied(t, st, sp.settle(mapping))
		// Verified while this process still holds the leases: release
		// may give them back.
		defer sp.sched.Release(mapping)
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
		h.emulated = sp.host(hm.Pool).Params[pool.EmulatedParam] == "true"
		if err := resolveIfaces(h, sp.host(hm.Pool), hm.Ifaces); err != nil {
			t.Fatalf("lnsttest.Require: pool host %s: %v", hm.Pool, err)
		}
		// Its qdiscs as at the run's first use (tcbaseline.go).
		tcDevs = append(tcDevs, s.saveQdiscs(t, hm.Pool, h)...)
		st.watchConsole(t, h.name, sp.host(hm.Pool)) // poolconsole.go
		s.addHostInfo(hm.Pool, hello)
		need := r.host.kernel
		for _, i := range r.host.ifaces {
			if q := topoImpair(i); q != nil {
				need = append(append(slices.Clip(need), q.Kind()), impairKinds...)
			}
		}
		matched = append(matched, matchHost{h: h, where: hm.Pool, kernel: hello.Kernel, need: need})
	}
	m := st.newMatch(t, matched)
	for _, r := range reqs {
		for _, i := range r.host.ifaces {
			if q := topoImpair(i); q != nil {
				h := m.Host(r.host.name)
				impairPool(t, h, h.Iface(i.name), q) // impair.go
			}
		}
	}
	return m
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
