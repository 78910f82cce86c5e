package recipes

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules/perf"
	"github.com/stretchr/testify/require"
)

// TestPerfOffloadMatrix measures a TCP stream from h1 to h2 in each cell
// of an offload matrix set on both ends' eth0 (gro x tso; under
// perf.profile=full gro x gso x tso x CPU pinning none/split), each cell a
// subtest ("TestPerfOffloadMatrix/gro=off,tso=on/tcp_stream"; go test -run
// 'TestPerfOffloadMatrix/gro=off' reruns those cells) whose offloads are
// undone when it ends: after the matrix the devices are as before it.
func TestPerfOffloadMatrix(t *testing.T) {
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	e1, e2 := h1.Iface("eth0"), h2.Iface("eth0")
	e1.AddIP(t, "198.18.13.1/24")
	e2.AddIP(t, "198.18.13.2/24")
	before := []map[string]bool{e1.Features(t), e2.Features(t)}

	prof := perf.CurrentProfile(time.Second, 1)
	devs := []*lnsttest.Device{e1, e2}
	axes := []lnsttest.Axis{lnsttest.Offloads(devs, "gro", "tso")}
	if prof.AllSubConfigs {
		axes = []lnsttest.Axis{lnsttest.Offloads(devs, "gro", "gso", "tso"), lnsttest.CPUPinning(lnsttest.PinNone, lnsttest.PinSplit)}
	}
	kernelName := map[string]string{"gro": "rx-gro", "gso": "tx-generic-segmentation", "tso": "tx-tcp-segmentation"}
	lnsttest.Matrix(t, axes, func(t *testing.T, c lnsttest.Cell) {
		got := e2.Features(t)
		for short, kernel := range kernelName {
			if want := c.Value(short); want != "" {
				require.Equal(t, want == "on", got[kernel], "%s (%s) in cell %s", short, kernel, c.Name)
			}
		}
		t.Run("tcp_stream", func(t *testing.T) {
			f := perf.Flow{Name: "tcp_stream", Client: h1, Server: h2, ServerAddr: "198.18.13.2", Duration: prof.Duration}
			res := perf.Measure(t, f.Pinned(t, c.Value("pin")), perf.Options{Iterations: prof.Iterations, Warmup: -1})
			perf.NonZero(t, perf.SubjectOf(res))
		})
	})
	require.Equal(t, before, []map[string]bool{e1.Features(t), e2.Features(t)}, "every cell's offloads undone")
}
