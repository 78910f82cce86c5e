package recipes

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPerfTCPNoHome runs TestPerfTCP as user nobody with HOME=/nonexistent
// (a CI account without a home, as su and sudo set it) from a directory
// with no baselines: it gets its measurements and evaluator verdicts, and
// the baseline check is a note saying where the file was looked for, not
// a failure (it once failed on "lock baselines: mkdir /nonexistent").
func TestPerfTCPNoHome(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs TestPerfTCP in a child test binary as nobody (about 15 s)")
	}
	if os.Geteuid() != 0 {
		t.Skip("requires root, to run the child as user nobody")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("requires a user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "lnst-nohome-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "recipes.test")
	data, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, data, 0o755))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestPerfTCP$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent", "USER=nobody"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	s := out.String()
	if strings.Contains(s, "SKIP: TestPerfTCP") {
		t.Skipf("the child skipped TestPerfTCP (the rootless lab is not available to nobody here):\n%s", s)
	}
	require.NoError(t, err, "TestPerfTCP as nobody without a home:\n%s", s)
	assert.Contains(t, s, "--- PASS: TestPerfTCP")
	assert.Contains(t, s, "perf nonzero tcp throughput")
	assert.Contains(t, s, "looked for "+filepath.Join(dir, "testdata", "baselines"), "the note says where the baseline file was looked for")
	assert.NotContains(t, s, "lock baselines")
}
