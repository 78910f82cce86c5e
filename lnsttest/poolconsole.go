package lnsttest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/pool"
)

// The console of a pool machine, as its pool file names it: a log file
// on the controller that something else writes (a console server's log),
// or a command whose output is the console, run for as long as a recipe
// holds the machine. When the recipe fails, the console output written
// while it held the machine ends its log (the last 30 lines) and its
// results (the last 500, a file next to results.json), as a VM host's
// console does.

// poolConsole is one pool machine's console while a recipe holds it.
type poolConsole struct {
	// path is the file the console output is in, and from the offset at
	// which the recipe's part of it starts.
	path string
	from int64
	// cmd is the console command, with its output in path (a temporary
	// file); nil for a console file.
	cmd  *exec.Cmd
	done chan struct{}
}

// watchConsole starts following the console of pool machine ph, which
// the recipe calls host, and registers with t.Cleanup what happens when
// the recipe ends: on failure its console output is logged and kept with
// the results; the console command, if any, is stopped. A console that
// cannot be followed is logged, not failed: the recipe is not about it.
func (st *testState) watchConsole(t testing.TB, host string, ph *pool.Host) {
	t.Helper()
	if ph == nil || ph.Console == (pool.Console{}) {
		return
	}
	c, err := startConsole(ph)
	if err != nil {
		st.logger().Warn("pool console", "host", host, "pool host", ph.Name, "error", err)
		return
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pool host %s (%s), console output during the recipe, last lines:\n%s", ph.Name, host, c.tail(30))
			st.keepConsole(host, c.tail(500))
		}
		c.stop()
	})
}

// startConsole opens a pool machine's console: it notes where a console
// file ends now, or starts the console command with its output in a
// temporary file.
func startConsole(ph *pool.Host) (*poolConsole, error) {
	c := &poolConsole{}
	if ph.Console.File != "" {
		c.path = ph.Console.File
		if fi, err := os.Stat(c.path); err == nil {
			c.from = fi.Size()
		} else if !os.IsNotExist(err) {
			return nil, fmt.Errorf("console file: %w", err)
		}
		return c, nil
	}
	f, err := os.CreateTemp("", "lnst-console-"+ph.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("console command: %w", err)
	}
	defer f.Close()
	c.path = f.Name()
	cmd := poolShell(context.Background(), ph, ph.Console.Command)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		os.Remove(c.path)
		return nil, fmt.Errorf("console command %q: %w", ph.Console.Command, err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// poolShell is a command of the pool file for machine ph (power,
// console): script run with /bin/sh -c on the controller, in a process
// group of its own, seeing the machine's name and agent address as
// LNST_POOL_HOST and LNST_POOL_AGENT.
func poolShell(ctx context.Context, ph *pool.Host, script string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "LNST_POOL_HOST="+ph.Name, "LNST_POOL_AGENT="+ph.Agent)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// tail is the last n lines of the console output written since the
// recipe took the machine ("" if none): a console file that shrank
// (rotated) is read from its start.
func (c *poolConsole) tail(n int) string {
	f, err := os.Open(c.path)
	if err != nil {
		return fmt.Sprintf("(console %s unreadable: %v)", c.path, err)
	}
	defer f.Close()
	// Enough for n long lines; a line cut at the start is dropped below.
	const maxTail = 1 << 20
	from := c.from
	if fi, err := f.Stat(); err == nil {
		if fi.Size() < from {
			from = 0
		}
		if fi.Size()-from > maxTail {
			from = fi.Size() - maxTail
		}
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return fmt.Sprintf("(console %s unreadable: %v)", c.path, err)
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxTail))
	text := strings.ReplaceAll(strings.TrimRight(string(b), "\r\n"), "\r\n", "\n")
	if text == "" {
		return "(no console output)"
	}
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// consoleStopWait is how long stop waits for a console command to end
// after SIGTERM before it kills it.
const consoleStopWait = 5 * time.Second

// stop ends a console command (its process group) and removes its output
// file; a console file is left alone.
func (c *poolConsole) stop() {
	if c.cmd == nil {
		return
	}
	pg := -c.cmd.Process.Pid
	syscall.Kill(pg, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(consoleStopWait):
	}
	syscall.Kill(pg, syscall.SIGKILL) // what the command left behind
	<-c.done
	os.Remove(c.path)
}
