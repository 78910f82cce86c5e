package pool

import (
	"slices"
	"testing"
	"time"
)

// testWaiter queues a lease called name for width hosts on s, as Lease
// does, in gathering batch, asking at since; dispatch is left to the
// test. Called with s.mu held.
func testWaiter(s *Scheduler, name string, width int, batch uint64, since time.Time) *waiter {
	s.seq++
	w := &waiter{name: name, reqs: schedReqs(width), width: width, seq: s.seq, batch: batch, since: since, done: make(chan struct{}), expect: s.expect(name)}
	s.waiters = append(s.waiters, w)
	return w
}

// testWaiting names the leases s still has waiting. Called with s.mu
// held.
func testWaiting(s *Scheduler) []string {
	var out []string
	for _, w := range s.waiters {
		out = append(out, w.name)
	}
	slices.Sort(out)
	return out
}

// TestSchedulerWidestThenLongest: free hosts go to the widest waiting
// lease first, and among leases of one width to the longest expected; a
// lease without history is expected to take the mean of the history. On
// 4 free hosts, b (2 hosts), c (1 host, 30 s) and d (1 host, unknown:
// the mean, 13.7 s) get them; a (1 host, 10 s) waits. (Most host-time
// first gave them to c, a and b, and d, with no history, waited.)
func TestSchedulerWidestThenLongest(t *testing.T) {
	p := schedPool(t, 4).p
	s := newSched(t, p, SchedulerOptions{Expect: map[string]time.Duration{"a": 10 * time.Second, "b": time.Second, "c": 30 * time.Second}})
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, w := range []struct {
		name  string
		width int
	}{{"a", 1}, {"b", 2}, {"c", 1}, {"d", 1}} {
		testWaiter(s, w.name, w.width, 1, now)
	}
	if got, want := s.expect("d"), (41*time.Second)/3; got != want {
		t.Errorf("a lease without history is expected to take %v, want the mean %v", got, want)
	}
	s.dispatch()
	if got := testWaiting(s); !slices.Equal(got, []string{"a"}) {
		t.Errorf("waiting after dispatch: %v, want [a]", got)
	}
}

// TestSchedulerTogetherDoNotStarve: leases that asked together are
// dispatched in their order however long they wait (the order is their
// plan): a, first come and expected short, is not let ahead of b, expected
// long, after waiting an hour with a starvation bound of a millisecond.
func TestSchedulerTogetherDoNotStarve(t *testing.T) {
	p := schedPool(t, 2).p
	s := newSched(t, p, SchedulerOptions{Starve: time.Millisecond, Expect: map[string]time.Duration{"a": time.Second, "b": 10 * time.Second}})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leased["m2"] = true
	long := time.Now().Add(-time.Hour)
	testWaiter(s, "a", 1, 1, long)
	testWaiter(s, "b", 1, 1, long)
	s.dispatch()
	if got := testWaiting(s); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("waiting after dispatch: %v, want [a]: b, expected longer, goes first", got)
	}
	if s.waiters[0].overtaken {
		t.Errorf("a is marked overtaken by b, which asked with it")
	}
}

// TestSchedulerOvertakenStarves: a wide lease overtaken by a later,
// narrower one, once it has waited Starve, has the hosts it needs kept
// for it: the next narrow lease to come waits too.
func TestSchedulerOvertakenStarves(t *testing.T) {
	p := schedPool(t, 2).p
	s := newSched(t, p, SchedulerOptions{Starve: time.Millisecond})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leased["m2"] = true
	testWaiter(s, "wide", 2, 1, time.Now().Add(-time.Hour))
	testWaiter(s, "narrow1", 1, 2, time.Now())
	s.dispatch()
	if got := testWaiting(s); !slices.Equal(got, []string{"wide"}) {
		t.Fatalf("waiting after the first dispatch: %v, want [wide]", got)
	}
	if !s.waiters[0].overtaken {
		t.Fatalf("wide is not marked overtaken by narrow1, which asked later and took a host")
	}
	// narrow1 is done: its host is free again, and another narrow lease
	// asks.
	delete(s.leased, "m1")
	testWaiter(s, "narrow2", 1, 3, time.Now())
	s.dispatch()
	if got := testWaiting(s); !slices.Equal(got, []string{"narrow2", "wide"}) {
		t.Errorf("waiting after the second dispatch: %v, want narrow2 kept off wide's hosts", got)
	}
}
