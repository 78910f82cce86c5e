package agent

import (
	"os/exec"
	"syscall"
)

// daemon is a long-lived process the agent started on a host's thread (so
// in its namespaces) for itself, not as a job: teamd, or the Open vSwitch
// daemons of a VM lab guest. It dies with the agent (Pdeathsig).
type daemon struct {
	cmd  *exec.Cmd
	out  tail // its stdout and stderr
	done chan struct{}
	err  error // of cmd.Wait, once done is closed
}

// startDaemon starts the program at path with argv (argv[0] its name) on
// h's thread, in a process group of its own, and reaps it when it exits.
func (h *host) startDaemon(path string, argv []string) (*daemon, error) {
	d := &daemon{done: make(chan struct{})}
	d.cmd = &exec.Cmd{
		Path:   path,
		Args:   argv,
		Env:    jobEnv(),
		Stdout: &d.out,
		Stderr: &d.out,
		// None forks anything that would hold its output open; be safe.
		WaitDelay: strayGrace,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	// Fork on the host's thread so that it runs in its namespaces.
	if err := h.do(d.cmd.Start); err != nil {
		return nil, err
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// exited reports whether the daemon has exited (and been reaped).
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}
