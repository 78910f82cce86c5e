package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ExecProvisioner reserves machines by running a user's commands: the way
// to plug in Beaker, OpenStack or a cloud. Its commands run under
// /bin/sh -c in the pool file's directory, each in a process group of its
// own, with LNST_PROVISIONER set to the provisioner's name.
//
// The reserve command reserves one machine and prints, one per line on
// its stdout:
//
//	id=RESERVATION-ID      as soon as the reservation exists
//	address=HOST:PORT      once the machine's lnst-agent serves (or unix:///PATH)
//
// and exits 0. Other lines are ignored. When the reservation is cancelled
// (Ctrl-C, SIGTERM, the timeout), the command's process group gets
// SIGTERM, and SIGKILL execKillGrace later; a reserve command that has
// not printed its id= line yet must undo its reservation itself on
// SIGTERM. Once id= is printed, the reservation is the controller's: a
// reserve command that fails or is cancelled after it is followed by the
// release command. A process the reserve command leaves running (a local
// agent) must start a session of its own (setsid) and close stdout.
//
// The release command gets LNST_RESERVATION_ID and LNST_AGENT (the
// address, "" if none was printed) and exits 0 once the machine is
// released, also when the reservation is already gone (a reserve command
// that undid itself on a SIGTERM just after printing its id). The optional alive command gets the same variables and exits
// 0 if the machine still serves; without it a machine is alive while its
// agent answers.
type ExecProvisioner struct {
	spec ExecSpec
	log  io.Writer
	held chan struct{} // one token per machine held or being reserved
}

// execKillGrace is how long a cancelled command has between SIGTERM and
// SIGKILL.
const execKillGrace = 3 * time.Second

// NewExecProvisioner makes the provisioner of spec; its commands' stderr
// goes to log as well as into errors (nil: errors only).
func NewExecProvisioner(spec ExecSpec, log io.Writer) *ExecProvisioner {
	if spec.Timeout <= 0 {
		spec.Timeout = DefaultExecTimeout
	}
	if spec.Idle <= 0 {
		spec.Idle = defaultIdle
	}
	if log == nil {
		log = io.Discard
	}
	return &ExecProvisioner{spec: spec, log: log, held: make(chan struct{}, max(spec.Max, 1))}
}

// Name is the provisioner's name in the pool file.
func (e *ExecProvisioner) Name() string { return e.spec.Name }

// Max is the pool file's max.
func (e *ExecProvisioner) Max() int { return cap(e.held) }

// Spec is the provisioner's configuration, with defaults filled in.
func (e *ExecProvisioner) Spec() ExecSpec { return e.spec }

// Template is the pool host of the provisioner's n-th machine (ExecSpec.Template).
func (e *ExecProvisioner) Template(n int) Host { return e.spec.Template(n) }

// Idle is how long a machine no recipe uses is kept (the pool file's idle).
func (e *ExecProvisioner) Idle() time.Duration { return e.spec.Idle }

// Reserve runs the reserve command, after waiting for one of the Max
// machines to be free, and returns the machine it printed. The request
// is ignored: every machine is e.Spec()'s template. On failure or when
// ctx ends, a reservation whose id was printed is released before Reserve
// returns.
func (e *ExecProvisioner) Reserve(ctx context.Context, _ Request) (*Machine, error) {
	select {
	case e.held <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("provisioner %s: waiting for one of its %d machines to be free: %w", e.Name(), e.Max(), context.Cause(ctx))
	}
	m, err := e.reserve(ctx)
	if err != nil {
		<-e.held
	}
	return m, err
}

func (e *ExecProvisioner) reserve(ctx context.Context) (*Machine, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, e.spec.Timeout, fmt.Errorf("reserve took longer than the timeout, %v", e.spec.Timeout))
	defer cancel()
	out := &keyLines{}
	err := e.run(ctx, "reserve", e.spec.Reserve, nil, out)
	id, addr := out.get("id"), out.get("address")
	if err == nil && addr == "" {
		err = errors.New("the reserve command printed no address= line (want address=HOST:PORT or address=unix:///PATH)")
	}
	if err == nil {
		err = checkAgent(addr)
	}
	if err == nil && !strings.HasPrefix(addr, "unix://") && e.spec.TLS.CA == "" && !e.spec.Insecure && !e.spec.InsecureAnyAddress {
		err = fmt.Errorf("agent %q is TCP: give the provisioner tls {ca, cert, key}, or insecure: true for plain TCP on loopback", addr)
	}
	if err == nil && e.spec.TLS.CA == "" {
		// The address comes from the reserve command: insecure is
		// checked on it as on a pool host's.
		err = checkInsecure(addr, e.spec.Insecure, e.spec.InsecureAnyAddress)
	}
	if id == "" {
		id = addr
	}
	m := &Machine{Provisioner: e.Name(), ID: id, Host: e.spec.Template(0)}
	m.Host.Name, m.Host.Agent = e.Name()+"/"+id, addr
	if err == nil {
		return m, nil
	}
	err = fmt.Errorf("provisioner %s: reserve: %w", e.Name(), err)
	if id != "" {
		// The reservation exists: give it back, whatever happened.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), e.spec.Timeout)
		defer rcancel()
		if rerr := e.release(rctx, m); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		err = fmt.Errorf("%w (reservation %s released)", err, id)
	}
	return nil, err
}

