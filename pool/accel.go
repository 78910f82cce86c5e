package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Accel is how the VM lab's QEMU runs its guests' code.
type Accel string

// The accelerators. AccelAuto probes KVM once per machine (ProbeKVM) and
// uses it when it works, TCG otherwise; AccelKVM fails when KVM does not
// work; AccelTCG emulates the CPU, which works everywhere, 10-50 times
// slower.
const (
	AccelAuto Accel = "auto"
	AccelKVM  Accel = "kvm"
	AccelTCG  Accel = "tcg"
)

// ParseAccel parses an accelerator's name: auto, kvm or tcg.
func ParseAccel(s string) (Accel, error) {
	switch a := Accel(s); a {
	case AccelAuto, AccelKVM, AccelTCG:
		return a, nil
	}
	return "", fmt.Errorf("unknown accelerator %q (want auto, kvm or tcg)", s)
}

// AccelProbeBound bounds a KVM probe as AccelChooser runs it: a probe
// that has not answered by then is taken as a failure (and left behind).
const AccelProbeBound = 8 * time.Second

// AccelChooser picks the VM lab's accelerator. Under AccelAuto it probes
// KVM once per machine: the verdict is kept in a file with the kernel and
// QEMU versions it was made on, and made again when either changed; with
// no cache directory (no $XDG_CACHE_HOME nor $HOME) the verdict lasts as
// long as the chooser. It writes its choice, with the reason KVM was not
// taken, to Log once.
type AccelChooser struct {
	// Probe tests KVM; nil means ProbeKVM.
	Probe func(context.Context) error
	// CacheFile keeps the verdict; "" means kvm-probe.json in lnst's
	// user cache directory, "-" no file.
	CacheFile string
	// Stamp names the machine state a verdict holds for; nil means the
	// kernel release and QEMU's version (accelStamp).
	Stamp func() string
	// Log receives the choice, once; nil discards it.
	Log io.Writer

	mu      sync.Mutex
	decided bool
	accel   Accel
	reason  string
}

// DefaultAccelChooser is the chooser StartVMLab uses: one per process, so
// the choice is probed and logged once per run.
var DefaultAccelChooser = &AccelChooser{Log: os.Stderr}

// accelVerdict is the cached verdict.
type accelVerdict struct {
	Stamp  string    `json:"stamp"`
	KVM    bool      `json:"kvm"`
	Reason string    `json:"reason,omitempty"`
	When   time.Time `json:"when"`
}

// Choose returns the accelerator mode resolves to. AccelTCG is itself;
// AccelKVM probes KVM (uncached: the user asked for it) and fails with
// the probe's reason when it does not work; AccelAuto (or "") uses the
// cached verdict or probes, and falls back to TCG.
func (c *AccelChooser) Choose(ctx context.Context, mode Accel) (Accel, error) {
	switch mode {
	case AccelTCG:
		return AccelTCG, nil
	case AccelKVM:
		if err := c.probe(ctx); err != nil {
			return "", fmt.Errorf("accelerator kvm: KVM does not work here: %w", err)
		}
		return AccelKVM, nil
	case AccelAuto, "":
	default:
		return "", fmt.Errorf("unknown accelerator %q (want auto, kvm or tcg)", mode)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.decided {
		return c.accel, nil
	}
	stamp := c.stamp()
	path := c.cacheFile()
	v, cached := readVerdict(path, stamp)
	if !cached {
		err := c.probe(ctx)
		if ctx.Err() != nil {
			return "", fmt.Errorf("KVM probe: %w", ctx.Err())
		}
		v = accelVerdict{Stamp: stamp, KVM: err == nil, When: time.Now().UTC()}
		if err != nil {
			v.Reason = err.Error()
		}
		writeVerdict(path, v)
	}
	c.decided = true
	how := "probed now"
	if cached {
		how = "verdict of " + v.When.Format(time.RFC3339) + " in " + path
	}
	if v.KVM {
		c.accel = AccelKVM
		c.logf("VM lab: KVM works (%s); using KVM\n", how)
	} else {
		c.accel, c.reason = AccelTCG, v.Reason
		c.logf("VM lab: %s (%s); using TCG\n", v.Reason, how)
	}
	return c.accel, nil
}

// Reason is why Choose fell back to TCG, "" if it did not.
func (c *AccelChooser) Reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

func (c *AccelChooser) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format, args...)
	}
}

// probe runs the probe within AccelProbeBound; one that does not return
// by then is abandoned.
func (c *AccelChooser) probe(ctx context.Context) error {
	probe := c.Probe
	if probe == nil {
		probe = ProbeKVM
	}
	ctx, cancel := context.WithTimeout(ctx, AccelProbeBound)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- probe(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// Give a probe that honours ctx a moment to say why.
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			return nil
		case <-time.After(200 * time.Millisecond):
			return fmt.Errorf("KVM: the probe did not finish in %v", AccelProbeBound)
		}
	}
}

func (c *AccelChooser) stamp() string {
	if c.Stamp != nil {
		return c.Stamp()
	}
	return accelStamp()
}

func (c *AccelChooser) cacheFile() string {
	switch c.CacheFile {
	case "-":
		return ""
	case "":
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(dir, "lnst", "kvm-probe.json")
	}
	return c.CacheFile
}

// accelStamp is what a KVM verdict depends on: the kernel release and
// QEMU's version.
func accelStamp() string {
	var u unix.Utsname
	kernel := "unknown"
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Release[:])
	}
	qemu := "no QEMU"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "qemu-system-x86_64", "--version").Output(); err == nil {
		qemu, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	return "kernel " + kernel + "; " + qemu
}

// readVerdict reads the verdict cached in path, if it was made on stamp.
func readVerdict(path, stamp string) (accelVerdict, bool) {
	var v accelVerdict
	if path == "" {
		return v, false
	}
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &v) != nil || v.Stamp != stamp {
		return accelVerdict{}, false
	}
	return v, true
}

// writeVerdict caches v in path (atomically: another process may read it
// meanwhile); a cache that cannot be written only costs a probe next run.
func writeVerdict(path string, v accelVerdict) {
	if path == "" {
		return
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".kvm-probe-*")
	if err != nil {
		return
	}
	_, err = f.Write(append(b, '\n'))
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
}
