package lnsttest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/pool/vmimage"
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestE2EVMLab runs the fixture recipe on the VM lab, failing (a missing
// command): its hosts are QEMU guests, results.json keeps each guest's
// console, the test output has their last lines, and no QEMU process is
// left when the test binary has exited.
func TestE2EVMLab(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU guests: not run with -short")
	}
	if err := vmimage.Check(); err != nil {
		t.Skipf("the VM lab requires its tools: %v", err)
	}
	dir := t.TempDir()
	c := fixture(t, "missing", "-lnst.lab=vm", "-lnst.results="+dir)
	c.run(t)
	out := c.out.String()
	assert.Contains(t, out, "last console lines", "the failing recipe's log shows its VMs' consoles")
	run, err := results.Read(filepath.Join(dir, results.FileName))
	require.NoError(t, err, out)
	require.Len(t, run.Recipes, 1)
	r := run.Recipes[0]
	assert.Equal(t, results.Fail, r.Verdict)
	assert.Contains(t, r.Match, "h1=vm:")
	require.Len(t, r.Consoles, 2, out)
	for _, con := range r.Consoles {
		b, err := os.ReadFile(filepath.Join(dir, con.File))
		require.NoError(t, err)
		assert.Contains(t, string(b), "lnst-vm: init done", "console of %s", con.Host)
	}
	mine := fmt.Sprintf("lnst-vmlab-%d-", c.cmd.Process.Pid)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.HasPrefix(string(b), "qemu-system") && strings.Contains(string(b), mine) {
			t.Errorf("QEMU left after the test binary exited: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}
