package perf

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTQuantileMatchesTables(t *testing.T) {
	for _, c := range []struct {
		p    float64
		df   int
		want float64
	}{
		{0.975, 1, 12.7062},
		{0.975, 2, 4.3027},
		{0.975, 4, 2.7764},
		{0.975, 10, 2.2281},
		{0.975, 30, 2.0423},
		{0.975, 1000, 1.9623},
		{0.95, 3, 2.3534},
		{0.995, 5, 4.0321},
		{0.9995, 1, 636.6192},
		{0.5, 7, 0},
		{0.025, 4, -2.7764},
	} {
		assert.InDelta(t, c.want, TQuantile(c.p, c.df), 1e-3, "t(%v, df %d)", c.p, c.df)
	}
}

func TestCompute(t *testing.T) {
	s, err := Compute([]float64{2, 4, 4, 4, 5, 5, 7, 9}, 0.95)
	require.NoError(t, err)
	assert.Equal(t, 8, s.N)
	assert.InDelta(t, 5, s.Mean, 1e-12)
	assert.InDelta(t, 2.138090, s.StdDev, 1e-6) // sqrt(32/7)
	// t(0.975, 7) = 2.364624; half width 2.364624 * 2.138090 / sqrt(8)
	assert.InDelta(t, 3.212518, s.CILow, 1e-5)
	assert.InDelta(t, 6.787482, s.CIHigh, 1e-5)

	s, err = Compute([]float64{9.3e9, 9.4e9, 9.5e9}, 0.95)
	require.NoError(t, err)
	assert.InDelta(t, 9.4e9, s.Mean, 1)
	assert.InDelta(t, 0.1e9, s.StdDev, 1)
	assert.InDelta(t, 9.4e9-0.248414e9, s.CILow, 1e3) // 4.302653 * 0.1e9 / sqrt(3)
	assert.InDelta(t, 9.4e9+0.248414e9, s.CIHigh, 1e3)

	s, err = Compute([]float64{7}, 0.95)
	require.NoError(t, err)
	assert.Equal(t, Stats{N: 1, Mean: 7, CILow: 7, CIHigh: 7}, s, "one value: no spread")

	s, err = Compute([]float64{3, 3, 3}, 0.99)
	require.NoError(t, err)
	assert.Equal(t, Stats{N: 3, Mean: 3, CILow: 3, CIHigh: 3}, s)

	_, err = Compute(nil, 0.95)
	assert.Error(t, err)
	_, err = Compute([]float64{1, 2}, 1)
	assert.Error(t, err)
}

func TestSummarize(t *testing.T) {
	f := Flow{Name: "udp", UDP: true, Streams: 4}
	m, err := summarize(f, []float64{1}, []float64{10, 20, 30}, map[string][]float64{"h1": {10, 20, 60}}, 0.9)
	require.NoError(t, err)
	assert.Equal(t, "UDP", m.Protocol)
	assert.Equal(t, 4, m.Streams)
	assert.Equal(t, "bit/s", m.Unit)
	assert.Equal(t, []float64{1}, m.Warmup)
	assert.InDelta(t, 20, m.Mean, 1e-9)
	assert.InDelta(t, 10, m.StdDev, 1e-9)
	assert.InDelta(t, 20-2.919986*10/1.7320508, m.CILow, 1e-4) // t(0.95, 2)
	assert.InDelta(t, 30, m.CPU["h1"].Mean, 1e-9)
	assert.Equal(t, results.Duration(10*time.Second), m.Duration, "default iperf3 duration")
}
