package lnsttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// StartModule starts the module name on the host in the background, as
// RunModule runs it, and returns its job: Wait or Kill it, then read its
// result with ModuleResult. A module asked to stop (Kill with SIGTERM)
// sees its context cancelled and still returns its result; a signal that
// comes before the process has reached the module (a few milliseconds
// after the start) ends it with no result, so wait for a sign that the
// module runs (it listens, it wrote a file) before stopping it. Like every
// background job, one still running when the test ends is killed and
// reported.
func (h *Host) StartModule(t testing.TB, name string, args any, opts ...RunOpt) *Job {
	t.Helper()
	var o runOpts
	for _, opt := range opts {
		opt(&o)
	}
	if o.expectFail || o.codes != nil {
		t.Fatalf("%s: module %s: ExpectFail and ExitCodes do not apply to modules: a module fails with its error", h.name, name)
	}
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatalf("%s: module %s: marshal its arguments: %v", h.name, name, err)
	}
	bin, err := h.moduleBinary(h.s.state(t))
	if err != nil {
		t.Fatalf("%s: module %s: %v", h.name, name, err)
	}
	env := []string{moduleEnv + "=" + name}
	if len(raw) <= maxEnvArgs {
		env = append(env, moduleArgsEnv+"="+string(raw))
	} else {
		env = append(env, moduleArgsFileEnv+"="+h.putModuleArgs(t, raw))
	}
	argv := []string{bin, "-test.run=^$"}
	return h.start(t, argv, strings.Join(argv, " "), append(append([]RunOpt{Desc("module " + name)}, opts...), Env(env...)))
}

// ModuleResult decodes the result of a module job started with
// StartModule, once it has ended, into out (a pointer). It returns the
// module's error when the module returned one, and an error naming the
// host and job when the job ended without a result (killed before it
// could write one, crashed).
func ModuleResult(j *Job, out any) error {
	select {
	case <-j.done:
	default:
		return fmt.Errorf("%s: job %d (%s) still runs", j.host.name, j.id, j.what())
	}
	res, err := parseModuleOutput(j.Result().Stdout)
	var merr *moduleError
	switch {
	case errors.As(err, &merr):
		msg := merr.msg
		if s := tail(j.Result().Stderr); s != "" {
			msg += "\nstderr:\n" + s
		}
		return fmt.Errorf("%s: job %d (%s): %s", j.host.name, j.id, j.what(), msg)
	case err != nil:
		return fmt.Errorf("%s: job %d (%s): %w\nstderr:\n%s", j.host.name, j.id, j.what(), err, tail(j.Result().Stderr))
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			return fmt.Errorf("%s: job %d (%s): decode its result into %T: %w", j.host.name, j.id, j.what(), out, err)
		}
	}
	return nil
}
