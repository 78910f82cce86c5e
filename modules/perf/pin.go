package perf

import (
	"strconv"
	"testing"

	"github.com/lnst-go/lnst/lnsttest"
)

// Pinned returns f with its ends pinned to CPUs by a CPU pinning policy
// (a lnsttest.CPUPinning cell's Value("pin")): lnsttest.PinNone or ""
// leaves them free, PinSame puts both on CPU 0, PinSplit the client on
// CPU 0 and the server on the last CPU of its host (CPU 0 when it has
// one). An unknown policy fails the test.
func (f Flow) Pinned(t testing.TB, policy string) Flow {
	t.Helper()
	switch policy {
	case "", lnsttest.PinNone:
		f.ClientCPU, f.ServerCPU = "", ""
	case lnsttest.PinSame:
		f.ClientCPU, f.ServerCPU = "0", "0"
	case lnsttest.PinSplit:
		f.ClientCPU, f.ServerCPU = "0", strconv.Itoa(max(f.Server.NumCPU(t)-1, 0))
	default:
		t.Fatalf("perf flow %q: unknown CPU pinning policy %q (want %s, %s or %s)", f.Name, policy,
			lnsttest.PinNone, lnsttest.PinSame, lnsttest.PinSplit)
	}
	return f
}
