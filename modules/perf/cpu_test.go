package perf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const procStat1 = `cpu  100 0 50 800 50 0 0 0 0 0
cpu0 50 0 25 400 25 0 0 0 0 0
intr 12345
`

const procStat2 = `cpu  250 0 100 900 50 0 0 0 30 0
cpu0 125 0 50 450 25 0 0 0 0 0
`

func TestParseProcStat(t *testing.T) {
	a, err := parseProcStat(procStat1)
	require.NoError(t, err)
	assert.Equal(t, cpuTimes{idle: 850, total: 1000}, a)
	b, err := parseProcStat(procStat2)
	require.NoError(t, err)
	assert.Equal(t, cpuTimes{idle: 950, total: 1300}, b, "guest time is in user already")

	// 300 jiffies passed, 100 of them idle.
	assert.InDelta(t, 66.667, utilisation(a, b), 1e-3)
	assert.Zero(t, utilisation(b, b))
	assert.Equal(t, 100.0, utilisation(cpuTimes{idle: 10, total: 10}, cpuTimes{idle: 5, total: 20}), "iowait going backwards")

	for _, bad := range []string{"", "intr 1\n", "cpu 1 2\n", "cpu 1 2 x 4 5\n"} {
		_, err := parseProcStat(bad)
		assert.Error(t, err, "%q", bad)
	}
}
