package lnsttest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/archname"
)

// Custom modules: Go functions of a recipe's test package that run on a
// host, lab or pool, with nothing installed there.
//
// A module runs in a process started on the host from the test binary
// itself, in module mode: Main sees LNST_MODULE=<name> before anything
// else, runs the registered function and exits. On the local lab the hosts
// share this machine's filesystem, and the job runs this very binary. On a
// pool host the controller first ships its test binary there (PutFile into
// a temporary directory of the host), once per session and host; it is
// removed when the session ends (or by the agent, with the rest of the
// session's changes, when the session's lease expires).
//
// How values travel:
//
//   - args, marshalled to JSON, go in LNST_MODULE_ARGS when they are at
//     most maxEnvArgs bytes (a job's environment is bounded by the
//     kernel: 128 KiB per variable, about 2 MiB in all); larger ones are
//     put in a file on the host (TempDir and PutFile, removed with the
//     test) named by LNST_MODULE_ARGS_FILE.
//   - The module's result (or error) comes back as one line of the
//     process's stdout: moduleResultPrefix then the JSON of a
//     moduleFrame. What the module itself prints to os.Stdout goes to
//     stderr, and any other line of stdout is ignored. Results should stay
//     well under the agent connection's 4 MiB message limit.
//   - The process exits 0 when the module returned a result, 1 when it
//     returned an error, panicked, or is not registered.

// Module mode's environment variables.
const (
	moduleEnv         = "LNST_MODULE"
	moduleArgsEnv     = "LNST_MODULE_ARGS"
	moduleArgsFileEnv = "LNST_MODULE_ARGS_FILE"
)

// maxEnvArgs is the largest JSON of args passed in the environment.
const maxEnvArgs = 32 << 10

// moduleResultPrefix starts the line of a module process's stdout that
// holds its result.
const moduleResultPrefix = "LNST-MODULE-RESULT "

// moduleGroup is the journal group, within the session, of the test
// binaries shipped to pool hosts.
const moduleGroup = "modules"

// moduleFunc is a registered module.
type moduleFunc func(ctx context.Context, args json.RawMessage) (any, error)

// moduleRegistry holds the registered modules. It is the one piece of
// package state besides the flags: like database/sql drivers, modules
// register themselves from init functions of the test package, before
// Main runs.
var moduleRegistry struct {
	mu     sync.Mutex
	byName map[string]moduleFunc
}

// RegisterModule registers a module under a name, in an init function or
// a package-level variable of the test package. The module runs in a
// process of its own on the host (see Host.RunModule): run gets the JSON
// of the arguments RunModule was given, and returns a value that is
// marshalled to JSON, or an error. Its context is cancelled when the
// process is asked to stop (SIGTERM, SIGINT). RegisterModule panics if
// name is empty or already registered, or run is nil.
func RegisterModule(name string, run func(ctx context.Context, args json.RawMessage) (any, error)) {
	if name == "" || strings.ContainsRune(name, 0) || run == nil {
		panic(fmt.Sprintf("lnsttest.RegisterModule(%q): the name must be non-empty and run non-nil", name))
	}
	r := &moduleRegistry
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byName[name]; ok {
		panic(fmt.Sprintf("lnsttest.RegisterModule: module %q is already registered", name))
	}
	if r.byName == nil {
		r.byName = map[string]moduleFunc{}
	}
	r.byName[name] = run
}

// lookupModule returns the module registered as name.
func lookupModule(name string) (moduleFunc, error) {
	r := &moduleRegistry
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.byName[name]; ok {
		return f, nil
	}
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	known := "none (register them with lnsttest.RegisterModule in the test package)"
	if len(names) > 0 {
		known = strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("unknown module %q; registered modules: %s", name, known)
}

// moduleFrame is what a module process writes after moduleResultPrefix.
type moduleFrame struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// moduleMode reports the module this process was started to run, if any.
func moduleMode() (string, bool) {
	name := os.Getenv(moduleEnv)
	return name, name != ""
}

// serveModule runs this process as the module name and returns its exit
// code: 0 when the module returned a result, 1 otherwise.
func serveModule(name string) int {
	stdout := os.Stdout
	os.Stdout = os.Stderr // the module's own prints stay out of the result
	args, err := moduleArgs(os.Getenv)
	for _, e := range []string{moduleEnv, moduleArgsEnv, moduleArgsFileEnv} {
		os.Unsetenv(e) // not for the module's children
	}
	var res any
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		res, err = callModule(ctx, name, args)
		stop()
	}
	return writeModuleResult(stdout, res, err)
}

