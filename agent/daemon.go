package agent

import (
	"os/exec"
	"syscall"
	"time"
)

// daemonStopTimeout bounds how long stopping a daemon waits for it to
// exit when asked, and again after it was killed.
const daemonStopTimeout = 5 * time.Second

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
	d.cmd = &exec.Cmd{Path: path, Args: argv, Stdout: &d.out, Stderr: &d.out}
	if err := h.startOwn(d.cmd); err != nil {
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

// startOwn starts cmd, a program the agent runs for itself (a daemon,
// ovs-vsctl), on h's thread so that it runs in h's namespaces: with the
// jobs' environment, in a process group of its own, killed if the agent
// dies, and with strayGrace for a child that holds its output open.
func (h *host) startOwn(cmd *exec.Cmd) error {
	cmd.Env = jobEnv()
	cmd.WaitDelay = strayGrace
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return h.do(cmd.Start)
}

// stopResult is how a daemon ended when it was stopped.
type stopResult int

const (
	stoppedAsked    stopResult = iota // it exited when asked (or had already)
	stoppedKilled                     // it did not, and SIGKILL ended it
	stoppedSurvived                   // not even SIGKILL ended it in time
)

// stop asks the daemon to exit with ask, waits daemonStopTimeout, then
// kills its process group and waits as long again. The group is killed
// also after a clean exit, for strays it left.
func (d *daemon) stop(ask func()) stopResult {
	if d.exited() {
		return stoppedAsked
	}
	pgid := d.cmd.Process.Pid
	ask()
	select {
	case <-d.done:
		syscall.Kill(-pgid, syscall.SIGKILL)
		return stoppedAsked
	case <-time.After(daemonStopTimeout):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-d.done:
		return stoppedKilled
	case <-time.After(daemonStopTimeout):
		return stoppedSurvived
	}
}
