package results

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStudentTCDF against closed forms (df 1: Cauchy, df 2) and
// published critical values.
func TestStudentTCDF(t *testing.T) {
	for _, c := range []struct{ t, df, want float64 }{
		{0, 3, 0.5},
		{1, 1, 0.75},                     // 1/2 + atan(1)/pi
		{-1, 1, 0.25},                    // symmetric
		{2, 2, 0.5 + 2/(2*math.Sqrt(6))}, // 1/2 + t/(2 sqrt(2+t²))
		{2.015048, 5, 0.95},              // t(0.95, 5)
		{2.228139, 10, 0.975},            // t(0.975, 10)
		{4.302653, 2, 0.975},             // t(0.975, 2)
		{2.042272, 30, 0.975},            // t(0.975, 30)
		{3.169273, 10, 0.995},            // t(0.995, 10)
		{1.959964, 1e7, 0.975},           // the normal distribution
		{2.570582, 5, 0.975},             // t(0.975, 5)
		{math.Inf(1), 4, 1},
	} {
		assert.InDelta(t, c.want, StudentTCDF(c.t, c.df), 2e-6, "t=%v df=%v", c.t, c.df)
	}
	assert.InDelta(t, 0.5, RegIncBeta(0.5, 2, 2), 1e-12, "I_0.5(a, a) = 1/2")
	assert.InDelta(t, 1-math.Pow(0.7, 3), RegIncBeta(0.3, 1, 3), 1e-12, "I_x(1, b) = 1 - (1-x)^b")
}

// TestWelchTTest against Wikipedia's worked examples of Welch's t-test
// (A1/A2: t = -2.46, df = 24.99, p = 0.021; A1/A3 with unequal sizes and
// variances: t = -1.57, df = 9.9, p = 0.149).
func TestWelchTTest(t *testing.T) {
	a1 := []float64{27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4}
	a2 := []float64{27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4}
	a3 := []float64{17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8}
	a4 := []float64{21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8, 20.7, 21.7, 21.5, 22.5, 23.6, 21.5, 22.5, 23.5, 21.5, 21.8}
	r, err := WelchTTest(a1, a2)
	require.NoError(t, err)
	assert.InDelta(t, 2.46, r.T, 0.005, "b - a")
	assert.InDelta(t, 24.99, r.DF, 0.005, "Wikipedia truncates it to 24.9")
	assert.InDelta(t, 0.021, r.P, 0.0005)
	r, err = WelchTTest(a3, a4)
	require.NoError(t, err)
	assert.InDelta(t, 1.57, math.Abs(r.T), 0.005)
	assert.InDelta(t, 9.9, r.DF, 0.05)
	assert.InDelta(t, 0.149, r.P, 0.0005)

	r, err = WelchTTest([]float64{1, 1}, []float64{1, 1})
	require.NoError(t, err)
	assert.Equal(t, 1.0, r.P)
	r, err = WelchTTest([]float64{1, 1}, []float64{2, 2})
	require.NoError(t, err)
	assert.Equal(t, 0.0, r.P)
	_, err = WelchTTest([]float64{1}, []float64{1, 2})
	assert.ErrorContains(t, err, "at least 2")
}
