package lnsttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"github.com/lnst-go/lnst/pool/vmimage"
	"github.com/lnst-go/lnst/results"
)

// session is the state of one test binary run, made by Main.
type session struct {
	mu      sync.Mutex
	lab     *pool.Lab
	labErr  error
	vmLab   *pool.Lab
	vmErr   error
	clean   cleanCheck
	states  map[testing.TB]*testState
	groups  int
	probed  *pb.ProbeReply
	results *runResults
	pool    *staticPool // nil: the local lab
	// id names this test process's session on agents: its journal groups
	// are "<id>/<test>#<n>", and its leases are held under it.
	id string
	// shipped are the test binaries shipped to pool hosts for modules.
	shipped shippedBinaries
	// rr tracks recipes to rerun on new machines (-lnst.reruns).
	rr pool.Reruns
	// destructive maps a test's name to the kinds it declared with
	// Destructive.
	destructive map[string][]string
	// interrupted is closed when SIGINT or SIGTERM came: the handler
	// ends the process.
	interrupted chan struct{}
	// live writes the run's events and results as it goes (live.go); nil
	// without -lnst.results.
	live *liveRun
	// tcBase are the qdiscs pool hosts' matched interfaces had when the
	// run first used them (tcbaseline.go).
	tcBase tcBaselines
}

var (
	sessMu sync.Mutex
	sess   *session
)

func current() *session {
	sessMu.Lock()
	defer sessMu.Unlock()
	return sess
}

