package lnsttest

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/kernlog"
	"github.com/lnst-go/lnst/results"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The kernel log of a recipe's hosts: when Require gives the hosts, each
// of their agents (one per machine: the namespace lab's hosts share one)
// is asked where its machine's kernel log ends; when the recipe's changes
// are restored, for every record after that. A splat there (see package
// internal/kernlog) fails the recipe, unless AllowKernelLog allows it.

var (
	allowMu sync.Mutex
	// allowedLogs are the AllowKernelLog regexps by test name.
	allowedLogs = map[string][]*regexp.Regexp{}
)

// AllowKernelLog lets a kernel splat (a WARNING, BUG, Oops, lockdep
// splat... logged by a kernel of the test's hosts while it runs) one of
// whose lines matches the regular expression re pass: it is logged and
// kept in results.json instead of failing the test. It applies to t's
// hosts, and to those of t's subtests and of the test t is a subtest of.
// For a recipe that provokes a kernel warning on purpose. An invalid
// regexp fails the test, naming it.
func AllowKernelLog(t testing.TB, re string) {
	t.Helper()
	rx, err := regexp.Compile(re)
	if err != nil {
		t.Fatalf("lnsttest.AllowKernelLog: invalid regexp %q: %v", re, err)
	}
	allowMu.Lock()
	allowedLogs[t.Name()] = append(allowedLogs[t.Name()], rx)
	allowMu.Unlock()
}

// kernelLogAllowed returns the regexp AllowKernelLog gave test name (or
// a test it is a subtest of, or one of its subtests) that matches a line
// of the splat, nil if none.
func kernelLogAllowed(name string, lines []string) *regexp.Regexp {
	allowMu.Lock()
	defer allowMu.Unlock()
	for test, rxs := range allowedLogs {
		if test != name && !strings.HasPrefix(name, test+"/") && !strings.HasPrefix(test, name+"/") {
			continue
		}
		for _, rx := range rxs {
			for _, l := range lines {
				if rx.MatchString(l) {
					return rx
				}
			}
		}
	}
	return nil
}

// kmsgWatch is the kernel log of one machine of a recipe.
type kmsgWatch struct {
	// hosts are the recipe's hosts on the machine; shared is true when
	// they share its kernel with whatever else runs there (the namespace
	// lab).
	hosts  []string
	shared bool
	cursor *pb.KmsgCursorReply
}

// kmsgErr says why a kernel log could not be read.
func kmsgErr(err error) string {
	if status.Code(err) == codes.Unimplemented {
		return "the agent is too old to follow the kernel log"
	}
	return err.Error()
}

// splats returns the splats in the kernel log records r read from the
// cursor on, each marked allowed or not.
func (w *kmsgWatch) splats(st *testState, r *pb.KmsgReadReply) []results.KernelSplat {
	if r.Restarted {
		st.logger().Warn("kernel log: the agent restarted during the recipe; records from before are lost", "hosts", strings.Join(w.hosts, ","))
	}
	if r.Lost > 0 {
		st.logger().Warn("kernel log: records lost (the kernel's buffer overflowed)", "hosts", strings.Join(w.hosts, ","), "lost", r.Lost)
	}
	recs := make([]kernlog.Record, 0, len(r.Records))
	for _, rec := range r.Records {
		// A line a process wrote into /dev/kmsg is no kernel splat,
		// unless -lnst.kernel-log=all (a test injecting one).
		if rec.Facility != 0 && cfg.kernelLog != "all" {
			continue
		}
		recs = append(recs, kernlog.Record{Seq: rec.Seq, Level: int(rec.Level), Facility: int(rec.Facility), Micros: rec.Micros, Text: rec.Text})
	}
	var out []results.KernelSplat
	for _, sp := range kernlog.Find(recs) {
		at := time.Unix(0, r.WallUnixNano-(r.MicrosNow-sp.Micros)*1000)
		out = append(out, results.KernelSplat{
			Hosts: w.hosts, Kind: sp.Kind, Time: at, Lines: sp.Lines,
			Allowed: kernelLogAllowed(st.t.Name(), sp.Lines) != nil, SharedKernel: w.shared,
		})
	}
	return out
}

// reportSplat fails t with a splat, or logs an allowed one.
func reportSplat(t testing.TB, sp results.KernelSplat) {
	t.Helper()
	where := "the kernel of " + strings.Join(sp.Hosts, ", ")
	if sp.SharedKernel {
		where = "this machine's kernel, which the namespace lab's hosts (" + strings.Join(sp.Hosts, ", ") + ") share: it is the recipe's by its time window only, another recipe or process may have caused it"
	}
	text := strings.Join(sp.Lines, "\n    ")
	if sp.Allowed {
		t.Logf("kernel log: %s in %s during the recipe, allowed by lnsttest.AllowKernelLog:\n    %s", sp.Kind, where, text)
		return
	}
	t.Errorf("kernel log: %s in %s during the recipe (lnsttest.AllowKernelLog allows one on purpose):\n    %s", sp.Kind, where, text)
}

// parallel runs f(0) ... f(n-1) at once and waits for them.
func parallel(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}
