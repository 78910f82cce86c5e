package lnsttest

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Reruns (-lnst.reruns): the books are pool.Reruns, kept in session.rr.
// A recipe is a Go test function, and only the testing package can call
// it: Main reruns it by running the tests again (testing.M.Run may be
// called more than once) with -test.run naming just that recipe. The
// first attempt's FAIL stays in the output, as it happened; the test
// binary exits 0 when every failure was a dead machine's and the reruns
// passed. A failure of a test that never used lnsttest is invisible to
// Main, so it cannot stop such an exit 0: keep plain tests out of recipe
// packages run with -lnst.reruns.

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
	if n, again := s.rr.Died(t.Name(), why); again {
		t.Logf("lnsttest: %s; the recipe runs again on another machine (attempt %d of %d, -lnst.reruns)", why, n+1, rerunLimit()+1)
	} else {
		t.Logf("lnsttest: %s; no rerun left (-lnst.reruns=%d)", why, rerunLimit())
	}
}

// recipeEnded notes how a recipe that used lnsttest ended, for reruns.
func (s *session) recipeEnded(t testing.TB) {
	if t.Failed() {
		s.rr.Failed(t.Name())
	}
}

// recipeStarted records in a rerun recipe's results which attempt it is.
func (s *session) recipeStarted(st *testState) {
	if a, ok := s.rr.AttemptOf(st.t.Name()); ok {
		st.addRecord("lnst.rerun", fmt.Sprintf("attempt %d of %d: %s", a.N, rerunLimit()+1, a.Why))
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
		again := s.rr.Next()
		if len(again) == 0 {
			break
		}
		for _, r := range again {
			fmt.Fprintf(os.Stderr, "lnsttest: rerunning %s on another machine: %s\n", r.Name, r.Why)
			flag.Set("test.run", runPattern(r.Name))
			flag.Set("test.count", "1")
			m.Run()
			s.waitIfInterrupted()
		}
	}
	if s.rr.FailedForGood() {
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
