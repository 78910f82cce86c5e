package lnsttest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/pool/vmimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hardResetEnv names the case TestHardResetFixture plays, as a child of
// TestE2EHardResetPool; consoleEnv the console file it writes to.
const (
	hardResetEnv = "LNST_E2E_HARDRESET"
	consoleEnv   = "LNST_E2E_CONSOLE"
)

// TestHardResetFixture is the recipe TestE2EHardResetPool runs on its
// pool, in a child test binary.
func TestHardResetFixture(t *testing.T) {
	c := os.Getenv(hardResetEnv)
	if c == "" {
		t.Skip("fixture: runs only as a child of TestE2EHardResetPool (requires " + hardResetEnv + ")")
	}
	if c == "declared" {
		lnsttest.Destructive(t, "reboot", "reset")
	}
	h := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
	if c == "declared" {
		h.Run(t, "true", lnsttest.Desc("the declared destructive recipe runs"))
		fmt.Println("DESTRUCTIVE-RAN")
		return
	}
	agentPid := func() string {
		return strings.TrimSpace(h.Output(t, "echo $PPID", lnsttest.Desc("the agent's pid")))
	}
	switch c {
	case "reset":
		before := agentPid()
		dir := h.TempDir(t)
		h.HardReset(t, lnsttest.HardResetTimeout(time.Minute))
		after := agentPid()
		assert.NotEqual(t, before, after, "another agent serves the machine after its reset")
		h.Run(t, "test ! -e "+dir, lnsttest.Desc("the new agent took the temporary directory back from its journal"))
		fmt.Println("HARDRESET-DONE", before, after)
	case "vmreset":
		bootID := func() string {
			return strings.TrimSpace(h.Output(t, "cat /proc/sys/kernel/random/boot_id", lnsttest.Desc("boot id")))
		}
		before := bootID()
		h.Sysctl(t, "net.ipv4.ip_forward", "1")
		h.HardReset(t, lnsttest.HardResetTimeout(5*time.Minute))
		after := bootID()
		assert.NotEqual(t, before, after, "the guest booted again")
		assert.Equal(t, "0", h.ReadSysctl(t, "net.ipv4.ip_forward"), "a sysctl set before the reset is as the boot left it")
		fmt.Println("HARDRESET-DONE", before, after)
	case "nopower":
		h.HardReset(t)
		t.Error("HardReset returned on a pool host without a power command")
	case "notallowed":
		h.HardReset(t, lnsttest.HardResetTimeout(time.Minute))
		t.Error("HardReset returned on a pool host that does not allow reset")
	case "console":
		if f := os.Getenv(consoleEnv); f != "" {
			// What a console server would log while the recipe runs.
			require.NoError(t, appendFile(f, "m1 login: recipe-time console line\n"))
		}
		h.Run(t, "true")
		t.Fatal("fails on purpose")
	default:
		t.Fatalf("unknown case %q", c)
	}
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestE2EHardResetPool makes a pool "machine" of a lab host: a loop that
// runs lnst-agent and starts it again whenever it dies, as a machine's
// init would after a reset. The pool file's power command SIGKILLs the
// agent: a reset as the agent sees it. A child test binary, the
// controller, runs TestHardResetFixture on the pool.
func TestE2EHardResetPool(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lnst-agent; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("requires the go command to build lnst-agent")
	}
	m1 := lnsttest.Require(t, lnsttest.HostReq("m1")).Host("m1")
	dir, err := os.MkdirTemp("", "lnst-hardreset-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	build(t, moduleRoot(t, gobin), gobin, "build", "-o", filepath.Join(dir, "lnst-agent"), "./cmd/lnst-agent")

	sock, pidFile := filepath.Join(dir, "m1.sock"), filepath.Join(dir, "m1.pid")
	machine := fmt.Sprintf(`while :; do
  %s serve --listen unix://%s --journal %s &
  echo $! > %s
  wait $!
done`, filepath.Join(dir, "lnst-agent"), sock, filepath.Join(dir, "m1.journal"), pidFile)
	m1.Start(t, machine, lnsttest.Desc("machine m1: lnst-agent, started again when it dies"))
	lnsttest.WaitFor(t, "lnst-agent's socket "+sock, 15*time.Second, func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})

	consoleFile := filepath.Join(dir, "m1.console")
	require.NoError(t, os.WriteFile(consoleFile, []byte("m1 boot: an earlier boot's line\n"), 0o644))
	writePool := func(name, extra string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf("hosts:\n  - name: m1\n    agent: unix://%s\n%s", sock, extra)), 0o644))
		return p
	}
	power := fmt.Sprintf("    power: {reset: 'kill -KILL $(cat %s) && echo reset $LNST_POOL_HOST', timeout: 30s}\n    console: {file: m1.console}\n", pidFile)
	powered := writePool("powered.yaml", power+"    allow: [reset, reboot]\n")
	// A machine that may be reset, but whose entry lets no recipe do it.
	forbidden := writePool("forbidden.yaml", power+"    allow: [reboot]\n")
	unpowered := writePool("unpowered.yaml", "    console: {command: 'echo command-console-line; exec sleep 600'}\n")

	run := func(c, poolFile string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHardResetFixture$", "-test.v", "-lnst.pool=" + poolFile}, args...)...)
		cmd.Env = append(os.Environ(), hardResetEnv+"="+c, consoleEnv+"="+consoleFile)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		require.NoError(t, cmd.Start())
		if !endsWithin(cmd, 3*time.Minute) {
			t.Fatalf("case %s did not end within 3m; output:\n%s", c, out.String())
		}
		return cmd.ProcessState.ExitCode(), out.String()
	}

	t.Run("reset", func(t *testing.T) {
		code, out := run("reset", powered)
		require.Zero(t, code, out)
		assert.Contains(t, out, "HARDRESET-DONE")
		assert.Regexp(t, `power command.*output="reset m1"`, out, "the power command's output is logged")
		assert.Contains(t, out, "host back")
	})
	t.Run("no power command", func(t *testing.T) {
		code, out := run("nopower", unpowered)
		require.Zero(t, code, out)
		assert.Contains(t, out, "--- SKIP: TestHardResetFixture ")
		assert.Contains(t, out, "hard reset requires a power command: pool host m1 of ")
	})
	t.Run("reset not allowed", func(t *testing.T) {
		code, out := run("notallowed", forbidden)
		require.Zero(t, code, out)
		assert.Contains(t, out, "--- SKIP: TestHardResetFixture ")
		assert.Contains(t, out, `h1: HardReset is destructive (reset), and pool host m1 (`+forbidden+`:2) does not allow it: add "allow: [reset]" to its entry`)
		assert.NotContains(t, out, "power command", "no power command ran")
	})
	t.Run("declared, not allowed", func(t *testing.T) {
		code, out := run("declared", forbidden)
		require.Zero(t, code, out)
		assert.Contains(t, out, "--- SKIP: TestHardResetFixture ")
		assert.Contains(t, out, `lnsttest.Require: the recipe is destructive (reboot, reset), and pool host m1 (`+forbidden+`:2) does not allow reset: add "allow: [reset]" to its entry to run it there`)
		assert.NotContains(t, out, "DESTRUCTIVE-RAN")
	})
	t.Run("declared, allowed", func(t *testing.T) {
		code, out := run("declared", powered)
		require.Zero(t, code, out)
		assert.Contains(t, out, "--- PASS: TestHardResetFixture ")
		assert.Contains(t, out, "DESTRUCTIVE-RAN")
	})
	t.Run("console file", func(t *testing.T) {
		results := t.TempDir()
		code, out := run("console", powered, "-lnst.results="+results)
		require.Equal(t, 1, code, out)
		assert.Contains(t, out, "pool host m1 (h1), console output during the recipe")
		assert.Contains(t, out, "recipe-time console line")
		assert.NotContains(t, out, "an earlier boot's line", "only what the console showed during the recipe")
		kept := consoleInResults(t, results)
		assert.Contains(t, kept, "recipe-time console line")
	})
	t.Run("console command", func(t *testing.T) {
		code, out := run("console", unpowered)
		require.Equal(t, 1, code, out)
		assert.Contains(t, out, "command-console-line")
		left, _ := exec.Command("pgrep", "-f", "^sleep 600$").Output()
		assert.Empty(t, strings.TrimSpace(string(left)), "the console command was stopped with the recipe")
	})
}

