package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClaims is a Claims whose hosts in held are another's, and whose
// hosts in broken fail to be claimed.
type fakeClaims struct {
	mu        sync.Mutex
	held      map[string]bool
	broken    map[string]bool
	claimed   map[string]bool
	unclaimed []string
}

func (f *fakeClaims) Claim(host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.broken[host]:
		return fmt.Errorf("pool host %s: agent unreachable", host)
	case f.held[host]:
		return fmt.Errorf("pool host %s is held by session ctlX: %w", host, ErrBusy)
	}
	f.claimed[host] = true
	return nil
}

func (f *fakeClaims) Unclaim(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.claimed[host] {
		delete(f.claimed, host)
		f.unclaimed = append(f.unclaimed, host)
	}
}

func (f *fakeClaims) Forget(string) {}

func (f *fakeClaims) set(m map[string]bool, host string, v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m[host] = v
}

// TestSchedulerClaims: a lease waits while another holds the claim of a
// host it needs, saying who; it gets the host once the claim is free; a
// claim no lease used for ClaimIdle is given back; a claim that fails for
// another reason fails the lease, naming the host.
func TestSchedulerClaims(t *testing.T) {
	p := schedPool(t, 2).Pool()
	fc := &fakeClaims{held: map[string]bool{"m1": true}, broken: map[string]bool{}, claimed: map[string]bool{}}
	s := newSched(t, p, SchedulerOptions{Claims: fc, ClaimIdle: 20 * time.Millisecond})
	got := make(chan error, 1)
	var m Mapping
	go func() {
		var err error
		m, err = s.Lease(context.Background(), LeaseRequest{Name: "wide", Hosts: schedReqs(2)})
		got <- err
	}()
	waitFor(t, 10*time.Second, "the wide lease to wait saying why", func() bool {
		w := s.Waiting()
		return len(w) == 1 && w[0].Why != nil && strings.Contains(w[0].Why.Error(), "held by session ctlX")
	})
	select {
	case err := <-got:
		t.Fatalf("leased %v (error %v) while another held m1's claim", m, err)
	default:
	}
	fc.set(fc.held, "m1", false)
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("lease once m1 was free: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no lease 10s after m1's claim was free")
	}
	s.Release(m)
	waitFor(t, 10*time.Second, "the idle claims to be given back", func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return len(fc.unclaimed) == 2
	})
	fc.mu.Lock()
	unclaimed := slices.Sorted(slices.Values(fc.unclaimed))
	fc.mu.Unlock()
	if !slices.Equal(unclaimed, []string{"m1", "m2"}) {
		t.Fatalf("unclaimed %v, want m1 and m2", unclaimed)
	}

	fc.set(fc.broken, "m2", true)
	want := &Mapping{Hosts: map[string]HostMatch{"h1": {Pool: "m2", Ifaces: map[string]string{"eth": "eth0"}}}}
	_, err := s.Lease(context.Background(), LeaseRequest{Want: want})
	if err == nil || !strings.Contains(err.Error(), "pool host m2: agent unreachable") || errors.Is(err, ErrBusy) {
		t.Fatalf("lease of a host whose claim fails: %v, want the claim's error", err)
	}
	if s.Leased("m2") {
		t.Fatal("m2 is leased after its claim failed")
	}
	s.Close()
}
