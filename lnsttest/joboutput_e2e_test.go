package lnsttest_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lnst-go/lnst/internal/launch"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bigOutput is a job that writes 50,000,000 bytes of 'a' to stdout: far
// past gRPC's 4 MiB message limit.
const (
	bigOutput     = `head -c 50000000 /dev/zero | tr '\0' a`
	bigOutputSize = 50_000_000
)

// TestJobOutputWholeE2E: a recipe gets a job's 50 MB of output back
// whole, from Run and from Start and Wait.
func TestJobOutputWholeE2E(t *testing.T) {
	h := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
	check := func(how string, r lnsttest.Result) {
		t.Helper()
		assert.False(t, r.Truncated, how)
		require.Len(t, r.Stdout, bigOutputSize, how)
		assert.Equal(t, -1, strings.IndexFunc(r.Stdout, func(c rune) bool { return c != 'a' }), "%s: stdout is all 'a'", how)
		assert.Equal(t, "err\n", r.Stderr, how)
	}
	check("Run", h.Run(t, bigOutput+"; echo err >&2").Result())
	check("Start", h.Start(t, bigOutput+"; echo err >&2").Wait(t))
}

// outputCap is the lab agent's output cap in TestJobOutputCapFixture.
const outputCap = 256 << 10

// TestJobOutputCapFixture runs only as a child of TestJobOutputCapE2E,
// whose lab agent keeps outputCap bytes of a stream: a job past it is
// marked truncated and the recipe gets its tail.
func TestJobOutputCapFixture(t *testing.T) {
	if os.Getenv(launch.LabOutputCapEnv) == "" {
		t.Skip("fixture: runs only as a child of TestJobOutputCapE2E (requires " + launch.LabOutputCapEnv + ")")
	}
	h := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
	var want strings.Builder
	for i := 1; i <= 100_000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	r := h.Run(t, "seq 1 100000; echo small >&2").Result()
	assert.True(t, r.Truncated)
	require.Len(t, r.Stdout, outputCap)
	assert.True(t, strings.HasSuffix(want.String(), r.Stdout), "stdout is the tail of what the job wrote")
	assert.True(t, strings.HasSuffix(r.Stdout, "\n99999\n100000\n"), "the last bytes are kept")
	assert.Equal(t, "small\n", r.Stderr)

	r = h.Run(t, "seq 1 10").Result()
	assert.False(t, r.Truncated, "a job within the cap")
	assert.Equal(t, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", r.Stdout)
}

// TestJobOutputCapE2E runs TestJobOutputCapFixture with a lab agent whose
// output cap is outputCap, and checks the RESULTS SUMMARY says the output
// was truncated.
func TestJobOutputCapE2E(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the local lab requires root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestJobOutputCapFixture$", "-test.v")
	cmd.Env = append(os.Environ(), launch.LabOutputCapEnv+"="+strconv.Itoa(outputCap))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, out: &out}
	require.Zero(t, c.wait(t), out.String())
	assert.Contains(t, out.String(), "--- PASS: TestJobOutputCapFixture")
	assert.Contains(t, out.String(), fmt.Sprintf("output truncated (stdout: last %d of 588895 bytes)", outputCap))
}

// TestOutputE2E: Output returns a job's stdout (not its stderr), and
// fails the test, as Run does, when the job fails.
func TestOutputE2E(t *testing.T) {
	h := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
	assert.Equal(t, "out\n", h.Output(t, "echo out; echo err >&2"))
	assert.Equal(t, "a b\n", h.OutputArgv(t, []string{"echo", "a", "b"}))
	assert.Equal(t, "x\n", h.Output(t, "echo x; exit 3", lnsttest.ExitCodes(3)), "ExitCodes says what succeeds")
	t.Run("failing", func(t *testing.T) {
		if os.Getenv("LNST_OUTPUT_FAIL") == "" {
			t.Skip("fixture: runs only in the child TestOutputE2E starts (requires LNST_OUTPUT_FAIL)")
		}
		h := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
		h.Output(t, "echo partial; exit 2")
		t.Error("Output returned after a failed job")
	})
	if os.Getenv("LNST_OUTPUT_FAIL") != "" {
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestOutputE2E$/^failing$", "-test.v")
	cmd.Env = append(os.Environ(), "LNST_OUTPUT_FAIL=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the child's recipe must fail:\n%s", out)
	assert.Contains(t, string(out), "exit code 2, want 0", "the failure names the exit code")
	assert.NotContains(t, string(out), "Output returned after a failed job")
}