// moduleArgs reads the module's arguments from the environment, or from
// the file it names.
func moduleArgs(getenv func(string) string) (json.RawMessage, error) {
	if f := getenv(moduleArgsFileEnv); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read the module's arguments: %w", err)
		}
		return b, nil
	}
	if a := getenv(moduleArgsEnv); a != "" {
		return json.RawMessage(a), nil
	}
	return json.RawMessage("null"), nil
}

// callModule runs the module name, turning a panic into an error.
func callModule(ctx context.Context, name string, args json.RawMessage) (res any, err error) {
	f, err := lookupModule(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("module %s panicked: %v\n%s", name, p, debug.Stack())
		}
	}()
	return f(ctx, args)
}

// writeModuleResult writes the result line of res or err to w and
// returns the process's exit code.
func writeModuleResult(w io.Writer, res any, err error) int {
	var fr moduleFrame
	if err == nil {
		fr.Result, err = json.Marshal(res)
		if err != nil {
			err = fmt.Errorf("marshal the module's result: %w", err)
		}
	}
	if err != nil {
		fr = moduleFrame{Error: err.Error()}
		if fr.Error == "" {
			fr.Error = fmt.Sprintf("the module returned an error with no message (%T)", err)
		}
	}
	b, _ := json.Marshal(fr) // cannot fail: a valid RawMessage and a string
	if _, werr := fmt.Fprintf(w, "%s%s\n", moduleResultPrefix, b); werr != nil {
		fmt.Fprintf(os.Stderr, "lnsttest: module mode: write the result: %v\n", werr)
		return 1
	}
	if err != nil {
		return 1
	}
	return 0
}

// errNoModuleResult is the error of an output with no result line.
var errNoModuleResult = errors.New("no " + strings.TrimSpace(moduleResultPrefix) + " line on its stdout: does the test package's TestMain call lnsttest.Main?")

// moduleError is an error a module returned.
type moduleError struct{ msg string }

func (e *moduleError) Error() string { return e.msg }

// parseModuleOutput finds the result line of a module process's stdout
// (the last one, should there be more) and returns the module's result,
// or its error as a *moduleError.
func parseModuleOutput(stdout string) (json.RawMessage, error) {
	var line string
	found := false
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, len(stdout)+1)
	for sc.Scan() {
		if l, ok := strings.CutPrefix(sc.Text(), moduleResultPrefix); ok {
			line, found = l, true
		}
	}
	if !found {
		return nil, errNoModuleResult
	}
	var fr moduleFrame
	if err := json.Unmarshal([]byte(line), &fr); err != nil {
		return nil, fmt.Errorf("read its result line: %w", err)
	}
	if fr.Error != "" {
		return nil, &moduleError{fr.Error}
	}
	if fr.Result == nil {
		return json.RawMessage("null"), nil
	}
	return fr.Result, nil
}

