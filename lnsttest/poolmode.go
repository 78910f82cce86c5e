package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/agentconn"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"google.golang.org/grpc"
)

// leaseRetry is how often a recipe waiting for busy pool hosts looks again
// (hosts leased by other test processes free up without telling us).
const leaseRetry = 200 * time.Millisecond

// staticPool is a pool of machines from a pool file: their agents, and
// which hosts are leased. Hosts are leased to one recipe at a time, in
// this process (leased) and across test processes (an flock per host).
type staticPool struct {
	p       *pool.Pool
	session string
	stop    chan struct{} // closed by close: heartbeats end
	beats   sync.WaitGroup

	mu      sync.Mutex
	freed   chan struct{} // closed and replaced when a host is released
	leased  map[string]bool
	locks   map[string]*os.File
	conns   map[string]*grpc.ClientConn
	clients map[string]pb.AgentClient
	hellos  map[string]*pb.HelloReply
}

func newStaticPool(p *pool.Pool, session string) *staticPool {
	return &staticPool{
		p: p, session: session, stop: make(chan struct{}), freed: make(chan struct{}), leased: map[string]bool{}, locks: map[string]*os.File{},
		conns: map[string]*grpc.ClientConn{}, clients: map[string]pb.AgentClient{}, hellos: map[string]*pb.HelloReply{},
	}
}

func (sp *staticPool) host(name string) *pool.PoolHost {
	for i := range sp.p.Hosts {
		if sp.p.Hosts[i].Name == name {
			return &sp.p.Hosts[i]
		}
	}
	return nil
}

// client returns the agent of a pool host, connecting on first use.
func (sp *staticPool) client(name string) (pb.AgentClient, *pb.HelloReply, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if c, ok := sp.clients[name]; ok {
		return c, sp.hellos[name], nil
	}
	h := sp.host(name)
	opts := agentconn.DialOptions{Insecure: h.Insecure}
	if h.TLS.CA != "" {
		tlsConf, err := agentconn.ClientTLS(h.TLS.CA, h.TLS.Cert, h.TLS.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("pool host %s: %w", name, err)
		}
		opts.TLS = tlsConf
	}
	conn, err := agentconn.Dial(context.Background(), h.Agent, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("pool host %s: %w", name, err)
	}
	c := pb.NewAgentClient(conn)
	hello, err := c.Hello(context.Background(), &pb.HelloRequest{})
	if err == nil {
		err = sp.heartbeat(c)
	}
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("pool host %s: agent %s: %w", name, h.Agent, err)
	}
	sp.conns[name], sp.clients[name], sp.hellos[name] = conn, c, hello
	return c, hello, nil
}

// heartbeat takes this session's lease on an agent and keeps it, sending a
// heartbeat every third of the agent's lease TTL until close. Should this
// process die, the agent restores the session's changes itself once the
// lease expires.
func (sp *staticPool) heartbeat(c pb.AgentClient) error {
	req := &pb.HeartbeatRequest{Session: sp.session}
	r, err := c.Heartbeat(context.Background(), req)
	if err != nil {
		return fmt.Errorf("take a lease: %w", err)
	}
	every := max(r.Ttl.AsDuration()/3, 50*time.Millisecond)
	sp.beats.Add(1)
	go func() {
		defer sp.beats.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-sp.stop:
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c.Release(ctx, req)
				cancel()
				return
			case <-tick.C:
				ctx, cancel := context.WithTimeout(context.Background(), every)
				c.Heartbeat(ctx, req)
				cancel()
			}
		}
	}()
	return nil
}

