package lnsttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHardResetOptions(t *testing.T) {
	o, err := hardResetOptions(nil)
	assert.NoError(t, err)
	assert.Equal(t, DefaultRebootTimeout, o.timeout)
	o, err = hardResetOptions([]HardResetOpt{HardResetTimeout(time.Minute)})
	assert.NoError(t, err)
	assert.Equal(t, time.Minute, o.timeout)
	_, err = hardResetOptions([]HardResetOpt{HardResetTimeout(0)})
	assert.ErrorContains(t, err, "HardResetTimeout(0s) is not a positive duration")
}

func TestRunPower(t *testing.T) {
	ph := &pool.Host{Name: "m1", Agent: "unix:///run/a.sock", Power: pool.Power{Reset: `echo "reset $LNST_POOL_HOST at $LNST_POOL_AGENT"; echo to stderr >&2`}}
	out, err := runPower(ph)
	require.NoError(t, err)
	assert.Equal(t, "reset m1 at unix:///run/a.sock\nto stderr", out)

	ph.Power.Reset = "echo no BMC answers; exit 3"
	out, err = runPower(ph)
	assert.ErrorContains(t, err, `power command "echo no BMC answers; exit 3" failed: exit status 3`)
	assert.Equal(t, "no BMC answers", out)
}

// TestRunPowerTimeout: a power command that outlives its timeout is
// killed with what it started.
func TestRunPowerTimeout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ph := &pool.Host{Name: "m1", Power: pool.Power{Reset: "sleep 300 & echo $! > " + pidFile + "; wait", Timeout: 300 * time.Millisecond}}
	_, err := runPower(ph)
	assert.ErrorContains(t, err, "did not finish within 300ms (the pool file's power timeout); killed it")
	b, rerr := os.ReadFile(pidFile)
	require.NoError(t, rerr)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NotZero(t, pid)
	defer syscall.Kill(pid, syscall.SIGKILL)
	WaitFor(t, fmt.Sprintf("the command's background sleep %d to be killed", pid), 10*time.Second, func() bool {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || strings.Contains(string(stat), ") Z ")
	})
}

func TestPoolConsoleFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "m1.log")
	require.NoError(t, os.WriteFile(f, []byte("old boot\n"), 0o644))
	c, err := startConsole(&pool.Host{Name: "m1", Console: pool.Console{File: f}})
	require.NoError(t, err)
	assert.Equal(t, "(no console output)", c.tail(30))
	require.NoError(t, appendTo(f, "line 1\r\nline 2\nline 3\n"))
	assert.Equal(t, "line 1\nline 2\nline 3", c.tail(30), "only what came during the recipe, CRLF as LF")
	assert.Equal(t, "line 2\nline 3", c.tail(2))
	// Rotated: the file is shorter than when the recipe started.
	require.NoError(t, os.WriteFile(f, []byte("new\n"), 0o644))
	assert.Equal(t, "new", c.tail(30))
	c.stop()
	_, err = os.Stat(f)
	assert.NoError(t, err, "a console file is left alone")

	// A file that does not exist yet is read once it does.
	missing := filepath.Join(t.TempDir(), "later.log")
	c, err = startConsole(&pool.Host{Name: "m1", Console: pool.Console{File: missing}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(missing, []byte("up\n"), 0o644))
	assert.Equal(t, "up", c.tail(30))
}

func TestPoolConsoleCommand(t *testing.T) {
	c, err := startConsole(&pool.Host{Name: "m1", Console: pool.Console{Command: "echo console of $LNST_POOL_HOST; exec sleep 300"}})
	require.NoError(t, err)
	WaitFor(t, "the console command's first line", 10*time.Second, func() bool { return c.tail(30) == "console of m1" })
	c.stop()
	select {
	case <-c.done:
	default:
		t.Error("the console command still runs after stop")
	}
	_, err = os.Stat(c.path)
	assert.True(t, os.IsNotExist(err), "the command's output file is removed: %v", err)
}

func appendTo(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(s)
	return err
}
