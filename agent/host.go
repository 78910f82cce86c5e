package agent

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// init keeps the main thread for the main goroutine. A namespace host's
// goroutine that got the main thread would wedge it (the runtime cannot end
// the main thread) in the host's namespaces for the life of the process.
func init() { runtime.LockOSThread() }

// host is one machine the agent serves: its own (name "") or a namespace
// host of the lab.
type host struct {
	name string
	nl   *netlink.Handle
	// ns is the host's network namespace, -1 for the agent's own.
	ns netns.NsHandle
	// work runs functions on the host's thread; nil for the agent's own
	// host, whose functions run on any thread.
	work chan func()

	mu     sync.Mutex // guards jobs, job ids, teamds; serialises device changes
	jobs   map[int64]*job
	nextID int64
	// nextInternalID numbers internal jobs: -1, -2, ...
	nextInternalID int64
	// teamds are the teamd processes making the host's team devices, by
	// device name (see team.go).
	teamds map[string]*teamd

	// owner marks the processes of the host's jobs (see jobOwnerEnv).
	owner string
	// outputCap and budget bound the output its jobs keep (output.go).
	outputCap int64
	budget    *outputBudget

	// routes is the host's route socket while in use (routes_batch.go).
	routes cachedRouteSocket

	// dadMu serialises Connect's switching of duplicate address
	// detection (labdad.go).
	dadMu sync.Mutex
	// firstUp holds, per interface quietFirstUp turned detection off for
	// until its first up, the setting to put back (vmdad.go); under dadMu.
	firstUp map[string]string

	workMu sync.RWMutex // guards closed against do
	closed bool
}

// newRootHost is the machine's own namespace. Its netlink handle, like a
// namespace host's, speaks rtnetlink only: a handle of every family would
// also open XFRM and netfilter sockets, which fails on a kernel whose
// xfrm_user or nfnetlink is a module not loaded (a VM lab guest).
func newRootHost() (*host, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return &host{nl: h, ns: -1, jobs: map[int64]*job{}}, nil
}

// newNamespaceHost makes a host in a new network namespace and, with
// mounts, a new mount namespace. A goroutine locked to its OS thread
// unshares them, mounts a sysfs of the new network namespace on /sys
// (visible to that thread and the jobs it forks only) and then runs the
// host's work until close. The thread is never unlocked, so the Go runtime
// ends it with the goroutine. A lab network's switch needs no mounts.
func newNamespaceHost(name string, mounts bool) (*host, error) {
	h := &host{name: name, ns: -1, work: make(chan func()), jobs: map[int64]*job{}}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := enterNewNamespaces(mounts); err != nil {
			ready <- err
			return
		}
		ns, err := netns.Get()
		if err != nil {
			ready <- fmt.Errorf("get namespace handle: %w", err)
			return
		}
		h.ns = ns
		ready <- nil
		for f := range h.work {
			f()
		}
	}()
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("create namespace host %q: %w", name, err)
	}
	nl, err := netlink.NewHandleAt(h.ns, unix.NETLINK_ROUTE)
	if err == nil {
		h.nl = nl
		err = h.setLoUp()
	}
	if err != nil {
		h.close()
		return nil, fmt.Errorf("create namespace host %q: %w", name, err)
	}
	return h, nil
}

func (h *host) setLoUp() error {
	lo, err := h.nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	return h.nl.LinkSetUp(lo)
}

// enterNewNamespaces moves the calling (locked) thread into a new network
// namespace and, with mounts, into a new mount namespace where /sys is the
// new network namespace's sysfs.
func enterNewNamespaces(mounts bool) error {
	if !mounts {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		return nil
	}
	if err := unix.Unshare(unix.CLONE_NEWNET | unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// In a user namespace the inherited /sys is locked and cannot be
	// unmounted; mounting over it serves as well.
	_ = unix.Unmount("/sys", unix.MNT_DETACH)
	if err := unix.Mount("sysfs", "/sys", "sysfs", 0, ""); err != nil {
		return fmt.Errorf("mount sysfs: %w", err)
	}
	return nil
}

// do runs f on the host's thread and returns its error.
func (h *host) do(f func() error) error {
	if h.work == nil {
		return f()
	}
	h.workMu.RLock()
	defer h.workMu.RUnlock()
	if h.closed {
		return fmt.Errorf("%s is gone", h.label())
	}
	errc := make(chan error, 1)
	h.work <- func() { errc <- f() }
	return <-errc
}

// close releases the host. Its jobs must already be gone.
func (h *host) close() {
	if h.nl != nil {
		h.nl.Close()
	}
	h.workMu.Lock()
	defer h.workMu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	if h.work != nil {
		close(h.work)
	}
	if h.ns >= 0 {
		h.ns.Close()
	}
}

// label names the host in messages.
func (h *host) label() string {
	if h.name == "" {
		return "agent host"
	}
	return "host " + h.name
}
