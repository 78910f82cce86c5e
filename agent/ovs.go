package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// An Open vSwitch bridge is made by ovs-vsctl, which asks ovsdb-server to
// add it; ovs-vswitchd then makes its internal device (kind
// "openvswitch") in the network namespace ovs-vswitchd runs in. The agent
// runs ovs-vsctl on the host's thread (in its namespaces, as teamd) and
// waits for the device to appear there.
//
// The undo of its CreateLink is an opDeleteLink whose Kind is ovsKind: it
// runs "ovs-vsctl del-br NAME" instead of deleting the device with
// netlink, which the kernel refuses for an internal device of Open
// vSwitch (and which would leave the bridge in ovsdb).
const (
	// ovsKind is the kind of an Open vSwitch bridge's device.
	ovsKind = "openvswitch"
	// ovsTimeout is ovs-vsctl's --timeout, in seconds: how long it waits
	// for ovsdb-server (and, for add-br and del-br, for ovs-vswitchd to
	// take the change).
	ovsTimeout = 10
	// ovsLinkTimeout bounds how long CreateLink waits for the bridge's
	// device once ovs-vsctl add-br returned.
	ovsLinkTimeout = 10 * time.Second
	// ovsOutputSize is how much of ovs-vsctl's output an error quotes.
	ovsOutputSize = 2 << 10
)

// ovsVsctlArgs returns the command line of ovs-vsctl running cmd (add-br
// NAME...) with the agent's timeout.
func ovsVsctlArgs(cmd ...string) []string {
	return append([]string{"ovs-vsctl", "--timeout=" + strconv.Itoa(ovsTimeout)}, cmd...)
}

// ovsAddBrArgs validates b and returns the command line that makes it.
func ovsAddBrArgs(b devices.OvsBridge) ([]string, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return ovsVsctlArgs("add-br", b.Name), nil
}

// ovsDelBrArgs returns the command line that deletes bridge name; a bridge
// already gone is not an error (--if-exists), so that an undo can be
// tried twice.
func ovsDelBrArgs(name string) []string {
	return ovsVsctlArgs("--if-exists", "del-br", name)
}

// createUndoKind is the Kind of the undo a CreateLink of spec journals:
// ovsKind for an Open vSwitch bridge, "" for every other device.
func createUndoKind(spec devices.Spec) string {
	if _, ok := spec.(devices.OvsBridge); ok {
		return ovsKind
	}
	return ""
}

// errNoOvsVsctl says ovs-vsctl is not in the agent's PATH.
var errNoOvsVsctl = errors.New("requires ovs-vsctl (Debian: apt-get install openvswitch-switch), which is not in the agent's PATH")

