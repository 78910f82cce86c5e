package lnsttest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func init() {
	// unit-wait returns once the file its arguments name exists (at
	// most a minute).
	RegisterModule("unit-wait", func(ctx context.Context, raw json.RawMessage) (any, error) {
		var path string
		if err := json.Unmarshal(raw, &path); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		for ctx.Err() == nil {
			if _, err := os.Stat(path); err == nil {
				return "poked", nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil, ctx.Err()
	})
}

// TestRunModuleIsLive: while a module runs it is one of its recipe's
// running jobs, with the id its agent gave it (what lnst status shows),
// and it is not once it has ended.
func TestRunModuleIsLive(t *testing.T) {
	if os.Geteuid() != 0 && cfg.lab != "rootless" {
		t.Skip("the local lab requires root (or -lnst.lab=rootless)")
	}
	h := Require(t, HostReq("h1")).Host("h1")
	poke := filepath.Join(t.TempDir(), "poke")
	require.NoError(t, os.Chmod(filepath.Dir(poke), 0o755))
	s := h.s
	seen := make(chan runningSeen, 1)
	go func() {
		defer os.WriteFile(poke, nil, 0o644)
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			for _, r := range s.running(context.Background(), false) {
				for _, j := range r.Jobs {
					if j.Desc == "module unit-wait" && j.ID != 0 {
						seen <- runningSeen{Recipe: r.Name, Host: j.Host, ID: j.ID}
						return
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(seen)
	}()
	var out string
	j := h.RunModule(t, "unit-wait", poke, &out)
	assert.Equal(t, "poked", out)
	got, ok := <-seen
	require.True(t, ok, "the module never showed as a running job with an id")
	assert.Equal(t, runningSeen{Recipe: t.Name(), Host: "h1", ID: j.ID()}, got)
	for _, r := range s.running(context.Background(), false) {
		if r.Name == t.Name() {
			assert.Empty(t, r.Jobs, "the ended module is no running job")
		}
	}
}

// runningSeen is what TestRunModuleIsLive saw of the running module.
type runningSeen struct {
	Recipe, Host string
	ID           int
}
