package lnsttest

import (
	"errors"
	"runtime"
	"sync"
)

// snapParallel is how many clean-check snapshots run at once: each is a
// shell running a dozen short commands, CPU-bound, so more than the
// machine's CPUs (and at least two, to overlap the round trips) gains
// nothing. One after another they were most of a large lab's first
// Require (200 hosts: ~20 ms each).
func snapParallel() int { return max(2, runtime.NumCPU()) }

// snapEach calls f for every host (topology name to agent id), at most
// snapParallel at once, and returns their errors.
func snapEach(hosts map[string]string, f func(name, id string) error) error {
	sem := make(chan struct{}, snapParallel())
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for name, id := range hosts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(name, id); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