// ovsVsctl runs ovs-vsctl with argv (argv[0] is "ovs-vsctl") on h's
// thread, so in its namespaces, and returns its output; an error quotes
// its stderr.
func (h *host) ovsVsctl(argv []string) (string, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return "", fmt.Errorf("%w: %v", errNoOvsVsctl, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ovsTimeout)*time.Second+5*time.Second)
	defer cancel()
	// stdout is what callers parse (list-br): kept whole, not a tail,
	// whose String stands in "(no output)" for none.
	var stdout bytes.Buffer
	var stderr tail
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := h.startOwn(cmd); err != nil {
		return "", fmt.Errorf("start %s: %w", strings.Join(argv, " "), err)
	}
	if err := cmd.Wait(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// createOvsBridge makes Open vSwitch bridge b on h with ovs-vsctl add-br
// and waits until its device exists. The caller holds h.mu.
func (h *host) createOvsBridge(b devices.OvsBridge) (undo, error) {
	u := undo{Op: opDeleteLink, Link: b.Name, Kind: ovsKind}
	fail := func(err error) (undo, error) {
		return u, fmt.Errorf("create openvswitch bridge %q on %s: %w", b.Name, h.label(), err)
	}
	argv, err := ovsAddBrArgs(b)
	if err != nil {
		return u, badArg(err)
	}
	if _, err := h.nl.LinkByName(b.Name); err == nil {
		return fail(syscall.EEXIST)
	}
	if err := h.ensureOwnOvs(); err != nil {
		return fail(err)
	}
	if _, err := h.ovsVsctl(argv); err != nil {
		return fail(errors.Join(err, h.stopOwnOvsIfUnused()))
	}
	if h.awaitOvsLink(b.Name, true) {
		return u, nil
	}
	err = fmt.Errorf("%s returned, but no device %q appeared on %s in %v (ovs-vswitchd makes it in the network namespace it runs in; is it running there?)",
		strings.Join(argv, " "), b.Name, h.label(), ovsLinkTimeout)
	if _, derr := h.ovsVsctl(ovsDelBrArgs(b.Name)); derr != nil {
		err = errors.Join(err, fmt.Errorf("take it back: %w", derr))
	}
	return fail(errors.Join(err, h.stopOwnOvsIfUnused()))
}

// delOvsBridge is the undo of createOvsBridge: ovs-vsctl del-br. A bridge
// whose device is not on h is left alone (a crash between journaling the
// undo and making the bridge). The caller holds h.mu.
func (h *host) delOvsBridge(name string) error {
	if err := (devices.OvsBridge{Name: name}).Validate(); err != nil {
		return err
	}
	if _, err := h.nl.LinkByName(name); err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nothingToUndo("%s has no device %q", h.label(), name)
		}
		return fmt.Errorf("find %q: %w", name, err)
	}
	if _, err := h.ovsVsctl(ovsDelBrArgs(name)); err != nil {
		return fmt.Errorf("delete openvswitch bridge %q on %s: %w", name, h.label(), err)
	}
	// ovs-vsctl returns once ovs-vswitchd has reconfigured: the device is
	// gone by then, but do not trust a slow one.
	if !h.awaitOvsLink(name, false) {
		return fmt.Errorf("delete openvswitch bridge %q on %s: ovs-vsctl del-br returned, but the device is still there after %v", name, h.label(), ovsLinkTimeout)
	}
	if err := h.stopOwnOvsIfUnused(); err != nil {
		return fmt.Errorf("after deleting openvswitch bridge %q on %s: stop Open vSwitch: %w", name, h.label(), err)
	}
	return nil
}