// Main runs the tests of a recipe package; call it from TestMain. It reads
// the -lnst.* flags (and LNST_* variables), runs the tests, and tears the
// local lab down, also when the run is interrupted with SIGINT or SIGTERM.
// In a test binary re-executed as the lab's agent, it serves as the agent
// instead and never runs tests; started by Host.RunModule, it runs the
// module and exits.
func Main(m *testing.M) {
	if agent.IsLabAgent() {
		os.Exit(agent.ServeLab())
	}
	if agent.IsVMAgent() {
		os.Exit(agent.ServeVM())
	}
	if name, ok := moduleMode(); ok {
		os.Exit(serveModule(name)) // a module started by Host.RunModule
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	if err := loadConfig(flag.CommandLine, os.Getenv); err != nil {
		fmt.Fprintf(os.Stderr, "lnsttest: %v\n", err)
		os.Exit(2)
	}
	if code, exit := paramsCheck(os.Stdout, os.Stderr, os.Getenv); exit {
		os.Exit(code)
	}
	kind := "lab"
	if cfg.pool != "" {
		kind = "pool"
	}
	s := &session{states: map[testing.TB]*testState{}, results: newRunResults(), id: sessionID(kind), interrupted: make(chan struct{})}
	s.rr.Limit = rerunLimit()
	if cfg.pool != "" {
		p, err := loadPool(cfg.pool)
		if err != nil {
			fmt.Fprintf(os.Stderr, "lnsttest: -lnst.pool: %v\n", err)
			os.Exit(2)
		}
		if s.pool, err = newStaticPool(p, s.id, history()); err != nil {
			fmt.Fprintf(os.Stderr, "lnsttest: -lnst.pool: %v\n", err)
			os.Exit(2)
		}
		s.pool.shipped = &s.shipped
	}
	if err := s.openResults(); err != nil {
		fmt.Fprintf(os.Stderr, "lnsttest: %v\n", err)
		os.Exit(2)
	}
	sessMu.Lock()
	sess = s
	sessMu.Unlock()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		close(s.interrupted)
		// What ran when the signal came, before the restore ends it.
		running := s.running(context.Background(), false)
		fmt.Fprintf(os.Stderr, "lnsttest: %v: restoring every host and removing the lab\n", sig)
		if err := s.close(); err != nil {
			fmt.Fprintf(os.Stderr, "lnsttest: %v\n", err)
		}
		for _, err := range []error{s.endRun(results.StateInterrupted), s.writeRun(results.StateInterrupted, running)} {
			if err != nil {
				fmt.Fprintf(os.Stderr, "lnsttest: %v\n", err)
			}
		}
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	}()

	stopWatch := s.watchDeadline()
	code := m.Run()
	stopWatch()
	s.waitIfInterrupted()
	code = s.rerun(m, code)
	// Every recipe has ended and restored: the lab's hosts must be as the
	// lab made them (not checked after a signal: recipes were cut short).
	for _, err := range []error{s.checkClean(), s.close(), s.endRun(results.StateEnded), s.writeResults(results.StateEnded)} {
		if err != nil {
			fmt.Fprintf(os.Stderr, "lnsttest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// history reads how long each recipe ran in an earlier run, for the
// pool's scheduling: -lnst.history, else the results.json a previous run
// left in -lnst.results. An unreadable history only loses the ordering.
func history() map[string]time.Duration {
	path := cfg.history
	if path == "" && cfg.results != "" {
		path = filepath.Join(cfg.results, results.FileName)
		if _, err := os.Stat(path); err != nil {
			return nil
		}
	}
	if path == "" {
		return nil
	}
	run, err := results.Read(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lnsttest: -lnst.history: %v (scheduling without it)\n", err)
		return nil
	}
	expect := map[string]time.Duration{}
	for _, r := range run.Recipes {
		expect[r.Name] = time.Duration(r.Duration)
	}
	return expect
}

// sessionID is a new id for this test process's session on agents,
// "<kind>-<this machine's host name>-<pid>-<random>": agents name it in
// their logs and in a refused lease, so it says what holds the machine
// (kind "pool" or "lab") and from where.
func sessionID(kind string) string {
	host, _ := os.Hostname()
	var r [6]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s-%s-%d-%s", kind, strings.ReplaceAll(host, "/", "_"), os.Getpid(), hex.EncodeToString(r[:]))
}

// labNow returns the local lab, starting it on first use.
func (s *session) labNow() (*pool.Lab, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lab == nil && s.labErr == nil {
		s.lab, s.labErr = pool.StartLab(labOptions())
	}
	return s.lab, s.labErr
}

// vmLabNow returns the VM lab, building its image and starting it on
// first use.
func (s *session) vmLabNow() (*pool.Lab, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vmLab == nil && s.vmErr == nil {
		s.vmLab, s.vmErr = startVMLab()
	}
	return s.vmLab, s.vmErr
}

func startVMLab() (*pool.Lab, error) {
	ovs, _ := strconv.ParseBool(cfg.vmOvs) // checked by loadConfig
	img, err := vmimage.Build(context.Background(), vmimage.Options{Cache: cfg.vmCache, Kernel: cfg.vmKernel, Modules: cfg.vmModules, OpenVSwitch: ovs, Log: os.Stderr})
	if err != nil {
		return nil, fmt.Errorf("VM lab image: %w", err)
	}
	mem, _ := strconv.Atoi(cfg.vmMemory)      // checked by loadConfig
	cpus, _ := strconv.Atoi(cfg.vmCPUs)       // checked by loadConfig
	maxBoot, _ := strconv.Atoi(cfg.vmMaxBoot) // checked by loadConfig

	accel, _ := pool.ParseAccel(cfg.vmAccel) // checked by loadConfig
	l, err := pool.StartVMLab(labOptions(),
		pool.VMOptions{Image: img, Accel: accel, MemoryMiB: mem, CPUs: cpus, MaxBooting: maxBoot, AgentLogLevel: cfg.agentLog, Log: os.Stderr})
	if err != nil && accel == pool.AccelKVM {
		return nil, fmt.Errorf("-lnst.vm.accel=kvm: %w", err)
	}
	return l, err
}

// labOptions are the options of the local labs, from the -lnst.* flags.
func labOptions() pool.LabOptions {
	// Require takes the clean check's snapshot of every fresh instance
	// (snapInstance): the lab takes it as it builds each host.
	return pool.LabOptions{AgentLogLevel: cfg.agentLog, UserNS: rootless(), IfNames: pool.IfNaming(cfg.ifnames), SnapshotFresh: true}
}

// rootless reports whether the lab runs in a user namespace: asked for
// with -lnst.lab=rootless, or because this process is not root.
func rootless() bool { return cfg.lab == "rootless" || os.Geteuid() != 0 }

// close tears the lab down, or with a pool restores what running tests
// changed on its machines (for an interrupted run); it is safe to call
// more than once.
// closeRestoreTimeout bounds how long closing the session waits for the
// agents to restore what recipes cut short (by a signal) had changed.
const closeRestoreTimeout = 2 * time.Minute

func (s *session) close() error {
	if s.pool != nil {
		s.mu.Lock()
		var live []*testState
		for _, st := range s.states {
			live = append(live, st)
		}
		s.mu.Unlock()
		// An agent that does not answer (its machine went away) restores
		// on its own when the run's lease lapses; the others are not kept
		// waiting for it.
		ctx, cancel := context.WithTimeout(context.Background(), closeRestoreTimeout)
		defer cancel()
		var errs []error
		for _, st := range live {
			errs = append(errs, st.restoreQuiet(ctx)...)
		}
		errs = append(errs, s.shipped.remove(s.id)...)
		errs = append(errs, s.pool.close())
		return errors.Join(errs...)
	}
	var errs []error
	s.mu.Lock()
	lab, vmLab := s.lab, s.vmLab
	s.lab, s.vmLab = nil, nil
	if s.labErr == nil {
		s.labErr = fmt.Errorf("the lab is closed")
	}
	if s.vmErr == nil {
		s.vmErr = fmt.Errorf("the VM lab is closed")
	}
	s.mu.Unlock()
	for _, l := range []*pool.Lab{lab, vmLab} {
		if l != nil {
			errs = append(errs, l.Close())
		}
	}
	return errors.Join(errs...)
}

// state returns the per-test state of t, making it (and registering its
// restore and summary with t.Cleanup) on first use.
func (s *session) state(t testing.TB) *testState {
	// Helper: the summary logged at cleanup is shown at the recipe's line
	// that first used its hosts.
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.states[t]; ok {
		return st
	}
	s.groups++
	st := &testState{t: t, group: agent.SessionGroup(s.id, fmt.Sprintf("%s#%d", t.Name(), s.groups)), clients: map[pb.AgentClient]bool{}, start: time.Now()}
	s.states[t] = st
	s.recipeStarted(st)
	s.event(results.Event{Type: results.EventRecipeStarted, Recipe: t.Name(), Time: st.start})
	t.Cleanup(func() {
		t.Helper()
		st.restore()
		st.printSummary()
		s.addRecipe(st)
		s.recipeEnded(t)
		s.mu.Lock()
		delete(s.states, t)
		s.mu.Unlock()
	})
	return st
}
