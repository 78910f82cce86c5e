package lnsttest_test

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Parameters of this test binary, for TestParams*.
var (
	testDuration = lnsttest.NewParam("test.duration", 5*time.Second, "how long a test flow runs")
	testSizes    = lnsttest.NewParam("test.msg-sizes", []int{64, 1400}, "message sizes")
	testProfile  = lnsttest.NewParam("test.profile", "short", "short or full", lnsttest.Choices("short", "full"))
)

const paramsChildEnv = "LNST_TEST_PARAMS_CHILD"

// TestParamsChild prints the values of this binary's parameters when run
// by TestParams as a child; otherwise it has nothing to do.
func TestParamsChild(t *testing.T) {
	if os.Getenv(paramsChildEnv) == "" {
		t.Skip("the child of TestParams: run by it with " + paramsChildEnv + "=1")
	}
	t.Logf("VALUES duration=%v sizes=%v profile=%s set=%v", testDuration.Get(), testSizes.Get(), testProfile.Get(), testDuration.IsSet())
}

// runParamsChild runs this test binary with args (after -test.run of the
// child and -test.v) and env, returning its exit code and output.
func runParamsChild(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	argv := append([]string{"-test.run=^TestParamsChild$", "-test.v"}, args...)
	cmd := exec.Command(os.Args[0], argv...)
	cmd.Env = append(os.Environ(), append(env, paramsChildEnv+"=1")...)
	// A session of its own has no terminal: -lnst.params writes to stdout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run %v: %v", argv, err)
		}
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestParams: -lnst.set and LNST_SET_* set typed parameters, the flag
// winning; a bad value or an unknown name exits 2 naming them;
// -lnst.params lists every parameter with type, default and doc and
// exits 0.
func TestParams(t *testing.T) {
	code, out := runParamsChild(t, nil)
	require.Zero(t, code, out)
	assert.Contains(t, out, "VALUES duration=5s sizes=[64 1400] profile=short set=false")

	code, out = runParamsChild(t, []string{"LNST_SET_TEST_DURATION=7s", "LNST_SET_TEST_MSG_SIZES=16384"},
		"-lnst.set", "test.duration=60s", "-lnst.set=test.profile=full")
	require.Zero(t, code, out)
	assert.Contains(t, out, "VALUES duration=1m0s sizes=[16384] profile=full set=true", "the flag wins over the variable")

	code, out = runParamsChild(t, []string{"LNST_SET_TEST_DURATION=7s"})
	require.Zero(t, code, out)
	assert.Contains(t, out, "VALUES duration=7s")

	for _, c := range []struct {
		args, env []string
		want      []string
	}{
		{args: []string{"-lnst.set", "test.duration=abc"}, want: []string{"test.duration", `"abc"`, "duration"}},
		{args: []string{"-lnst.set", "test.durtion=60s"}, want: []string{`unknown parameter "test.durtion"`, "test.duration"}},
		{args: []string{"-lnst.set", "test.profile=medium"}, want: []string{"test.profile", `"medium"`, "short, full"}},
		{args: []string{"-lnst.set", "test.msg-sizes=64,1k"}, want: []string{"test.msg-sizes", `"1k"`}},
		{env: []string{"LNST_SET_TEST_DURATION=abc"}, want: []string{"LNST_SET_TEST_DURATION", `"abc"`, "test.duration"}},
	} {
		code, out := runParamsChild(t, c.env, c.args...)
		assert.Equal(t, 2, code, "%v %v: %s", c.args, c.env, out)
		for _, w := range c.want {
			assert.Contains(t, out, w, "%v %v", c.args, c.env)
		}
		assert.NotContains(t, out, "VALUES", "the tests did not run")
	}

	code, out = runParamsChild(t, nil, "-lnst.params")
	require.Zero(t, code, out)
	assert.NotContains(t, out, "VALUES", "-lnst.params lists and exits")
	for _, line := range []string{
		"test.duration   duration     5s       LNST_SET_TEST_DURATION   how long a test flow runs",
		"test.msg-sizes  int-list     64,1400  LNST_SET_TEST_MSG_SIZES  message sizes",
		"test.profile    short|full   short    LNST_SET_TEST_PROFILE    short or full",
	} {
		assert.Contains(t, strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(line), " "))
	}
}

// TestNewParamPanics: declaring a parameter wrongly is a programming
// error, caught at once.
func TestNewParamPanics(t *testing.T) {
	assert.Panics(t, func() { lnsttest.NewParam("test.duration", time.Second, "again") }, "declared twice")
	assert.Panics(t, func() { lnsttest.NewParam("a=b", 1, "") }, "bad name")
	assert.Panics(t, func() { lnsttest.NewParam("test.choice", "x", "", lnsttest.Choices("a", "b")) }, "default not a choice")
}
