package lnsttest_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func init() {
	// e2e-until-stopped runs until asked to stop, then says so.
	lnsttest.RegisterModule("e2e-until-stopped", func(ctx context.Context, raw json.RawMessage) (any, error) {
		var a struct{ Echo, Ready string }
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		if err := os.WriteFile(a.Ready, nil, 0o600); err != nil {
			return nil, err
		}
		<-ctx.Done()
		return map[string]string{"echo": a.Echo, "why": context.Cause(ctx).Error()}, nil
	})
}

// TestE2EStartModule starts modules in the background on a lab host: one
// that runs until stopped returns its result after SIGTERM; one that fails
// gives its error through ModuleResult.
func TestE2EStartModule(t *testing.T) {
	m := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))))
	h := m.Host("h1")

	// The module says when it runs (lab hosts share this filesystem):
	// a SIGTERM before then would end the process before module mode
	// catches it.
	ready := filepath.Join(t.TempDir(), "ready")
	j := h.StartModule(t, "e2e-until-stopped", map[string]string{"Echo": "bg", "Ready": ready})
	lnsttest.WaitFor(t, "the module to run", 10*time.Second, func() bool {
		_, err := os.Stat(ready)
		return err == nil
	})
	assert.ErrorContains(t, lnsttest.ModuleResult(j, nil), "still runs")
	j.Kill(t, syscall.SIGTERM)
	<-j.Done()
	var got map[string]string
	require.NoError(t, lnsttest.ModuleResult(j, &got))
	assert.Equal(t, "bg", got["echo"], "the arguments reached the module")
	assert.Contains(t, got["why"], "terminated", "SIGTERM cancels the module's context")

	f := h.StartModule(t, "e2e-fail", nil)
	<-f.Done()
	err := lnsttest.ModuleResult(f, nil)
	assert.ErrorContains(t, err, "no carrier on eth0")
	assert.ErrorContains(t, err, "h1: job ")
}
