package lnsttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Modules the unit tests run in a child process of this test binary.
func init() {
	RegisterModule("unit-echo", func(_ context.Context, args json.RawMessage) (any, error) {
		fmt.Println("printed by the module: not its result")
		return args, nil
	})
	RegisterModule("unit-fail", func(context.Context, json.RawMessage) (any, error) {
		return nil, errors.New("the link is down")
	})
	RegisterModule("unit-panic", func(context.Context, json.RawMessage) (any, error) {
		panic("boom")
	})
}

func TestModuleResultFraming(t *testing.T) {
	type res struct {
		Names []string
		Inode uint64
	}
	var b bytes.Buffer
	b.WriteString("some output\n" + moduleResultPrefix + "{\"result\": 1}\n") // an earlier frame loses
	code := writeModuleResult(&b, res{Names: []string{"lo", "eth0\nx"}, Inode: 42}, nil)
	b.WriteString("more output\n")
	require.Zero(t, code)
	raw, err := parseModuleOutput(b.String())
	require.NoError(t, err)
	var got res
	require.NoError(t, json.Unmarshal(raw, &got))
	assert.Equal(t, res{Names: []string{"lo", "eth0\nx"}, Inode: 42}, got)

	b.Reset()
	require.Zero(t, writeModuleResult(&b, nil, nil))
	raw, err = parseModuleOutput(b.String())
	require.NoError(t, err)
	assert.Equal(t, "null", string(raw))
}

func TestModuleErrorFraming(t *testing.T) {
	for _, c := range []struct {
		name string
		res  any
		err  error
		want string
	}{
		{"error", nil, errors.New("no route\nto host"), "no route\nto host"},
		{"empty error", nil, errors.New(""), "with no message"},
		{"unmarshalable result", make(chan int), nil, "marshal the module's result"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			require.Equal(t, 1, writeModuleResult(&b, c.res, c.err))
			assert.Equal(t, 1, strings.Count(b.String(), "\n"), "one line: %q", b.String())
			_, err := parseModuleOutput(b.String())
			var merr *moduleError
			require.ErrorAs(t, err, &merr)
			assert.Contains(t, merr.msg, c.want)
		})
	}
}

func TestParseModuleOutputWithoutResult(t *testing.T) {
	_, err := parseModuleOutput("testing: warning: no tests to run\nPASS\n")
	assert.ErrorIs(t, err, errNoModuleResult)
	_, err = parseModuleOutput(moduleResultPrefix + "{not json\n")
	assert.ErrorContains(t, err, "read its result line")
}

func TestModuleArgs(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	a, err := moduleArgs(env(nil))
	require.NoError(t, err)
	assert.Equal(t, "null", string(a))
	a, err = moduleArgs(env(map[string]string{moduleArgsEnv: `{"a":1}`}))
	require.NoError(t, err)
	assert.Equal(t, `{"a":1}`, string(a))
	f := filepath.Join(t.TempDir(), "args.json")
	require.NoError(t, os.WriteFile(f, []byte(`[1,2]`), 0o600))
	a, err = moduleArgs(env(map[string]string{moduleArgsEnv: `{"a":1}`, moduleArgsFileEnv: f}))
	require.NoError(t, err)
	assert.Equal(t, `[1,2]`, string(a), "the file wins")
	_, err = moduleArgs(env(map[string]string{moduleArgsFileEnv: f + ".missing"}))
	assert.Error(t, err)
}

func TestRegisterModuleRejects(t *testing.T) {
	run := func(context.Context, json.RawMessage) (any, error) { return nil, nil }
	assert.PanicsWithValue(t, `lnsttest.RegisterModule: module "unit-echo" is already registered`, func() { RegisterModule("unit-echo", run) })
	assert.Panics(t, func() { RegisterModule("", run) })
	assert.Panics(t, func() { RegisterModule("unit-nil", nil) })
}

func TestCheckArch(t *testing.T) {
	for _, c := range []struct {
		machine, goos, goarch string
		want                  string // "" when it runs
	}{
		{"x86_64", "linux", "amd64", ""},
		{"aarch64", "linux", "arm64", ""},
		{"arm64", "linux", "arm64", ""},
		{"armv7l", "linux", "arm", ""},
		{"i686", "linux", "386", ""},
		{"x86_64", "linux", "386", ""},
		{"ppc64le", "linux", "ppc64le", ""},
		{"aarch64", "linux", "amd64", "pool host m1 is aarch64, this test binary is x86_64: build it for that arch (GOARCH=arm64)"},
		{"x86_64", "linux", "arm64", "pool host m1 is x86_64, this test binary is aarch64: build it for that arch (GOARCH=amd64)"},
		{"mips64", "linux", "amd64", "pool host m1 is mips64, this test binary is x86_64: build it for that arch"},
		{"x86_64", "darwin", "amd64", "build it with GOOS=linux"},
	} {
		err := checkArch("m1", c.machine, c.goos, c.goarch)
		if c.want == "" {
			assert.NoError(t, err, "%s/%s on %s", c.goos, c.goarch, c.machine)
			continue
		}
		if assert.Error(t, err, "%s/%s on %s", c.goos, c.goarch, c.machine) {
			assert.Contains(t, err.Error(), c.want)
			if strings.HasSuffix(c.want, "arch") {
				assert.True(t, strings.HasSuffix(err.Error(), "arch"), "no GOARCH hint when two fit: %v", err)
			}
		}
	}
}

// runModuleChild runs this test binary in module mode, as RunModule does
// on a host, and returns its exit code and output.
func runModuleChild(t *testing.T, name, args string) (int, string, string) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), moduleEnv+"="+name, moduleArgsEnv+"="+args)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s in module mode: %v", exe, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func TestModuleModeChild(t *testing.T) {
	code, stdout, stderr := runModuleChild(t, "unit-echo", `{"dst":"198.18.0.1"}`)
	require.Zero(t, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	res, err := parseModuleOutput(stdout)
	require.NoError(t, err)
	assert.JSONEq(t, `{"dst":"198.18.0.1"}`, string(res))
	assert.Equal(t, 1, strings.Count(stdout, "\n"), "only the result line on stdout: %q", stdout)
	assert.Contains(t, stderr, "printed by the module", "the module's prints go to stderr")

	code, stdout, _ = runModuleChild(t, "unit-fail", "")
	assert.Equal(t, 1, code)
	_, err = parseModuleOutput(stdout)
	assert.EqualError(t, err, "the link is down")

	code, stdout, _ = runModuleChild(t, "unit-panic", "")
	assert.Equal(t, 1, code)
	_, err = parseModuleOutput(stdout)
	assert.ErrorContains(t, err, "module unit-panic panicked: boom")
}

func TestModuleModeUnknownModule(t *testing.T) {
	code, stdout, stderr := runModuleChild(t, "nosuch", "")
	assert.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	_, err := parseModuleOutput(stdout)
	var merr *moduleError
	require.ErrorAs(t, err, &merr)
	assert.Contains(t, merr.msg, `unknown module "nosuch"; registered modules: `)
	assert.Contains(t, merr.msg, "unit-echo, unit-fail, unit-panic")
	assert.NotContains(t, stdout+stderr, "PASS", "no test ran")
}
