package lnsttest

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fatalTB is a testing.TB whose Fatal records the message and ends the
// goroutine, as testing.T's does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// goid is the id of the calling goroutine, from its stack header.
func goid() int {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.Atoi(string(b[:bytes.IndexByte(b, ' ')]))
	return id
}

// onTest runs f on a goroutine of its own, as a test runs, and waits.
func onTest(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func TestWaitForChecksOnTheTestGoroutine(t *testing.T) {
	ft := &fatalTB{TB: t}
	var test int
	var calls []int
	onTest(func() {
		test = goid()
		WaitFor(ft, "the third check", time.Minute, func() bool {
			calls = append(calls, goid())
			return len(calls) == 3
		})
	})
	assert.Empty(t, ft.msg, "WaitFor must not fail once cond holds")
	require.Len(t, calls, 3, "cond is checked until it holds, and no more")
	for _, id := range calls {
		assert.Equal(t, test, id, "cond runs on the goroutine that called WaitFor")
	}
}

func TestWaitForFailsNamingWhatAndHowLong(t *testing.T) {
	ft := &fatalTB{TB: t}
	returned := false
	checks := 0
	onTest(func() {
		WaitFor(ft, "eth0 has carrier", 30*time.Millisecond, func() bool { checks++; return false })
		returned = true
	})
	assert.False(t, returned, "WaitFor stops the test when the wait runs out")
	assert.Regexp(t, `^waiting for eth0 has carrier: still not so after [0-9.]+ms$`, ft.msg)
	assert.Greater(t, checks, 1, "cond is checked more than once, and at the deadline")
}

func TestWaitForStopsWhenCondFails(t *testing.T) {
	ft := &fatalTB{TB: t}
	checks := 0
	onTest(func() {
		WaitFor(ft, "never", time.Minute, func() bool {
			checks++
			ft.Fatalf("the host is gone")
			return false
		})
	})
	assert.Equal(t, "the host is gone", ft.msg, "a cond that fails the test ends the wait at once")
	assert.Equal(t, 1, checks)
}
