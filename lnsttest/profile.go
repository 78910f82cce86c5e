package lnsttest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/lnst-go/lnst/results"
)

// profileRun is -lnst.profile.run compiled by loadConfig.
var profileRun *regexp.Regexp

// checkProfileFlags checks -lnst.profile and -lnst.profile.run; source
// names where a flag's value came from.
func checkProfileFlags(source func(string) string) error {
	switch cfg.profile {
	case "", "off":
	case "perf":
		if cfg.results == "" {
			return fmt.Errorf("%s: %q keeps perf.data files in the results directory: give -lnst.results DIR too", source("lnst.profile"), cfg.profile)
		}
	default:
		return fmt.Errorf("%s: unknown profiler %q (want off or perf)", source("lnst.profile"), cfg.profile)
	}
	re, err := regexp.Compile(cfg.profRun)
	if err != nil {
		return fmt.Errorf("%s: %q is not a regular expression: %v", source("lnst.profile.run"), cfg.profRun, err)
	}
	profileRun = re
	return nil
}

// ProfileTool is the profiler -lnst.profile asks to run over t's
// measured windows: "perf" when -lnst.profile=perf and
// -lnst.profile.run matches t's full name (a subtest's too, as
// "TestBond/ipv4"), "" otherwise. modules/perf's MeasureFlows asks it.
func ProfileTool(t testing.TB) string {
	if cfg.profile != "perf" || profileRun == nil || !profileRun.MatchString(t.Name()) {
		return ""
	}
	return cfg.profile
}

// ResultPath is where a file named name of t goes in the -lnst.results
// directory: its path, and its path relative to that directory as
// results.json lists it (the test's directory, the file prefixed with
// the run's id like job outputs). The directory is made. ok is false
// without -lnst.results or when the directory cannot be made (the test
// is failed then).
func ResultPath(t testing.TB, name string) (path, rel string, ok bool) {
	t.Helper()
	if cfg.results == "" {
		return "", "", false
	}
	rel = resultRel(t.Name(), name)
	path = filepath.Join(cfg.results, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Errorf("lnsttest: -lnst.results: %v", err)
		return "", "", false
	}
	return path, rel, true
}

// AddProfile lists p under the recipe's profiles in results.json.
func AddProfile(t testing.TB, p results.Profile) {
	t.Helper()
	s := current()
	if s == nil {
		t.Fatal("lnsttest.AddProfile: the test binary was not started by lnsttest.Main")
	}
	st := s.state(t)
	st.mu.Lock()
	st.profiles = append(st.profiles, p)
	st.mu.Unlock()
}