// consoleInResults is the console file results.json attaches to the one
// recipe of a run.
func consoleInResults(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	var run struct {
		Recipes []struct {
			Consoles []struct{ Host, File string } `json:"consoles"`
		} `json:"recipes"`
	}
	require.NoError(t, json.Unmarshal(b, &run))
	require.Len(t, run.Recipes, 1)
	require.Len(t, run.Recipes[0].Consoles, 1, "%s", b)
	c := run.Recipes[0].Consoles[0]
	assert.Equal(t, "h1", c.Host)
	data, err := os.ReadFile(filepath.Join(dir, c.File))
	require.NoError(t, err)
	return string(data)
}

// TestE2EHardResetVM resets a VM lab guest through QEMU's QMP socket: it
// boots again in its QEMU process and the controller reconnects.
func TestE2EHardResetVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a QEMU guest: not run with -short")
	}
	if err := vmimage.Check(); err != nil {
		t.Skipf("the VM lab requires its tools: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("the VM lab's taps require root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHardResetFixture$", "-test.v", "-lnst.lab=vm")
	cmd.Env = append(os.Environ(), hardResetEnv+"=vmreset")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "HARDRESET-DONE")
	assert.Contains(t, string(out), "host back")
}

func TestHardResetLabSkips(t *testing.T) {
	h := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
	var sub *testing.T
	t.Run("hard reset", func(t *testing.T) {
		sub = t
		h.HardReset(t)
		t.Error("HardReset returned on a namespace lab host")
	})
	assert.True(t, sub.Skipped(), "HardReset skips on the namespace lab")
}