// RunModule runs the module registered as name (see RegisterModule) on
// the host with args, marshalled to JSON, waits for it and decodes its
// JSON result into out, a pointer (or nil to drop the result). The test
// fails, naming the host, the module and the error, when the module
// returns an error, or when it cannot run, or its result does not decode
// into out. The module is a job of the host, shown as "module NAME" in the
// RESULTS SUMMARY. Options are those of Run but ExpectFail and ExitCodes:
// a module reports failure with its error.
//
// On a pool host, the first module run of the session ships the test
// binary to the host (the host must have the binary's architecture); the
// binary stays there until the test binary exits.
func (h *Host) RunModule(t testing.TB, name string, args any, out any, opts ...RunOpt) *Job {
	t.Helper()
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("%s: module %s: %s", h.name, name, fmt.Sprintf(format, a...))
	}
	if out != nil {
		if v := reflect.ValueOf(out); v.Kind() != reflect.Pointer || v.IsNil() {
			fail("out must be a non-nil pointer, not %T", out)
		}
	}
	var o runOpts
	for _, opt := range opts {
		opt(&o)
	}
	if o.expectFail || o.codes != nil {
		fail("ExpectFail and ExitCodes do not apply to modules: a module fails with its error")
	}
	raw, err := json.Marshal(args)
	if err != nil {
		fail("marshal its arguments: %v", err)
	}
	st := h.s.state(t)
	bin, err := h.moduleBinary(st)
	if err != nil {
		fail("%v", err)
	}
	env := []string{moduleEnv + "=" + name}
	if len(raw) <= maxEnvArgs {
		env = append(env, moduleArgsEnv+"="+string(raw))
	} else {
		env = append(env, moduleArgsFileEnv+"="+h.putModuleArgs(t, raw))
	}
	// -test.run=^$: should module mode not take over, no test runs.
	argv := []string{bin, "-test.run=^$"}
	j, req := h.newJob(t, argv, strings.Join(argv, " "), append(append([]RunOpt{Desc("module " + name)}, opts...), Env(env...)))
	if !j.opts.quiet {
		st.logger().Info("run module", "host", h.name, "module", name)
	}
	ctx := rpcCtx(t)
	// A running job of the recipe, as Run's are: lnst status shows it
	// with its id while it runs.
	st.jobStarted(j, 0)
	r, err := pb.RunJobWholeStarted(ctx, h.client, req, func(s *pb.JobStarted) {
		j.id = s.Id
		st.jobNamed(j, s.Id)
	})
	if r != nil {
		j.id = r.Id
	}
	j.set(r, callErr(ctx, err))
	close(j.done)
	st.jobEnded(j)
	p := j.problem()
	if p != "" || !j.opts.quiet {
		st.addJob(j)
	}
	res, err := parseModuleOutput(j.Result().Stdout)
	var merr *moduleError
	switch {
	case errors.As(err, &merr):
		msg := merr.msg
		if s := tail(j.Result().Stderr); s != "" {
			msg += "\nstderr:\n" + s
		}
		fail("job %d: %s", j.id, msg)
	case p != "":
		t.Fatal(j.failure(p))
	case err != nil:
		fail("job %d: %v\n%s", j.id, err, j.failure("no result"))
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			fail("decode its result into %T: %v\nresult: %s", out, err, shorten(string(res), 4096))
		}
	}
	j.SetSummary(shorten(string(res), 60))
	return j
}

// shorten cuts s to at most n bytes, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// putModuleArgs writes args too large for the environment to a file on
// the host, removed when the test ends, and returns its path there.
func (h *Host) putModuleArgs(t testing.TB, args []byte) string {
	t.Helper()
	local := filepath.Join(t.TempDir(), "module-args.json")
	if err := os.WriteFile(local, args, 0o600); err != nil {
		t.Fatalf("%s: write module arguments: %v", h.name, err)
	}
	dir := h.TempDir(t)
	h.PutFile(t, local, dir)
	return path.Join(dir, "module-args.json")
}

// moduleBinary returns the path, on the host, of the test binary that
// runs modules: this binary on the lab, a copy shipped once per session
// on a pool host.
func (h *Host) moduleBinary(st *testState) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this test binary: %w", err)
	}
	machine := h
	if h.outer != nil {
		machine = h.outer
	}
	if machine.vm != nil {
		// A VM guest has its own filesystem: it gets a copy, which goes
		// with the guest (its files live in the guest's memory).
		return h.s.shipped.binary(h, machine.name, exe, st, false)
	}
	if h.s.pool == nil {
		return exe, nil // namespace hosts share this machine's filesystem
	}
	poolName, _ := h.poolConn()
	return h.s.shipped.binary(h, poolName, exe, st, true)
}

// moduleHelloWithin bounds the Hello that tells whether a host still has
// the copy of the test binary shipped to it.
const moduleHelloWithin = 30 * time.Second

// shippedBinaries are the copies of the test binary on pool hosts, one per
// agent, made under the session's journal group moduleGroup.
type shippedBinaries struct {
	mu    sync.Mutex
	hosts map[pb.AgentClient]*shippedBinary
	// guests are the copies on VM lab guests: not removed at the end,
	// since they go with their guest.
	guests map[pb.AgentClient]*shippedBinary
}

// shippedBinary is the test binary on one pool host.
type shippedBinary struct {
	mu   sync.Mutex // held while shipping
	key  string     // the agent's boot and pid when shipped: a new one lost the copy
	path string
}

