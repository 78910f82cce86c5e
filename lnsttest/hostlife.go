package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"google.golang.org/grpc"
)

// A host's lifecycle: files, facts, reboots and waits (Autotest's host
// API). Hosts of the local lab share this machine's filesystem (only
// their /sys is their own): a file put on one lab host is seen by every
// lab host and by the machine, and TempDir is a directory of this
// machine's $TMPDIR.

// TempDir makes a new directory on the host, under its agent's temporary
// directory, and removes it with everything in it when the test ends.
func (h *Host) TempDir(t testing.TB) string {
	t.Helper()
	st := h.s.state(t)
	r, err := h.client.TempDir(rpcCtx(t), &pb.TempDirRequest{Host: h.id, Group: st.group})
	if err != nil {
		t.Fatalf("%s: make a temporary directory: %v", h.name, err)
	}
	st.undoAt(t, h.client, "temporary directory "+r.Path+" on "+h.name, r.Seq)
	if err := h.s.noteFile(h, r.Path, "", true); err != nil {
		t.Fatalf("%s: make a temporary directory: %v", h.name, err)
	}
	return r.Path
}

// Facts describe a host.
type Facts struct {
	// Kernel and Arch are the kernel release and the machine, as uname -r
	// and uname -m print them.
	Kernel, Arch string
	// Distribution is PRETTY_NAME of /etc/os-release ("Debian GNU/Linux
	// 13 (trixie)"); OSID and OSVersion are its ID and VERSION_ID.
	Distribution, OSID, OSVersion string
	Hostname                      string
	NumCPU                        int
	// NICs are the host's network devices but loopback.
	NICs []NIC
}

// NIC is a network device of a host.
type NIC struct {
	Name   string
	Driver string
	// Firmware is the firmware version the driver reports (ethtool -i);
	// "" for devices without one.
	Firmware string
	// SpeedMbps is the link speed, 0 when unknown (no link, or a virtual
	// device without one).
	SpeedMbps int
	HWAddr    net.HardwareAddr
	// BusInfo is the device's bus address ("0000:03:00.0"), if any.
	BusInfo string
}

// Facts reads what the host is: kernel, distribution, CPUs and NICs.
// Lab hosts share this machine's kernel, distribution and CPUs.
func (h *Host) Facts(t testing.TB) Facts {
	t.Helper()
	r, err := h.client.Facts(rpcCtx(t), &pb.FactsRequest{Host: h.id})
	if err != nil {
		t.Fatalf("%s: read facts: %v", h.name, err)
	}
	f := Facts{Kernel: r.Kernel, Arch: r.Arch, Distribution: r.Distribution, OSID: r.OsId, OSVersion: r.OsVersionId, Hostname: r.Hostname, NumCPU: int(r.NumCpu)}
	for _, n := range r.Nics {
		f.NICs = append(f.NICs, NIC{Name: n.Name, Driver: n.Driver, Firmware: n.FirmwareVersion, SpeedMbps: int(n.SpeedMbps), HWAddr: net.HardwareAddr(n.Hwaddr), BusInfo: n.BusInfo})
	}
	return f
}

// NumCPU is the number of CPUs the host's agent can use.
func (h *Host) NumCPU(t testing.TB) int {
	t.Helper()
	return h.Facts(t).NumCPU
}

// isUpWithin is how long IsUp waits for the agent's answer.
const isUpWithin = 2 * time.Second

// IsUp reports whether the host's agent answers within 2 s.
func (h *Host) IsUp() bool {
	h.resetBackoff()
	ctx, cancel := context.WithTimeout(context.Background(), isUpWithin)
	defer cancel()
	_, err := h.client.Hello(ctx, &pb.HelloRequest{}, grpc.WaitForReady(true))
	if err != nil {
		h.redialVM() // the next call asks the guest's agent afresh
	}
	return err == nil
}

// vmHost is what a VM lab host's handle knows of its guest: the lab and
// instance it is in, and its name there.
type vmHost struct {
	lab  *pool.Lab
	in   *pool.Instance
	name string
}

// redialVM drops a VM lab host's connection to its agent for a new one:
// once the guest rebooted, the old one leads nowhere (QEMU keeps the
// socket, so nothing tells gRPC), and a handshake the rebooting guest lost
// is started again.
func (h *Host) redialVM() {
	if h.vm != nil {
		h.vm.in.RedialGuest(h.vm.name)
	}
}

