package cpulist

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFormat(t *testing.T) {
	for in, want := range map[string][]int{
		"":          nil,
		"0":         {0},
		"0-3,8":     {0, 1, 2, 3, 8},
		"8,0-1,1":   {0, 1, 8},
		" 2 - 2 ":   nil, // spaces inside a range: refused below
		"63,64,100": {63, 64, 100},
	} {
		got, err := Parse(in)
		if in == " 2 - 2 " {
			assert.Error(t, err)
			continue
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	assert.Equal(t, "0-3,8", Format([]int{8, 3, 2, 1, 0, 2}))
	assert.Equal(t, "1,3,5-6", Format([]int{1, 3, 5, 6}))
	assert.Equal(t, "", Format(nil))
	for _, bad := range []string{"a", "3-1", "-1", "1-", "+1", "70000", "1,,2"} {
		_, err := Parse(bad)
		assert.Error(t, err, bad)
		if err != nil {
			assert.Contains(t, err.Error(), "CPU list")
		}
	}
}

func TestMask(t *testing.T) {
	assert.Equal(t, "0", Mask(nil))
	assert.Equal(t, "1", Mask([]int{0}))
	assert.Equal(t, "f", Mask([]int{0, 1, 2, 3}))
	assert.Equal(t, "1,00000000", Mask([]int{32}))
	assert.Equal(t, "80000000,00000001", Mask([]int{0, 63}))
	for _, m := range []string{"0", "1", "f", "1,00000000", "80000000,00000001", "00000000,00000003"} {
		cpus, err := ParseMask(m)
		require.NoError(t, err, m)
		again, _ := ParseMask(Mask(cpus))
		assert.Equal(t, cpus, again, m)
	}
	cpus, err := ParseMask("00000000,00000003")
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1}, cpus)
	_, err = ParseMask("xyz")
	assert.Error(t, err)
}
