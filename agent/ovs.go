package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink"
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
	var stdout, stderr tail
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = jobEnv()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = strayGrace
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := h.do(cmd.Start); err != nil {
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
	if _, err := h.ovsVsctl(argv); err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(ovsLinkTimeout)
	for {
		if _, err := h.nl.LinkByName(b.Name); err == nil {
			return u, nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	err = fmt.Errorf("%s returned, but no device %q appeared on %s in %v (ovs-vswitchd makes it in the network namespace it runs in; is it running there?)",
		strings.Join(argv, " "), b.Name, h.label(), ovsLinkTimeout)
	if _, derr := h.ovsVsctl(ovsDelBrArgs(b.Name)); derr != nil {
		err = errors.Join(err, fmt.Errorf("take it back: %w", derr))
	}
	return fail(err)
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
	deadline := time.Now().Add(ovsLinkTimeout)
	for {
		if _, err := h.nl.LinkByName(name); err != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("delete openvswitch bridge %q on %s: ovs-vsctl del-br returned, but the device is still there after %v", name, h.label(), ovsLinkTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probeOvs reports whether this machine can make Open vSwitch bridges:
// ovs-vsctl is in the PATH and "ovs-vsctl show" answers (ovsdb-server
// runs). If not, why says what is missing.
func probeOvs() (ok bool, why string) {
	path, err := exec.LookPath("ovs-vsctl")
	if err != nil {
		return false, errNoOvsVsctl.Error()
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
