package lnsttest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/pool"
)

// Destructive declares that the recipe does to its hosts what their agents
// cannot undo: "reboot" (Host.Reboot), "kernel" (Host.InstallKernel, with
// the reboots it takes) or "reset" (Host.HardReset). Call it before
// Require: on a pool, the recipe then runs only on machines whose pool
// entry allows every kind it declared (allow: [reboot, kernel, reset]),
// and skips, naming the missing permission and the pool host, on others,
// before anything is done there. Called after Require, it checks the
// hosts the recipe already holds. The local lab, the rootless lab and the
// VM lab allow every kind: their hosts are made for the run. A subtest
// inherits its parent's declaration (ForEachMatch).
//
// Reboot, InstallKernel and HardReset check the permission themselves
// too, so a pool machine that does not allow a kind never has it done to
// it, declared or not; declaring it skips the recipe before it starts
// rather than halfway.
func Destructive(t testing.TB, kinds ...string) {
	t.Helper()
	s := current()
	if s == nil {
		t.Fatal("lnsttest.Destructive: the test binary was not started by lnsttest.Main: add func TestMain(m *testing.M) { lnsttest.Main(m) }")
		return
	}
	if len(kinds) == 0 {
		t.Fatalf("lnsttest.Destructive: name what the recipe does: %s", strings.Join(pool.DestructiveKinds, ", "))
	}
	for _, k := range kinds {
		if err := pool.CheckDestructive(k); err != nil {
			t.Fatalf("lnsttest.Destructive: %v", err)
		}
	}
	name := t.Name()
	s.mu.Lock()
	if s.destructive == nil {
		s.destructive = map[string][]string{}
	}
	s.destructive[name] = append(s.destructive[name], kinds...)
	st := s.states[t]
	s.mu.Unlock()
	t.Cleanup(func() {
		s.mu.Lock()
		delete(s.destructive, name)
		s.mu.Unlock()
	})
	if st != nil && s.pool != nil {
		st.mu.Lock()
		hosts := st.poolHosts
		st.mu.Unlock()
		if reason := destructiveDenied(kinds, hosts, s.pool.p.Path); reason != "" {
			t.Skipf("lnsttest.Destructive: %s", reason)
		}
	}
}

// declared is what the test called name, or a test it is a subtest of,
// declared with Destructive.
func (s *session) declared(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var kinds []string
	for {
		kinds = append(kinds, s.destructive[name]...)
		i := strings.LastIndex(name, "/")
		if i < 0 {
			return kinds
		}
		name = name[:i]
	}
}

// destructiveDenied says why a recipe doing kinds may not run on hosts
// (pool hosts of the pool file called file), "" if every host allows
// every kind.
func destructiveDenied(kinds []string, hosts []*pool.Host, file string) string {
	for _, h := range hosts {
		for _, k := range kinds {
			if !h.Allows(k) {
				return fmt.Sprintf("the recipe is destructive (%s), and %s does not allow %s: add %q to its entry to run it there", strings.Join(kinds, ", "), h.Where(file), k, "allow: ["+k+"]")
			}
		}
	}
	return ""
}

// checkAllowed skips the test if h is a pool host whose entry does not
// allow kind. Lab hosts allow every kind.
func (h *Host) checkAllowed(t testing.TB, kind, call string) {
	t.Helper()
	sp := h.s.pool
	if sp == nil {
		return
	}
	name, _ := h.poolConn()
	ph := sp.host(name)
	if ph == nil {
		t.Fatalf("%s: %s: no pool host answers through this handle", h.name, call)
	}
	if !ph.Allows(kind) {
		t.Skipf("%s: %s is destructive (%s), and %s does not allow it: add %q to its entry to run it there", h.name, call, kind, ph.Where(sp.p.Path), "allow: ["+kind+"]")
	}
}