// lockHost takes a pool host's lease file, shared by every test process on
// this machine; false if another process holds it.
func (sp *staticPool) lockHost(name string) (bool, error) {
	dir := filepath.Join(os.TempDir(), "lnst-go-leases")
	if err := os.MkdirAll(dir, 0o1777); err != nil {
		return false, err
	}
	key := strings.NewReplacer("/", "_", ":", "_", "[", "", "]", "").Replace(sp.host(name).Agent)
	f, err := os.OpenFile(filepath.Join(dir, key+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return false, err
	}
	sp.locks[name] = f
	return true, nil
}

// lease waits until a mapping of reqs (or want, when given) is on free
// hosts and leases them. It returns an *pool.UnsatError at once if no
// mapping exists even on an idle pool.
func (sp *staticPool) lease(t testing.TB, reqs []pool.HostReq, want *pool.Mapping) (pool.Mapping, error) {
	if want == nil {
		if _, err := pool.Map(sp.p, reqs, nil); err != nil {
			return pool.Mapping{}, err
		}
	}
	busy := map[string]bool{} // held by other processes, as last seen
	logged := time.Now()
	for {
		sp.mu.Lock()
		m, err := sp.tryLease(reqs, want, busy)
		freed := sp.freed
		sp.mu.Unlock()
		if err == nil {
			return m, nil
		}
		var unsat *pool.UnsatError
		if !errors.As(err, &unsat) && !errors.Is(err, errBusy) {
			return pool.Mapping{}, err
		}
		if time.Since(logged) > 10*time.Second {
			t.Logf("lnsttest: waiting for pool hosts to free up (%v)", err)
			logged = time.Now()
		}
		select {
		case <-freed:
		case <-time.After(leaseRetry):
		}
		clear(busy)
	}
}

var errBusy = errors.New("the hosts are busy")

// tryLease maps reqs onto hosts free in this process, then takes their
// lease files; a host another process holds is marked busy and the
// mapping tried again.
func (sp *staticPool) tryLease(reqs []pool.HostReq, want *pool.Mapping, busy map[string]bool) (pool.Mapping, error) {
	for {
		var m pool.Mapping
		if want != nil {
			m = *want
			for _, hm := range m.Hosts {
				if sp.leased[hm.Pool] || busy[hm.Pool] {
					return m, errBusy
				}
			}
		} else {
			var err error
			m, err = pool.Map(sp.p, reqs, func(h string) bool { return !sp.leased[h] && !busy[h] })
			if err != nil {
				return m, err
			}
		}
		var got []string
		ok := true
		for _, hm := range m.Hosts {
			locked, err := sp.lockHost(hm.Pool)
			if err != nil {
				sp.unlock(got)
				return m, fmt.Errorf("lease pool host %s: %w", hm.Pool, err)
			}
			if !locked {
				busy[hm.Pool] = true
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

func (sp *staticPool) unlock(hosts []string) {
	for _, h := range hosts {
		if f := sp.locks[h]; f != nil {
			f.Close() // releases the flock
			delete(sp.locks, h)
		}
	}
}

// release returns a mapping's hosts to the pool.
func (sp *staticPool) release(m pool.Mapping) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var hosts []string
	for _, hm := range m.Hosts {
		delete(sp.leased, hm.Pool)
		hosts = append(hosts, hm.Pool)
	}
	sp.unlock(hosts)
	close(sp.freed)
	sp.freed = make(chan struct{})
}

func (sp *staticPool) close() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	select {
	case <-sp.stop:
	default:
		close(sp.stop)
	}
	sp.beats.Wait()
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
	if errors.As(err, &unsat) {
		if cfg.strict {
			t.Fatalf("lnsttest.Require: requirements cannot be met by pool %s (-lnst.strict): %v", sp.p.Path, err)
		}
		t.Skipf("lnsttest.Require: requirements cannot be met by pool %s: %v", sp.p.Path, err)
	}
	if err != nil {
		t.Fatalf("lnsttest.Require: %v", err)
	}
	st := s.state(t)
	t.Cleanup(func() {
		st.restore()
		sp.release(mapping)
	})
	m := &Match{hosts: map[string]*Host{}}
	var desc []string
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
		if missing := kernelMissing(c, r.host.kernel); len(missing) > 0 {
			if cfg.strict {
				t.Fatalf("lnsttest.Require: pool host %s lacks kernel support for %s (-lnst.strict)", hm.Pool, strings.Join(missing, ", "))
			}
			t.Skipf("lnsttest.Require: host %q needs kernel support for %s, which pool host %s (kernel %s) lacks", r.host.name, strings.Join(missing, ", "), hm.Pool, hello.Kernel)
		}
		m.hosts[h.name] = h
		desc = append(desc, h.name+"="+hm.Pool)
		s.addHostInfo(hm.Pool, hello)
	}
	sort.Strings(desc)
	m.desc = strings.Join(desc, " ")
	st.mu.Lock()
	st.match = m.desc
	st.mu.Unlock()
	st.logger().Info("hosts ready", "match", m.desc)
	return m
}

// resolveIfaces finds the real names of a pool host's mapped interfaces:
// one given by hwaddr only is looked up on the host.
func resolveIfaces(h *Host, ph *pool.PoolHost, mapped map[string]string) error {
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

// kernelMissing lists the kernel features an agent's kernel lacks.
func kernelMissing(c pb.AgentClient, need []string) []string {
	if len(need) == 0 {
		return nil
	}
	p, err := c.Probe(context.Background(), &pb.ProbeRequest{})
	if err != nil {
		return need
	}
	var missing []string
	for _, k := range need {
		if !p.LinkKinds[k] && !p.Qdiscs[k] {
			missing = append(missing, k)
		}
	}
	return missing
}
