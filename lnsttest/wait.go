package lnsttest

import (
	"testing"
	"time"
)

// waitFirst and waitMost bound how long WaitFor sleeps between two checks:
// it starts at waitFirst and doubles up to waitMost.
const (
	waitFirst = 10 * time.Millisecond
	waitMost  = 250 * time.Millisecond
)

// WaitFor checks cond until it returns true and fails the test (and stops
// it) when it has not within timeout, naming what it waited for and for
// how long. cond runs on the test's own goroutine, so it may call
// methods that fail the test (h.Output, t.Fatal); it is checked at once,
// then at growing intervals (10ms to 250ms), and once more at the
// deadline.
//
//	lnsttest.WaitFor(t, "eth0 has carrier", 5*time.Second, func() bool {
//		return h.Output(t, "cat /sys/class/net/eth0/carrier") == "1\n"
//	})
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if err := waitFor(timeout, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitTimeout is the error of a wait that ran out of time.
type waitTimeout struct{ waited time.Duration }

func (e waitTimeout) Error() string {
	return "still not so after " + e.waited.Round(time.Millisecond).String()
}

// waitFor is WaitFor without the test: it returns a waitTimeout when
// cond has not held within timeout.
func waitFor(timeout time.Duration, cond func() bool) error {
	start := time.Now()
	deadline := start.Add(timeout)
	wait := waitFirst
	for {
		if cond() {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return waitTimeout{time.Since(start)}
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, waitMost)
	}
}
