package lnsttest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMatrixCells: the cells are the product of the axes, the first
// varying slowest, named by their settings joined with ',', carrying
// their settings' values; bad axes are refused naming the fault.
func TestMatrixCells(t *testing.T) {
	cells, err := cellsOf([]Axis{
		Offloads(nil, "gro", "tso"),
		MTUs(nil, 1500, 9000),
		CPUPinning(PinNone, PinSplit),
	})
	require.NoError(t, err)
	var names []string
	for _, c := range cells {
		names = append(names, c.name)
		assert.Len(t, c.settings, 3)
	}
	require.Len(t, names, 16)
	assert.Equal(t, []string{
		"gro=off,tso=off,mtu=1500,pin=none",
		"gro=off,tso=off,mtu=1500,pin=split",
		"gro=off,tso=off,mtu=9000,pin=none",
	}, names[:3])
	assert.Equal(t, "gro=on,tso=on,mtu=9000,pin=split", names[15])
	assert.Equal(t, "split", cells[15].values["pin"])
	assert.Equal(t, "none", cells[0].values["pin"])
	assert.Equal(t, map[string]string{"gro": "on", "tso": "off", "mtu": "1500", "pin": "none"}, cells[8].values)

	assert.Equal(t, "ring=rx:512:tx:256", Rings(nil, map[string]uint32{"tx": 256, "rx": 512})[0].Name)
	assert.Equal(t, "coalesce=rx-usecs:0", Coalescing(nil, map[string]uint32{"rx-usecs": 0})[0].Name)
	assert.Equal(t, "gro=on,tso=off", OffloadSet(nil, map[string]bool{"tso": false, "gro": true}, "").Name)

	_, err = cellsOf([]Axis{MTUs(nil)})
	assert.ErrorContains(t, err, "axis 1 has no setting")
	_, err = cellsOf([]Axis{MTUs(nil, 1500), {{Name: "a/b"}}})
	assert.ErrorContains(t, err, `axis 2: setting name "a/b"`)
	_, err = cellsOf([]Axis{MTUs(nil, 1500, 1500)})
	assert.ErrorContains(t, err, `setting "mtu=1500" twice`)
}