// Alive runs the alive command, or without one asks the machine's agent.
func (e *ExecProvisioner) Alive(ctx context.Context, m *Machine) error {
	if e.spec.Alive == "" {
		return agentAlive(ctx, m.Host)
	}
	ctx, cancel := context.WithTimeout(ctx, e.spec.Timeout)
	defer cancel()
	if err := e.run(ctx, "alive", e.spec.Alive, machineEnv(m), nil); err != nil {
		return fmt.Errorf("provisioner %s: machine %s: alive: %w", e.Name(), m.ID, err)
	}
	return nil
}

// Release runs the release command for m and frees its place among Max.
func (e *ExecProvisioner) Release(ctx context.Context, m *Machine) error {
	if !m.markReleased() {
		return nil
	}
	defer func() { <-e.held }()
	return e.release(ctx, m)
}

func (e *ExecProvisioner) release(ctx context.Context, m *Machine) error {
	ctx, cancel := context.WithTimeoutCause(ctx, e.spec.Timeout, fmt.Errorf("release took longer than the timeout, %v", e.spec.Timeout))
	defer cancel()
	if err := e.run(ctx, "release", e.spec.Release, machineEnv(m), nil); err != nil {
		return fmt.Errorf("provisioner %s: release reservation %s: %w", e.Name(), m.ID, err)
	}
	return nil
}

func machineEnv(m *Machine) []string {
	return []string{"LNST_RESERVATION_ID=" + m.ID, "LNST_AGENT=" + m.Host.Agent}
}

// run runs one command of the provisioner in a process group of its own
// and waits for it. When ctx ends the group gets SIGTERM, then SIGKILL
// execKillGrace later; a command that failed or was cut short leaves no
// process of its group behind.
func (e *ExecProvisioner) run(ctx context.Context, what, command string, env []string, stdout io.Writer) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Dir = e.spec.Dir
	cmd.Env = append(append(os.Environ(), "LNST_PROVISIONER="+e.spec.Name), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = execKillGrace
	if stdout == nil {
		stdout = io.Discard
	}
	stderr := &tailBuffer{max: 2048}
	cmd.Stdout = stdout
	cmd.Stderr = io.MultiWriter(stderr, prefixWriter{w: e.log, prefix: e.spec.Name + " " + what + ": "})
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s command: %w", what, err)
	}
	err := cmd.Wait()
	if err != nil || ctx.Err() != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what is left of the group
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s command %q stopped: %w%s", what, command, context.Cause(ctx), stderr.suffix())
	}
	if err != nil {
		return fmt.Errorf("%s command %q: %w%s", what, command, err, stderr.suffix())
	}
	return nil
}

// keyLines collects key=value lines written to it.
type keyLines struct {
	mu   sync.Mutex
	part []byte
	kv   map[string]string
}

func (k *keyLines) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.part = append(k.part, p...)
	for {
		i := bytes.IndexByte(k.part, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(k.part[:i]))
		k.part = k.part[i+1:]
		if key, v, ok := strings.Cut(line, "="); ok && (key == "id" || key == "address") {
			if k.kv == nil {
				k.kv = map[string]string{}
			}
			k.kv[key] = strings.TrimSpace(v)
		}
	}
	return len(p), nil
}

func (k *keyLines) get(key string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kv[key]
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

// suffix is ": stderr: ..." for an error, "" if nothing was written.
func (t *tailBuffer) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return ""
	}
	return "; stderr: " + s
}

// prefixWriter writes to w with prefix before each write.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if p.w == io.Discard {
		return len(b), nil
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			io.WriteString(p.w, p.prefix+line)
		}
	}
	return len(b), nil
}