// binary returns the path of the test binary exe on the pool host of h,
// shipping it first when the host does not have it yet (or lost it: its
// agent restarted, which undoes the session's changes).
func (sb *shippedBinaries) binary(h *Host, poolName, exe string, st *testState, removeAtEnd bool) (string, error) {
	st.t.Helper()
	// Not isUpWithin: this Hello comes before every module start, and a
	// TCG guest whose one CPU runs a flow set answers in seconds.
	ctx, cancel := context.WithTimeout(context.Background(), moduleHelloWithin)
	hello, err := h.client.Hello(ctx, &pb.HelloRequest{})
	cancel()
	if err != nil {
		return "", fmt.Errorf("pool host %s: %w", poolName, err)
	}
	if err := checkArch(poolName, hello.Arch, runtime.GOOS, runtime.GOARCH); err != nil {
		return "", err
	}
	sb.mu.Lock()
	if sb.hosts == nil {
		sb.hosts = map[pb.AgentClient]*shippedBinary{}
		sb.guests = map[pb.AgentClient]*shippedBinary{}
	}
	copies := sb.hosts
	if !removeAtEnd {
		copies = sb.guests
	}
	b := copies[h.client]
	if b == nil {
		b = &shippedBinary{}
		copies[h.client] = b
	}
	sb.mu.Unlock()

	b.mu.Lock()
	defer b.mu.Unlock()
	key := fmt.Sprintf("%s/%d", hello.BootId, hello.Pid)
	if b.path != "" && b.key == key {
		return b.path, nil
	}
	start := time.Now()
	group := agent.SessionGroup(h.s.id, moduleGroup)
	dir, err := h.client.TempDir(context.Background(), &pb.TempDirRequest{Group: group})
	if err != nil {
		return "", fmt.Errorf("ship the test binary to pool host %s: make a temporary directory: %w", poolName, err)
	}
	machine := &Host{s: h.s, client: h.client, name: poolName} // the host itself, should h be a Netns of it
	r, err := machine.putFile(group, exe, dir.Path)
	if err != nil {
		return "", fmt.Errorf("ship the test binary to pool host %s: %w", poolName, err)
	}
	b.key, b.path = key, path.Join(dir.Path, filepath.Base(exe))
	if r.Path != "" {
		b.path = r.Path
	}
	st.logger().Info("shipped the test binary for modules", "host", poolName, "path", b.path, "bytes", r.Bytes, "took", time.Since(start).Round(time.Millisecond))
	return b.path, nil
}

// remove removes the shipped binaries from their hosts.
func (sb *shippedBinaries) remove(session string) []error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	var errs []error
	for c, b := range sb.hosts {
		b.mu.Lock()
		shipped := b.path
		b.path = ""
		b.mu.Unlock()
		if shipped == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r, err := c.Restore(ctx, &pb.RestoreRequest{Group: agent.SessionGroup(session, moduleGroup)})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("remove the test binary shipped to %s: %w", shipped, err))
			continue
		}
		for _, e := range r.Errors {
			errs = append(errs, fmt.Errorf("remove the test binary shipped to %s: %s", shipped, e))
		}
	}
	return errs
}

// removeFrom removes the test binary shipped through c, if any: the
// session is about to give back that agent's lease. Should that fail, the
// binary is left to remove at the end (remove), which reports it.
func (sb *shippedBinaries) removeFrom(c pb.AgentClient, session string) {
	sb.mu.Lock()
	b := sb.hosts[c]
	sb.mu.Unlock()
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	r, err := c.Restore(ctx, &pb.RestoreRequest{Group: agent.SessionGroup(session, moduleGroup)})
	cancel()
	if err == nil && len(r.Errors) == 0 {
		b.path = ""
	}
}

// checkArch checks that a test binary for goos/goarch runs on a pool host
// whose agent runs on machine (as uname -m prints it; agents run Linux).
func checkArch(host, machine, goos, goarch string) error {
	if goos != "linux" {
		return fmt.Errorf("pool host %s runs Linux, this test binary is for %s: build it with GOOS=linux", host, goos)
	}
	if archname.Runs(goarch, machine) {
		return nil
	}
	mine := archname.Machine(goarch)
	if mine == "" {
		mine = goarch
	}
	fits := archname.GOARCHes(machine)
	hint := ""
	if len(fits) == 1 {
		hint = " (GOARCH=" + fits[0] + ")"
	}
	return fmt.Errorf("pool host %s is %s, this test binary is %s: build it for that arch%s", host, machine, mine, hint)
}
