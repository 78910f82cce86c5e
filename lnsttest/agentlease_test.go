package lnsttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	"github.com/lnst-go/lnst/internal/agentconn"
	"github.com/lnst-go/lnst/pool"
	"google.golang.org/grpc"
)

// leaseAgentPool serves an agent (this machine's, with no lab) on a unix
// socket and returns a pool file of that one machine, m1.
func leaseAgentPool(t *testing.T) *pool.Pool {
	t.Helper()
	srv, err := agent.NewServer(agent.Options{})
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	addr := "unix://" + filepath.Join(t.TempDir(), "agent.sock")
	lis, err := agentconn.Listen(addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(func() {
		srv.Shutdown()
		g.Stop()
	})
	return &pool.Pool{Path: "agentlease_test.go", Hosts: []pool.Host{{
		Name: "m1", Agent: addr, Insecure: true, Arch: "x86_64",
		Ifaces: []pool.Iface{{Name: "eth0", Net: "n1"}},
	}}}
}

// controllerPool is the pool of a controller of its own: its own session
// and lease files (as another TMPDIR, or another machine, has).
func controllerPool(t *testing.T, p *pool.Pool, session string) *staticPool {
	provs := []pool.Provisioner{&pool.StaticProvisioner{Pool: p, LeaseDir: t.TempDir()}}
	sp, err := openPool(p.Path, provs, session, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.close() })
	return sp
}

// waitWhy waits until the only recipe waiting in sp says why it waits,
// and returns that.
func waitWhy(t *testing.T, sp *staticPool) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if w := sp.sched.Waiting(); len(w) == 1 && w[0].Why != nil {
			return w[0].Why.Error()
		}
	}
	t.Fatalf("no recipe waits in pool %s after 30s", sp.session)
	return ""
}

// schedReqs requires n hosts, each with one interface on network n1.
func schedReqs(n int) []pool.HostReq {
	reqs := make([]pool.HostReq, n)
	for i := range reqs {
		reqs[i] = pool.HostReq{Name: fmt.Sprintf("h%d", i+1), Ifaces: []pool.IfaceReq{{Name: "eth", Net: "n1"}}}
	}
	return reqs
}

// quietTB is the testing.TB handed to lease by a test's goroutines: lease
// only logs through it.
type quietTB struct {
	testing.TB
	name string
}

func (quietTB) Helper()               {}
func (quietTB) Logf(string, ...any)   {}
func (quietTB) Log(...any)            {}
func (q quietTB) Name() string        { return "lease/" + q.name }
func (quietTB) Errorf(string, ...any) {}

// leaseWithin leases reqs (or want) from sp in the background and fails
// t unless the lease is done within d.
func leaseWithin(t *testing.T, sp *staticPool, reqs []pool.HostReq, want *pool.Mapping, d time.Duration) pool.Mapping {
	t.Helper()
	type result struct {
		m   pool.Mapping
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := sp.lease(quietTB{}, reqs, want)
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("lease: %v", r.err)
		}
		return r.m
	case <-time.After(d):
		t.Fatalf("lease: not done after %v", d)
	}
	panic("unreachable")
}

// deadlineTB is a recipe whose test binary's deadline is at.
type deadlineTB struct {
	quietTB
	at time.Time
}

func (d deadlineTB) Deadline() (time.Time, bool) { return d.at, true }

// TestLeaseAgentRefusesOtherController: two controllers that share no
// lease files never hold one machine at once: the second waits, naming
// the first's session, until the first lets the machine go, and then the
// first waits for the second; a recipe still waiting close to its test
// binary's deadline gives up naming the holder.
func TestLeaseAgentRefusesOtherController(t *testing.T) {
	p := leaseAgentPool(t)
	a := controllerPool(t, p, "ctlA")
	b := controllerPool(t, p, "ctlB")
	ma := leaseWithin(t, a, schedReqs(1), nil, 30*time.Second)

	type result struct {
		m   pool.Mapping
		err error
	}
	got := make(chan result, 1)
	go func() {
		m, err := b.lease(quietTB{name: "b"}, schedReqs(1), nil)
		got <- result{m, err}
	}()
	why := waitWhy(t, b)
	for _, want := range []string{"pool host m1 is busy", "session ctlA", "holds the lease since"} {
		if !strings.Contains(why, want) {
			t.Errorf("B waits because %q, want it to say %q", why, want)
		}
	}
	select {
	case r := <-got:
		t.Fatalf("B leased %v (error %v) while A held m1", r.m, r.err)
	default:
	}
	a.sched.Release(ma)
	var mb pool.Mapping
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("B, after A let m1 go: %v", r.err)
		}
		mb = r.m
	case <-time.After(30 * time.Second):
		t.Fatalf("B has no host 30s after A let m1 go")
	}
	if mb.Hosts["h1"].Pool != "m1" {
		t.Fatalf("B leased %v, want m1", mb)
	}

	// A, now, waits for B, and gives up close to its deadline.
	_, err := a.lease(deadlineTB{quietTB{name: "a"}, time.Now().Add(2 * time.Second)}, schedReqs(1), nil)
	if err == nil {
		t.Fatalf("A leased m1 while B held it")
	}
	for _, want := range []string{"close to the test binary's deadline", "session ctlB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("A gave up with %q, want it to say %q", err, want)
		}
	}
	b.sched.Release(mb)
	leaseWithin(t, a, schedReqs(1), nil, 30*time.Second)
}

// TestSessionIDSaysWhat: a session id, which agents log and name in a
// refused lease, says what kind of run holds the machine and from where.
func TestSessionIDSaysWhat(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"pool", "lab"} {
		id := sessionID(kind)
		want := fmt.Sprintf("%s-%s-%d-", kind, host, os.Getpid())
		if !strings.HasPrefix(id, want) || strings.Contains(id, "/") {
			t.Errorf("sessionID(%q) = %q, want %q and a random part, no '/'", kind, id, want)
		}
	}
}