// awaitOvsLink polls, up to ovsLinkTimeout, until device name is on h
// (present) or is not (!present), and reports whether it came to that:
// ovs-vswitchd makes and deletes a bridge's device after ovs-vsctl.
func (h *host) awaitOvsLink(name string, present bool) bool {
	deadline := time.Now().Add(ovsLinkTimeout)
	for {
		if _, err := h.nl.LinkByName(name); (err == nil) == present {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probeOvs reports whether this machine can make Open vSwitch bridges:
// ovs-vsctl is in the PATH and "ovs-vsctl show" answers (ovsdb-server
// runs), or the agent may start Open vSwitch itself (enableOwnOvs) and
// has all it needs to. If not, why says what is missing.
func probeOvs() (ok bool, why string) {
	path, err := exec.LookPath("ovs-vsctl")
	if err != nil {
		return false, errNoOvsVsctl.Error()
	}
	ownOvs.mu.Lock()
	own, running := ownOvs.enabled, ownOvs.d != nil
	ownOvs.mu.Unlock()
	if own && !running {
		if why := ovsStartable(); why != "" {
			return false, why
		}
		return true, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--timeout=5", "show")
	cmd.Env = jobEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = strayGrace
	if err := cmd.Run(); err != nil {
		s := strings.TrimSpace(out.String())
		if len(s) > ovsOutputSize {
			s = s[:ovsOutputSize]
		}
		return false, fmt.Sprintf("ovs-vsctl show: %v: %s (are ovsdb-server and ovs-vswitchd running?)", err, s)
	}
	return true, ""
}

// The agent of a VM lab guest runs Open vSwitch itself: the image carries
// its daemons but no init system starts them. The first OvsBridge starts
// ovsdb-server, on a database made afresh in a temporary directory, and
// ovs-vswitchd, in the guest's own namespaces; the undo that deletes the
// last bridge stops them (ovs-vswitchd with exit --cleanup, which deletes
// its datapath, ovs-system), and so does the agent's exit.

// Paths of the Open vSwitch the agent runs.
const (
	// ovsRunDir is where ovs-vsctl looks for ovsdb-server's socket and
	// ovs-appctl for the daemons' pid files and control sockets.
	ovsRunDir = "/run/openvswitch"
	// ovsLogDir holds the daemons' logs, where Open vSwitch keeps them on
	// any machine (a recipe may read them when it fails).
	ovsLogDir = "/var/log/openvswitch"
	// ovsSchema is the database schema ovsdb-tool makes the database of.
	ovsSchema = "/usr/share/openvswitch/vswitch.ovsschema"
	// ovsDatapath is the datapath ovs-vswitchd makes for its bridges.
	ovsDatapath = "ovs-system"
)

// ownOvs holds the Open vSwitch daemons the agent started.
var ownOvs struct {
	mu sync.Mutex
	// enabled lets the agent start them (a VM lab guest's agent).
	enabled bool
	d       *ovsDaemons
}

// enableOwnOvs lets the agent start ovsdb-server and ovs-vswitchd for the
// first Open vSwitch bridge made on its own host, and stop them when the
// last one is deleted: for a VM lab guest, whose image carries Open
// vSwitch but no init system to start it. stopOwnOvs stops them.
func enableOwnOvs() {
	ownOvs.mu.Lock()
	ownOvs.enabled = true
	ownOvs.mu.Unlock()
}

// stopOwnOvs stops the Open vSwitch daemons the agent started, if any.
func stopOwnOvs() error {
	ownOvs.mu.Lock()
	defer ownOvs.mu.Unlock()
	d := ownOvs.d
	ownOvs.d = nil
	if d == nil {
		return nil
	}
	return d.stop()
}

// ovsDaemons are ovsdb-server and ovs-vswitchd as the agent runs them.
type ovsDaemons struct {
	dir   string // the database and the control sockets
	procs []*ovsProc
}

// ovsProc is one daemon.
type ovsProc struct {
	name string
	*daemon
}

// ctl is the daemon's control socket, where ovs-appctl -t name looks.
func (p *ovsProc) ctl() string {
	return fmt.Sprintf("%s/%s.%d.ctl", ovsRunDir, p.name, p.cmd.Process.Pid)
}

// ovsStartable says what this machine lacks to run Open vSwitch's daemons,
// "" if nothing.
func ovsStartable() string {
	var missing []string
	for _, c := range []string{"ovs-vsctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd"} {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if _, err := os.Stat(ovsSchema); err != nil {
		missing = append(missing, ovsSchema)
	}
	if _, err := os.Stat("/sys/module/openvswitch"); err != nil {
		if out, err := exec.Command("modprobe", "openvswitch").CombinedOutput(); err != nil {
			missing = append(missing, fmt.Sprintf("the kernel module openvswitch (modprobe: %v: %s)", err, strings.TrimSpace(string(out))))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "requires " + strings.Join(missing, ", ")
}

// ensureOwnOvs starts Open vSwitch's daemons on h if the agent may and
// has not yet. The caller holds h.mu.
func (h *host) ensureOwnOvs() error {
	ownOvs.mu.Lock()
	defer ownOvs.mu.Unlock()
	if !ownOvs.enabled || h.work != nil {
		return nil
	}
	if d := ownOvs.d; d != nil {
		for _, p := range d.procs {
			if p.exited() {
				ownOvs.d = nil
				return fmt.Errorf("%s the agent started exited (%v): %s", p.name, p.err, p.out.String())
			}
		}
		return nil
	}
	if why := ovsStartable(); why != "" {
		return fmt.Errorf("start Open vSwitch: %s", why)
	}
	d, err := h.startOvs()
	if err != nil {
		return fmt.Errorf("start Open vSwitch: %w", err)
	}
	ownOvs.d = d
	return nil
}

// startOvs makes a database and starts ovsdb-server and ovs-vswitchd on
// it, in h's namespaces.
func (h *host) startOvs() (d *ovsDaemons, err error) {
	dir, err := os.MkdirTemp("", "lnst-ovs-")
	if err != nil {
		return nil, err
	}
	d = &ovsDaemons{dir: dir}
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	for _, dir := range []string{ovsRunDir, ovsLogDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return d, err
		}
	}
	if out, err := exec.Command("ovsdb-tool", "create", dir+"/conf.db", ovsSchema).CombinedOutput(); err != nil {
		return d, fmt.Errorf("ovsdb-tool create: %v: %s", err, strings.TrimSpace(string(out)))
	}
	sock := ovsRunDir + "/db.sock"
	os.Remove(sock)
	if err := h.startOvsProc(d, "ovsdb-server", dir+"/conf.db", "--remote=punix:"+sock); err != nil {
		return d, err
	}
	deadline := time.Now().Add(ovsLinkTimeout)
	for {
		_, err := h.ovsVsctl([]string{"ovs-vsctl", "--timeout=2", "--no-wait", "init"})
		if err == nil {
			break
		}
		if p := d.procs[0]; p.exited() || time.Now().After(deadline) {
			return d, fmt.Errorf("ovsdb-server does not answer: %v; its output: %s", err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitOvsCPUCount()
	if err := h.startOvsProc(d, "ovs-vswitchd", "unix:"+sock); err != nil {
		return d, err
	}
	return d, nil
}

// ovsCountsCPUsAt is the monotonic clock's reading from which Open
// vSwitch counts CPUs. Its count_cpu_cores (3.1.0, Debian 12) counts them
// again when ten seconds have passed since it last did, starting from a
// last time of zero: until CLOCK_MONOTONIC reads 10 s it answers 0 CPUs.
// ovs-vswitchd started that early in a freshly booted guest makes no
// upcall handler for the kernel's per-CPU dispatch, and the datapath
// loses every upcall ("lost" in ovs-appctl dpctl/show) for as long as the
// daemon runs: nothing is switched. The margin covers the daemon's start.
const ovsCountsCPUsAt = 10*time.Second + 500*time.Millisecond

// waitOvsCPUCount waits until Open vSwitch would count this machine's CPUs
// (see ovsCountsCPUsAt): at most ten seconds, once, just after a VM lab
// guest boots.
func waitOvsCPUCount() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return
	}
	if up := time.Duration(ts.Nano()); up < ovsCountsCPUsAt {
		time.Sleep(ovsCountsCPUsAt - up)
	}
}

// startOvsProc starts daemon name with args on h's thread, in the
// foreground: it dies with the agent. Its pid file, control socket and
// log are where Open vSwitch keeps them by default (ovs-appctl -t name
// finds it), and stop removes them.
func (h *host) startOvsProc(d *ovsDaemons, name string, args ...string) error {
	path, err := exec.LookPath(name)
	if err != nil {
		return err
	}
	args = append(args, "--pidfile="+ovsRunDir+"/"+name+".pid", "--log-file="+ovsLogDir+"/"+name+".log")
	p, err := h.startDaemon(path, append([]string{name}, args...))
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	d.procs = append(d.procs, &ovsProc{name: name, daemon: p})
	return nil
}

// stop stops ovs-vswitchd (exit --cleanup: it deletes its datapath), then
// ovsdb-server, and removes their files.
func (d *ovsDaemons) stop() error {
	defer os.RemoveAll(d.dir)
	defer os.Remove(ovsRunDir + "/db.sock")
	var errs []error
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		// A daemon removes its pid file and control socket when it exits,
		// but not when it is killed; the log is the agent's to remove.
		defer os.Remove(ovsRunDir + "/" + p.name + ".pid")
		defer os.Remove(p.ctl())
		defer os.Remove(ovsLogDir + "/" + p.name + ".log")
		ask := func() { p.cmd.Process.Signal(syscall.SIGTERM) }
		if p.name == "ovs-vswitchd" {
			ask = func() { exec.Command("ovs-appctl", "-t", p.ctl(), "--timeout=5", "exit", "--cleanup").Run() }
		}
		switch p.stop(ask) {
		case stoppedKilled:
			errs = append(errs, fmt.Errorf("%s did not exit in %v; killed it: %s", p.name, daemonStopTimeout, p.out.String()))
		case stoppedSurvived:
			errs = append(errs, fmt.Errorf("%s (pid %d) survived SIGKILL", p.name, p.cmd.Process.Pid))
		}
	}
	if _, err := netlink.LinkByName(ovsDatapath); err == nil {
		if out, err := exec.Command("ovs-dpctl", "del-dp", ovsDatapath).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ovs-dpctl del-dp %s: %v: %s", ovsDatapath, err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}

// stopOwnOvsIfUnused stops the daemons the agent started once no bridge
// is left. The caller holds h.mu.
func (h *host) stopOwnOvsIfUnused() error {
	ownOvs.mu.Lock()
	defer ownOvs.mu.Unlock()
	if ownOvs.d == nil || h.work != nil {
		return nil
	}
	out, err := h.ovsVsctl(ovsVsctlArgs("list-br"))
	if err != nil || strings.TrimSpace(out) != "" {
		return nil
	}
	d := ownOvs.d
	ownOvs.d = nil
	return d.stop()
}
