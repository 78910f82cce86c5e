package lnsttest

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// reruns tracks, for -lnst.reruns, the recipes that failed because a
// provisioned machine died under them, and the other failures.
//
// A recipe is a Go test function, and only the testing package can call
// it: Main reruns it by running the tests again (testing.M.Run may be
// called more than once) with -test.run naming just that recipe. The
// first attempt's FAIL stays in the output, as it happened; the test
// binary exits 0 when every failure was a dead machine's and the reruns
// passed. A failure of a test that never used lnsttest is invisible to
// Main, so it cannot stop such an exit 0: keep plain tests out of recipe
// packages run with -lnst.reruns.
type reruns struct {
	mu sync.Mutex
	// died maps a recipe that failed on a dead machine to why.
	died map[string]string
	// others are the recipes that failed for other reasons.
	others []string
	// attempt maps a recipe being rerun to its attempt (2 is the first
	// rerun) and why it is rerun.
	attempt map[string]rerunOf
}

type rerunOf struct {
	n   int
	why string
}

// attemptOf is which attempt of the recipe called name runs or ran last:
// 1 unless it is being rerun. Called with r.mu held.
func (r *reruns) attemptOf(name string) int {
	if n := r.attempt[name].n; n != 0 {
		return n
	}
	return 1
}

// hostsDied notes, when a recipe ends, the machines that died under it:
// they were released (settle); the recipe's results and its RESULTS
// SUMMARY say so, and a failed recipe is rerun if -lnst.reruns allows.
func (s *session) hostsDied(t *testing.T, st *testState, dead []deadHost) {
	t.Helper()
	if len(dead) == 0 {
		return
	}
	var whys []string
	st.mu.Lock()
	for _, d := range dead {
		whys = append(whys, d.why)
		delete(st.clients, d.client) // nothing is left to restore there
	}
	st.mu.Unlock()
	why := strings.Join(whys, "; ")
	st.addRecord("lnst.host-died", why)
	if !t.Failed() {
		t.Logf("lnsttest: %s (after the recipe passed)", why)
		return
	}
	s.rr.mu.Lock()
	defer s.rr.mu.Unlock()
	if s.rr.died == nil {
		s.rr.died = map[string]string{}
	}
	s.rr.died[t.Name()] = why
	n := s.rr.attemptOf(t.Name())
	if n <= rerunLimit() {
		t.Logf("lnsttest: %s; the recipe runs again on another machine (attempt %d of %d, -lnst.reruns)", why, n+1, rerunLimit()+1)
	} else {
		t.Logf("lnsttest: %s; no rerun left (-lnst.reruns=%d)", why, rerunLimit())
	}
}

// recipeEnded notes how a recipe that used lnsttest ended, for reruns.
func (s *session) recipeEnded(t testing.TB) {
	if !t.Failed() {
		return
	}
	s.rr.mu.Lock()
	defer s.rr.mu.Unlock()
	if _, died := s.rr.died[t.Name()]; !died {
		s.rr.others = append(s.rr.others, t.Name())
	}
}

// recipeStarted records in a rerun recipe's results which attempt it is.
func (s *session) recipeStarted(st *testState) {
	s.rr.mu.Lock()
	a, ok := s.rr.attempt[st.t.Name()]
	s.rr.mu.Unlock()
	if ok {
		st.addRecord("lnst.rerun", fmt.Sprintf("attempt %d of %d: %s", a.n, rerunLimit()+1, a.why))
	}
}

// rerunLimit is -lnst.reruns.
func rerunLimit() int {
	n, _ := strconv.Atoi(cfg.reruns) // checked by loadConfig
	return n
}

// rerun runs again, up to -lnst.reruns times each, the recipes of the
// run just ended (code is m.Run's) that failed because their machine
// died, and returns the exit code of the whole: 0 if every failure was a
// dead machine's and its last rerun passed.
func (s *session) rerun(m *testing.M, code int) int {
	if code != 1 || rerunLimit() == 0 || s.pool == nil || !s.pool.sched.HasSlots() {
		return code
	}
	for {
		s.rr.mu.Lock()
		died := s.rr.died
		s.rr.died = nil
		s.rr.mu.Unlock()
		var again []string
		for _, name := range slices.Sorted(maps.Keys(died)) {
			s.rr.mu.Lock()
			n := s.rr.attemptOf(name)
			if n > rerunLimit() {
				s.rr.others = append(s.rr.others, name) // failed for good
				s.rr.mu.Unlock()
				continue
			}
			if s.rr.attempt == nil {
				s.rr.attempt = map[string]rerunOf{}
			}
			s.rr.attempt[name] = rerunOf{n: n + 1, why: "attempt " + strconv.Itoa(n) + ": " + died[name]}
			s.rr.mu.Unlock()
			again = append(again, name)
		}
		if len(again) == 0 {
			break
		}
		for _, name := range again {
			fmt.Fprintf(os.Stderr, "lnsttest: rerunning %s on another machine: %s\n", name, died[name])
			flag.Set("test.run", runPattern(name))
			flag.Set("test.count", "1")
			m.Run()
			s.waitIfInterrupted()
		}
	}
	s.rr.mu.Lock()
	defer s.rr.mu.Unlock()
	if len(s.rr.others) > 0 {
		return 1
	}
	return 0
}

// waitIfInterrupted never returns once SIGINT or SIGTERM came: the
// signal's handler restores everything, then ends the process by the
// signal, and the tests it cut short must not be judged meanwhile.
func (s *session) waitIfInterrupted() {
	select {
	case <-s.interrupted:
		select {}
	default:
	}
}

// runPattern is the -test.run pattern of exactly the test called name
// ("TestA/sub" gives "^TestA$/^sub$").
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
