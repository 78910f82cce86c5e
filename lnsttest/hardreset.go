package lnsttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
)

// A hard reset is what a reset button or a power cycle does: the host's
// kernel does not shut down and its agent gets no say. A pool machine is
// reset by the power command of the pool file, run on the controller; a
// VM lab host by its QEMU (system_reset over QMP).

// HardResetOpt is an option of Host.HardReset.
type HardResetOpt func(*hardResetOpts)

type hardResetOpts struct {
	timeout time.Duration
}

// HardResetTimeout bounds how long HardReset waits for the host to go
// down and come back (default DefaultRebootTimeout). The power command
// itself is bounded by its pool file timeout.
func HardResetTimeout(d time.Duration) HardResetOpt {
	return func(o *hardResetOpts) { o.timeout = d }
}

func hardResetOptions(opts []HardResetOpt) (hardResetOpts, error) {
	o := hardResetOpts{timeout: DefaultRebootTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("HardResetTimeout(%v) is not a positive duration", o.timeout)
	}
	return o, nil
}

// HardReset resets the host out of band, as its reset button would, and
// returns when its agent is back: on a pool machine it runs the host's
// power reset command from the pool file on the controller (its output
// goes to the log); on the VM lab it resets the guest through QEMU. It
// then waits for the agent to go down and to answer again as another
// process, and takes the test run's lease on it again. What the test
// changed on the host before is taken back by the new agent from its
// journal, as after a crash.
//
// A pool host without a power command, and a host of the namespace lab,
// skip the test.
func (h *Host) HardReset(t testing.TB, opts ...HardResetOpt) {
	t.Helper()
	o, err := hardResetOptions(opts)
	if err != nil {
		t.Fatalf("%s: HardReset: %v", h.name, err)
	}
	var ph *pool.Host // a pool machine with a power command
	switch {
	case h.s.pool != nil:
		name, _ := h.poolConn()
		ph = h.s.pool.host(name)
		if ph == nil || ph.Power.Reset == "" {
			t.Skipf("hard reset requires a power command: pool host %s of %s has no power: {reset: ...}", name, h.s.pool.p.Path)
		}
	case h.vm == nil:
		t.Skipf("hard reset requires a pool machine with a power command or the VM lab (-lnst.lab=vm); lab host %s is a network namespace", h.name)
	}
	if h.id != "" {
		t.Fatalf("%s: HardReset: this handle is a network namespace (Netns) of its host; reset the host itself", h.name)
	}
	h.checkAllowed(t, pool.AllowReset, "HardReset")
	st := h.s.state(t)
	start := time.Now()
	deadline := start.Add(o.timeout)
	before, err := h.waitUp(minTime(deadline, start.Add(isUpWithin)))
	if err != nil {
		t.Fatalf("%s: HardReset: the agent does not answer: %v", h.name, err)
	}
	st.logger().Info("hard reset", "host", h.name, "kernel", before.Kernel, "timeout", o.timeout)
	if ph != nil {
		out, err := runPower(ph)
		st.logger().Info("power command", "host", h.name, "pool host", ph.Name, "command", ph.Power.Reset, "output", out)
		if err != nil {
			t.Fatalf("%s: HardReset: pool host %s: %v; output:\n%s", h.name, ph.Name, err, out)
		}
	} else {
		ctx, cancel := context.WithTimeout(rpcCtx(t), 30*time.Second)
		err := h.vm.in.ResetGuest(ctx, h.vm.name)
		cancel()
		if err != nil {
			t.Fatalf("%s: HardReset: %v", h.name, err)
		}
	}
	if err := h.waitReset(deadline, before); err != nil {
		t.Fatalf("%s: HardReset: the agent still answers as before, %v after the reset", h.name, o.timeout)
	}
	st.logger().Info("host down", "host", h.name, "after", time.Since(start).Round(time.Millisecond))
	h.redialVM()
	after, err := h.waitUp(deadline)
	if err != nil {
		t.Fatalf("%s: HardReset: the host did not come back within %v: %v%s", h.name, o.timeout, err, h.vmConsole())
	}
	if after.BootId == before.BootId && after.Pid == before.Pid {
		t.Fatalf("%s: HardReset: the agent answers as the same process of the same boot (boot id %s, pid %d): the host was not reset", h.name, after.BootId, after.Pid)
	}
	if err := h.rejoin(); err != nil {
		t.Fatalf("%s: HardReset: the host is back but %v", h.name, err)
	}
	st.logger().Info("host back", "host", h.name, "after", time.Since(start).Round(time.Millisecond), "kernel", after.Kernel)
}

// waitReset polls the agent until it no longer answers, or answers as
// another process or from another boot (it came back between two polls).
func (h *Host) waitReset(deadline time.Time, before *pb.HelloReply) error {
	return poll(deadline, func(ctx context.Context) (bool, error) {
		r, err := h.client.Hello(ctx, &pb.HelloRequest{})
		return err != nil || r.BootId != before.BootId || r.Pid != before.Pid, nil
	})
}

// runPower runs a pool host's power reset command with /bin/sh -c on the
// controller, bounded by its timeout, and returns its output. The command
// sees the host's name and agent address as LNST_POOL_HOST and
// LNST_POOL_AGENT; when it times out, its process group is killed.
func runPower(ph *pool.Host) (string, error) {
	timeout := ph.PowerTimeout()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := poolShell(ctx, ph, ph.Power.Reset)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // it succeeded; something it started still holds its output
	}
	text := strings.TrimRight(out.String(), "\n")
	switch {
	case ctx.Err() != nil:
		return text, fmt.Errorf("power command %q did not finish within %v (the pool file's power timeout); killed it", ph.Power.Reset, timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return text, fmt.Errorf("power command %q failed: %v", ph.Power.Reset, ee.ProcessState)
		}
		return text, fmt.Errorf("power command %q: %w", ph.Power.Reset, err)
	}
	return text, nil
}
