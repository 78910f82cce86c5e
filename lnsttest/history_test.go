package lnsttest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHistory(t *testing.T) {
	saved := cfg
	defer func() { cfg = saved }()
	dir := t.TempDir()
	run := &results.Run{Schema: results.SchemaVersion, Start: time.Now(), End: time.Now(), Args: []string{}, Pool: "p.yaml", Hosts: []results.HostInfo{},
		Recipes: []results.Recipe{
			{Name: "TestA", Verdict: results.Pass, Start: time.Now(), Duration: results.Duration(3 * time.Second), Jobs: []results.Job{}, Records: []results.Record{}},
			{Name: "TestB/sub", Verdict: results.Fail, Start: time.Now(), Duration: results.Duration(time.Second), Jobs: []results.Job{}, Records: []results.Record{}},
		}}
	require.NoError(t, results.Write(dir, run))

	cfg = config{results: dir}
	assert.Equal(t, map[string]time.Duration{"TestA": 3 * time.Second, "TestB/sub": time.Second}, history(), "from -lnst.results")

	cfg = config{history: filepath.Join(dir, results.FileName), results: t.TempDir()}
	assert.Len(t, history(), 2, "-lnst.history wins")

	cfg = config{results: t.TempDir()}
	assert.Nil(t, history(), "no earlier run")

	bad := filepath.Join(t.TempDir(), "results.json")
	require.NoError(t, os.WriteFile(bad, []byte("{"), 0o644))
	cfg = config{history: bad}
	assert.Nil(t, history(), "an unreadable history only loses the ordering")
}
