package pool

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testHostEntry = HostEntry{Name: "m2", Agent: "unix:///run/m2.sock", Comment: "added by hand-tool"}

// TestAppendHostNewFile: a new file is a bare list of hosts, and removing
// its only host leaves nothing.
func TestAppendHostNewFile(t *testing.T) {
	out, err := AppendHost("lab.yaml", nil, testHostEntry)
	require.NoError(t, err)
	assert.Equal(t, "hosts:\n  # added by hand-tool\n  - name: m2\n    agent: unix:///run/m2.sock\n", string(out))
	back, found, left, err := RemoveHost("lab.yaml", out, "m2", "added by")
	require.NoError(t, err)
	assert.True(t, found)
	assert.False(t, left)
	assert.Empty(t, string(back))
}

// TestRemoveHostComment: the comment above a host goes with it only when
// it is the one its writer names.
func TestRemoveHostComment(t *testing.T) {
	data := "hosts:\n  - name: m1\n    agent: unix:///run/m1.sock\n  # added by hand-tool\n  - name: m2\n    agent: unix:///run/m2.sock\n"
	out, found, left, err := RemoveHost("lab.yaml", []byte(data), "m2", "added by")
	require.NoError(t, err)
	assert.True(t, found)
	assert.True(t, left)
	assert.Equal(t, "hosts:\n  - name: m1\n    agent: unix:///run/m1.sock\n", string(out))

	out, _, _, err = RemoveHost("lab.yaml", []byte(data), "m2", "")
	require.NoError(t, err)
	assert.Equal(t, "hosts:\n  - name: m1\n    agent: unix:///run/m1.sock\n  # added by hand-tool\n", string(out))
}
