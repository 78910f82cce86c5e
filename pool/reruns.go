package pool

import (
	"maps"
	"slices"
	"strconv"
	"sync"
)

// Reruns keeps the books of a run that runs again the leases (recipes)
// whose provisioned machine died under them (Scheduler.Settle): which
// failed that way and why, which failed otherwise, and which attempt
// each one run again is. Running them again is the caller's (lnsttest
// reruns go tests through testing.M). Safe for concurrent use.
type Reruns struct {
	// Limit is how many times a recipe is run again at most.
	Limit int

	mu sync.Mutex
	// died maps a recipe that failed on a dead machine to why.
	died map[string]string
	// others are the recipes that failed for other reasons, or for good.
	others []string
	// attempt maps a recipe being run again to its attempt.
	attempt map[string]Attempt
}

// Attempt is one run of a recipe that is run again: N is 2 for the first
// rerun, Why says why it runs again.
type Attempt struct {
	N   int
	Why string
}

// attemptOf is the attempt of name that runs or ran last: 1 unless it is
// run again. Called with r.mu held.
func (r *Reruns) attemptOf(name string) int {
	if n := r.attempt[name].N; n != 0 {
		return n
	}
	return 1
}

// Died notes that the recipe called name failed because machines died
// under it (why), and returns the attempt that failed and whether
// another is left.
func (r *Reruns) Died(name, why string) (n int, again bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.died == nil {
		r.died = map[string]string{}
	}
	r.died[name] = why
	n = r.attemptOf(name)
	return n, n <= r.Limit
}

// Failed notes that the recipe called name failed; a failure Died noted
// is not counted again.
func (r *Reruns) Failed(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, died := r.died[name]; !died {
		r.others = append(r.others, name)
	}
}

// AttemptOf says which attempt of the recipe called name runs; false for
// a first run.
func (r *Reruns) AttemptOf(name string) (Attempt, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.attempt[name]
	return a, ok
}

// Rerun is a recipe to run again and why.
type Rerun struct {
	Name, Why string
}

// Next returns, sorted by name, the recipes that died under a machine
// since the last Next and have an attempt left (AttemptOf then gives the
// new attempt); those with none left failed for good.
func (r *Reruns) Next() []Rerun {
	r.mu.Lock()
	defer r.mu.Unlock()
	died := r.died
	r.died = nil
	var again []Rerun
	for _, name := range slices.Sorted(maps.Keys(died)) {
		n := r.attemptOf(name)
		if n > r.Limit {
			r.others = append(r.others, name) // failed for good
			continue
		}
		if r.attempt == nil {
			r.attempt = map[string]Attempt{}
		}
		r.attempt[name] = Attempt{N: n + 1, Why: "attempt " + strconv.Itoa(n) + ": " + died[name]}
		again = append(again, Rerun{Name: name, Why: died[name]})
	}
	return again
}

// FailedForGood reports whether a recipe failed for another reason than
// a dead machine, or had no attempt left.
func (r *Reruns) FailedForGood() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.others) > 0
}
