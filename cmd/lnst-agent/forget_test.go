package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUninstallForget removes a machine that cannot be reached (nothing
// listens at its address) from the pool file and its certificate from the
// certificates directory, leaving the other host and the shared files.
func TestUninstallForget(t *testing.T) {
	dir := t.TempDir()
	poolFile, certs := filepath.Join(dir, "lab.yaml"), filepath.Join(dir, "certs")
	const m1 = "hosts:\n  - name: m1\n    agent: unix:///run/m1.sock\n"
	require.NoError(t, os.WriteFile(poolFile, []byte(m1+
		"  # lnst-agent install root@198.18.0.12\n  - name: m2\n    agent: 198.18.0.12:7000\n"+
		"    tls: {ca: certs/ca.pem, cert: certs/ctl.pem, key: certs/ctl-key.pem}\n"), 0o644))
	require.NoError(t, os.Mkdir(certs, 0o700))
	for _, f := range []string{"ca.pem", "ctl.pem", "ctl-key.pem", "198.18.0.12.pem", "198.18.0.12-key.pem"} {
		require.NoError(t, os.WriteFile(filepath.Join(certs, f), []byte("x"), 0o600))
	}

	code, stdout, stderr := runCmd(testCtx(t), "uninstall", "--forget", "--pool", poolFile, "--name", "m2", "root@198.18.0.12")
	require.Equal(t, 0, code, "%s%s", stdout, stderr)
	assert.Contains(t, stdout, `removed host "m2" from pool file `+poolFile)
	assert.Contains(t, stdout, "nothing on the machine was touched")
	b, err := os.ReadFile(poolFile)
	require.NoError(t, err)
	assert.Equal(t, m1, string(b), "the pool file keeps m1 only")
	left, err := filepath.Glob(filepath.Join(certs, "*"))
	require.NoError(t, err)
	for i := range left {
		left[i] = filepath.Base(left[i])
	}
	assert.ElementsMatch(t, []string{"ca.pem", "ctl.pem", "ctl-key.pem"}, left, "certificates left")

	// Forgetting is all --forget does: a host the pool file lacks is an error.
	code, _, stderr = runCmd(testCtx(t), "uninstall", "--forget", "--pool", poolFile, "root@198.18.0.12")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `pool file `+poolFile+` has no host "198.18.0.12"`)
}
