package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCountStarts counts the agents started on a journal.
func TestCountStarts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "journal.starts")
	for want := range 3 {
		n, err := countStarts(p)
		require.NoError(t, err)
		require.Equal(t, want, n)
	}
	// What a reset in the middle of an unsynced write could leave: the
	// count goes on from a number above any earlier one, with the error.
	require.NoError(t, os.WriteFile(p, nil, 0o600))
	n, err := countStarts(p)
	require.ErrorContains(t, err, "start count "+p)
	require.GreaterOrEqual(t, n, 1000)
	next, err := countStarts(p)
	require.NoError(t, err)
	require.Equal(t, n+1, next)
	_, err = os.Stat(p + ".tmp")
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestJobIDsAcrossStarts starts an agent twice on one journal, as a pool
// machine's agent starts again after a reboot: the second numbers its
// jobs on from 100001, so no results file of the first is taken.
func TestJobIDsAcrossStarts(t *testing.T) {
	path := testJournalPath(t)
	ids := make([]int64, 0, 4)
	for range 2 {
		srv, c := testServerOpts(t, Options{JournalPath: path})
		for range 2 {
			ids = append(ids, testRun(t, c, "", "true").Id)
		}
		require.Empty(t, srv.Shutdown())
	}
	require.Equal(t, []int64{1, 2, jobsPerStart + 1, jobsPerStart + 2}, ids)
	b, err := os.ReadFile(startsFile(path))
	require.NoError(t, err)
	require.Equal(t, "2\n", string(b))
}