// WaitUp waits until the host's agent answers, and fails the test if it
// does not within timeout.
func (h *Host) WaitUp(t testing.TB, timeout time.Duration) {
	t.Helper()
	if _, err := h.waitUp(time.Now().Add(timeout)); err != nil {
		t.Fatalf("%s: WaitUp: the agent did not answer within %v: %v", h.name, timeout, err)
	}
}

// WaitDown waits until the host's agent no longer answers, and fails the
// test if it still does after timeout.
func (h *Host) WaitDown(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := h.waitDown(time.Now().Add(timeout), ""); err != nil {
		t.Fatalf("%s: WaitDown: the agent still answered after %v", h.name, timeout)
	}
}

// Polling: the first retry after pollFirst, doubling up to pollMax
// (pollMaxVM on a VM lab host, which boots in seconds).
const (
	pollFirst = 100 * time.Millisecond
	pollMax   = 5 * time.Second
	pollMaxVM = 500 * time.Millisecond
)

// poll calls check, with a context bounded by isUpWithin and deadline,
// until it returns true; after deadline it returns check's last error.
func poll(deadline time.Time, check func(ctx context.Context) (bool, error)) error {
	return pollUpTo(deadline, pollMax, check)
}

// pollUpTo is poll with pollMax replaced by most.
func pollUpTo(deadline time.Time, most time.Duration, check func(ctx context.Context) (bool, error)) error {
	wait := pollFirst
	for {
		ctx, cancel := context.WithDeadline(context.Background(), minTime(deadline, time.Now().Add(isUpWithin)))
		ok, err := check(ctx)
		cancel()
		if ok {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			if err == nil {
				err = errors.New("timed out")
			}
			return err
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, most)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// waitUp polls the agent until it answers and returns its Hello. A VM lab
// host's connection is made anew after each failed poll.
func (h *Host) waitUp(deadline time.Time) (*pb.HelloReply, error) {
	var hello *pb.HelloReply
	failed := false
	err := pollUpTo(deadline, h.pollMax(), func(ctx context.Context) (bool, error) {
		if failed {
			h.redialVM()
		}
		h.resetBackoff()
		r, err := h.client.Hello(ctx, &pb.HelloRequest{}, grpc.WaitForReady(true))
		hello, failed = r, err != nil
		return err == nil, err
	})
	return hello, err
}

// waitDown polls the agent until it no longer answers or, with bootID,
// answers from another boot (it rebooted between two polls).
func (h *Host) waitDown(deadline time.Time, bootID string) error {
	return pollUpTo(deadline, h.pollMax(), func(ctx context.Context) (bool, error) {
		r, err := h.client.Hello(ctx, &pb.HelloRequest{})
		return err != nil || (bootID != "" && r.BootId != "" && r.BootId != bootID), nil
	})
}

func (h *Host) pollMax() time.Duration {
	if h.vm != nil {
		return pollMaxVM
	}
	return pollMax
}

// resetBackoff makes a pool or VM host's connection try to reconnect now,
// rather than after gRPC's reconnect backoff (up to two minutes).
func (h *Host) resetBackoff() {
	if h.vm != nil {
		h.vm.in.ResetGuestBackoff(h.vm.name)
	}
	if _, conn := h.poolConn(); conn != nil {
		conn.ResetConnectBackoff()
	}
}

// poolConn finds the pool host and connection of h's agent; "" and nil
// for a lab host.
func (h *Host) poolConn() (string, *grpc.ClientConn) {
	sp := h.s.pool
	if sp == nil {
		return "", nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for name, c := range sp.clients {
		if c == h.client {
			return name, sp.conns[name]
		}
	}
	return "", nil
}

// RebootOpt is an option of Host.Reboot.
type RebootOpt func(*rebootOpts)

type rebootOpts struct {
	timeout time.Duration
}

// DefaultRebootTimeout is how long Reboot waits for the host to go down
// and come back, unless RebootTimeout says otherwise.
const DefaultRebootTimeout = 10 * time.Minute

// RebootTimeout bounds how long Reboot waits for the host to go down and
// come back (default DefaultRebootTimeout).
func RebootTimeout(d time.Duration) RebootOpt { return func(o *rebootOpts) { o.timeout = d } }

func rebootOptions(opts []RebootOpt) (rebootOpts, error) {
	o := rebootOpts{timeout: DefaultRebootTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("RebootTimeout(%v) is not a positive duration", o.timeout)
	}
	return o, nil
}

// Reboot reboots the host and returns when its agent is back: it asks the
// agent to reboot the machine, waits for it to go down and come up again
// (from another boot) and takes the test run's lease on it again. What the
// test changed on the host before the reboot is gone after it (the agent
// takes back what its journal holds when it starts, as after a crash).
//
// A VM lab host reboots in its QEMU process and its agent starts again
// from the image; the journal is on the guest's state disk, so the new
// agent replays it too. Reboot then sets the host's interfaces up again,
// as the lab made them. Hosts of the namespace lab are network
// namespaces: Reboot skips the test there.
func (h *Host) Reboot(t testing.TB, opts ...RebootOpt) {
	t.Helper()
	h.reboot(t, opts...)
}

// reboot is Reboot, returning the agent's answer after it.
func (h *Host) reboot(t testing.TB, opts ...RebootOpt) *pb.HelloReply {
	t.Helper()
	o, err := rebootOptions(opts)
	if err != nil {
		t.Fatalf("%s: Reboot: %v", h.name, err)
	}
	if h.s.pool == nil && h.vm == nil {
		t.Skipf("reboot requires a real machine or the VM lab (-lnst.lab=vm); lab host %s is a network namespace", h.name)
	}
	if h.id != "" {
		t.Fatalf("%s: Reboot: this handle is a network namespace (Netns) of its host; reboot the host itself", h.name)
	}
	h.checkAllowed(t, pool.AllowReboot, "Reboot")
	st := h.s.state(t)
	start := time.Now()
	deadline := start.Add(o.timeout)
	before, err := h.waitUp(minTime(deadline, start.Add(isUpWithin)))
	if err != nil {
		t.Fatalf("%s: Reboot: the agent does not answer: %v", h.name, err)
	}
	st.logger().Info("rebooting", "host", h.name, "kernel", before.Kernel, "timeout", o.timeout)
	ctx, cancel := context.WithTimeout(rpcCtx(t), 30*time.Second)
	_, err = h.client.Reboot(ctx, &pb.RebootRequest{Host: h.id})
	cancel()
	if err != nil {
		t.Fatalf("%s: Reboot: %v", h.name, err)
	}
	if err := h.waitDown(deadline, before.BootId); err != nil {
		t.Fatalf("%s: Reboot: the host did not go down within %v", h.name, o.timeout)
	}
	st.logger().Info("host down", "host", h.name, "after", time.Since(start).Round(time.Millisecond))
	h.redialVM()
	after, err := h.waitUp(deadline)
	if err != nil {
		t.Fatalf("%s: Reboot: the host did not come back within %v: %v%s", h.name, o.timeout, err, h.vmConsole())
	}
	if before.BootId != "" && after.BootId == before.BootId {
		t.Fatalf("%s: Reboot: the agent answers again but the machine did not reboot (same boot id %s)", h.name, after.BootId)
	}
	if err := h.rejoin(); err != nil {
		t.Fatalf("%s: Reboot: the host is back but %v", h.name, err)
	}
	st.logger().Info("host back", "host", h.name, "after", time.Since(start).Round(time.Second), "kernel", after.Kernel)
	return after
}

// vmConsole is, for an error about a VM lab host, the end of its console.
func (h *Host) vmConsole() string {
	if h.vm == nil {
		return ""
	}
	return "; " + h.vm.in.Console(h.vm.name, 30)
}

// rejoin takes a host that rebooted (Reboot, HardReset) back into the
// test run: a VM lab host's interfaces are set up again as the lab made
// them; a pool host's lease is taken again.
func (h *Host) rejoin() error {
	if h.vm != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return h.vm.lab.GuestRebooted(ctx, h.vm.in, h.vm.name)
	}
	return h.retakeLease()
}

// retakeLease takes the test run's lease on a pool host's agent again at
// once (the heartbeats would within a third of the lease TTL).
func (h *Host) retakeLease() error {
	sp := h.s.pool
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := h.client.Heartbeat(ctx, &pb.HeartbeatRequest{Session: sp.session})
	if err != nil {
		return fmt.Errorf("its lease cannot be taken again: %w", err)
	}
	sp.setInstance(h.client, r.Instance) // a reboot restarts the agent on purpose
	return nil
}
