package lnsttest_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cleanupRecorder is a testing.TB for a recipe whose cleanup is to fail:
// its cleanups are run by the test, and its failures recorded without
// failing the test. Fatal ends the goroutine, as testing.T's does.
type cleanupRecorder struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	failures []string
}

func (r *cleanupRecorder) Helper()      {}
func (r *cleanupRecorder) Failed() bool { return false }

func (r *cleanupRecorder) Cleanup(f func()) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, f)
	r.mu.Unlock()
}

func (r *cleanupRecorder) record(msg string) {
	r.mu.Lock()
	r.failures = append(r.failures, msg)
	r.mu.Unlock()
}

func (r *cleanupRecorder) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }
func (r *cleanupRecorder) Error(args ...any)                 { r.record(fmt.Sprint(args...)) }
func (r *cleanupRecorder) Fatalf(format string, args ...any) {
	r.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *cleanupRecorder) Fatal(args ...any) { r.record(fmt.Sprint(args...)); runtime.Goexit() }

// recorded runs f as a recipe on a cleanupRecorder, then its cleanups,
// newest first, each on a goroutine of its own, as testing does; it
// returns what failed, in order.
func recorded(t *testing.T, f func(t testing.TB)) []string {
	r := &cleanupRecorder{TB: t}
	onGoroutine := func(f func()) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			f()
		}()
		<-done
	}
	onGoroutine(func() { f(r) })
	for {
		r.mu.Lock()
		n := len(r.cleanups)
		if n == 0 {
			r.mu.Unlock()
			break
		}
		c := r.cleanups[n-1]
		r.cleanups = r.cleanups[:n-1]
		r.mu.Unlock()
		onGoroutine(c)
	}
	return r.failures
}

// TestE2EUndoCommand: a job's Undo command runs at its test's cleanup, in
// the job's host, in reverse order with the test's other undos; also when
// the job failed, and for a background job (after it is killed); not for a
// job that could not start. An undo that fails fails the test at cleanup
// naming the host, the command, its exit code and output.
func TestE2EUndoCommand(t *testing.T) {
	m := lnsttest.Require(t, lnsttest.HostReq("h1"))
	h := m.Host("h1")
	dir := h.TempDir(t)
	log := dir + "/log"
	links := func() string { return h.Output(t, "ip -o link show", lnsttest.Quiet()) }
	require.NotContains(t, links(), "undobr", "the lab host starts without the test's devices")

	t.Run("at cleanup", func(t *testing.T) {
		br := h.Create(t, devices.Bridge{Name: "undobr0"})
		// The undo takes the port out of the bridge the agent made: it
		// must run before the bridge's undo, which is older.
		h.Run(t, "ip link add undov0 type veth peer name undov1 && ip link set undov0 master "+br.Name(),
			lnsttest.Undo("echo port-out-of-$(cat /sys/class/net/undov0/master/ifindex >/dev/null && echo bridge) >> "+log+" && ip link del undov0"))
		h.Run(t, "ip link add undobr1 type bridge", lnsttest.Undo("ip link del undobr1 && echo undobr1 >> "+log))
		h.Start(t, "ip link add undobr2 type bridge && echo started >> "+log+" && exec sleep 600",
			lnsttest.Undo("echo undobr2 >> "+log+" && ip link del undobr2"))
		lnsttest.WaitFor(t, "the background job's bridge", 10*time.Second, func() bool {
			return strings.Contains(h.Output(t, "cat "+log+" 2>/dev/null || true", lnsttest.Quiet()), "started")
		})
		for _, l := range []string{"undov0", "undobr0", "undobr1", "undobr2"} {
			require.Contains(t, links(), l+":")
		}
	})
	assert.NotContains(t, links(), "undo", "every device the Undo commands and the agent took back")
	assert.Equal(t, "started\nundobr2\nundobr1\nport-out-of-bridge\n", h.Output(t, "cat "+log), "newest first, interleaved with the agent's own undos")

	h.Run(t, "rm -f "+log, lnsttest.Quiet())
	failures := recorded(t, func(t testing.TB) {
		h.RunArgv(t, []string{"no-such-command-lnst"}, lnsttest.Undo("echo not-started >> "+log), lnsttest.ExitCodes(127))
		h.Run(t, "echo fine >> "+log, lnsttest.Undo("echo broken-undo >&2; exit 4"))
		h.Run(t, "ip link add undobr3 type bridge; exit 3", lnsttest.Undo("ip link del undobr3 && echo undobr3 >> "+log))
	})
	require.Len(t, failures, 2, "%q", failures)
	assert.Contains(t, failures[0], "exit code 3", "the job failed")
	assert.Regexp(t, `^restore Undo "echo broken-undo >&2; exit 4" of job \d+ on h1: run undo command "echo broken-undo >&2; exit 4" on host "[^"]*": exit code 4; stderr: "broken-undo\\n"$`, failures[1])
	assert.NotContains(t, links(), "undobr3", "the failed job's Undo ran")
	assert.Equal(t, "fine\nundobr3\n", h.Output(t, "cat "+log), "the Undo of a job that could not start did not run")
}

// TestE2EUndoArgv: an UndoArgv runs at cleanup as given, with no shell:
// a file whose name a shell would split at its blank and semicolon is
// removed by it.
func TestE2EUndoArgv(t *testing.T) {
	m := lnsttest.Require(t, lnsttest.HostReq("h1"))
	h := m.Host("h1")
	dir := h.TempDir(t)
	name := dir + "/a b;$(true)"
	t.Run("at cleanup", func(t *testing.T) {
		h.RunArgv(t, []string{"touch", name}, lnsttest.UndoArgv("rm", name))
		require.Equal(t, "yes\n", h.OutputArgv(t, []string{"sh", "-c", `test -e "$1" && echo yes`, "sh", name}))
	})
	assert.Equal(t, "gone\n", h.OutputArgv(t, []string{"sh", "-c", `test -e "$1" || echo gone`, "sh", name}), "the undo removed the file")
}
