package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// Provisioner is a source of machines running an agent: something that can
// reserve a machine, say whether it is still alive, and release it. The
// static pool (StaticProvisioner), the namespace and VM labs
// (LabProvisioner) and external services driven by commands
// (ExecProvisioner: Beaker, OpenStack, a cloud) are provisioners.
//
// Reserve blocks until the machine is ready or ctx ends; a Reserve cut
// short by ctx gives back whatever it had reserved before it returns, so
// cancelling every pending Reserve and releasing every Machine leaves
// nothing held. Release and Alive are safe to call concurrently.
type Provisioner interface {
	// Name names the provisioner in messages and in the pool file.
	Name() string
	// Max is how many machines it holds at most at once, 0 for no limit.
	Max() int
	// Reserve reserves one machine for req.
	Reserve(ctx context.Context, req Request) (*Machine, error)
	// Alive says whether a reserved machine still serves: nil if it does.
	Alive(ctx context.Context, m *Machine) error
	// Release gives the machine back. Releasing it twice is not an error.
	Release(ctx context.Context, m *Machine) error
}

// Request is what a Reserve asks for. Provisioners whose machines are all
// alike (ExecProvisioner) ignore it.
type Request struct {
	// Host is the pool host the mapper chose: what StaticProvisioner leases.
	Host string
	// Topology is the hosts and networks a lab builds (LabProvisioner).
	Topology Topology
}

// Machine is one reservation of a Provisioner.
type Machine struct {
	// Provisioner is the Name of the provisioner that reserved it.
	Provisioner string
	// ID is the reservation's id, opaque to everyone but its provisioner.
	ID string
	// Host is how to reach and map the machine: its agent address, TLS
	// files, arch, params and interfaces, as a pool file host. A lab
	// reservation leaves it empty: its hosts are in Instance.
	Host Host
	// Instance is a lab reservation's topology instance, nil otherwise.
	Instance *Instance

	mu       sync.Mutex
	released bool
	lock     *os.File // StaticProvisioner's lease file
}

// markReleased reports whether m was still held, and marks it released.
func (m *Machine) markReleased() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	was := !m.released
	m.released = true
	return was
}

// String names the machine in messages: "cloud/42 (198.18.0.5:7000)".
func (m *Machine) String() string {
	if m.Host.Agent == "" {
		return m.Provisioner + "/" + m.ID
	}
	return fmt.Sprintf("%s/%s (%s)", m.Provisioner, m.ID, m.Host.Agent)
}

// agentAlive dials the agent of h and asks it for a Hello: nil if it
// answers before ctx ends. It is the default Alive check of machines.
func agentAlive(ctx context.Context, h Host) error {
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	conn, err := h.DialStarting(ctx, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := pb.NewAgentClient(conn).Hello(ctx, &pb.HelloRequest{}); err != nil {
		return fmt.Errorf("agent %s: %w", h.Agent, err)
	}
	return nil
}

// ErrBusy is returned by StaticProvisioner.Reserve for a host another
// process holds.
var ErrBusy = errors.New("the host is leased by another process")

// StaticProvisioner is the machines of a pool file: reserving one takes
// its lease file (an flock shared by every process on this machine, in
// LeaseDir), releasing it gives the lease file back.
type StaticProvisioner struct {
	// Pool is the pool file whose hosts it leases.
	Pool *Pool
	// LeaseDir holds the lease files, one per agent address ("" is
	// lnst-go-leases in the temporary directory).
	LeaseDir string
}

// Name is "static".
func (sp *StaticProvisioner) Name() string { return "static" }

// Max is the number of hosts in the pool.
func (sp *StaticProvisioner) Max() int { return len(sp.Pool.Hosts) }

// Hosts are the pool file's hosts.
func (sp *StaticProvisioner) Hosts() []Host { return sp.Pool.Hosts }

// Reserve leases req.Host; ErrBusy if another process holds it. It does
// not wait.
func (sp *StaticProvisioner) Reserve(ctx context.Context, req Request) (*Machine, error) {
	var h *Host
	for i := range sp.Pool.Hosts {
		if sp.Pool.Hosts[i].Name == req.Host {
			h = &sp.Pool.Hosts[i]
		}
	}
	if h == nil {
		return nil, fmt.Errorf("pool %s has no host %q", sp.Pool.Path, req.Host)
	}
	dir := sp.LeaseDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "lnst-go-leases")
	}
	if err := os.MkdirAll(dir, 0o1777); err != nil {
		return nil, fmt.Errorf("lease pool host %s: %w", h.Name, err)
	}
	key := strings.NewReplacer("/", "_", ":", "_", "[", "", "]", "").Replace(h.Agent)
	path := filepath.Join(dir, key+".lock")
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return nil, fmt.Errorf("lease pool host %s: %w", h.Name, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("pool host %s: %w", h.Name, ErrBusy)
			}
			return nil, fmt.Errorf("lease pool host %s: %w", h.Name, err)
		}
		// Release removes the file before it lets go of it: a file we
		// opened before that and locked after is no longer the lease
		// file, and another process may hold the new one.
		if sameFile(f, path) {
			return &Machine{Provisioner: sp.Name(), ID: h.Name, Host: *h, lock: f}, nil
		}
		f.Close()
	}
}

// sameFile reports whether the open file f is still the file at path.
func sameFile(f *os.File, path string) bool {
	open, err := f.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	return err == nil && os.SameFile(open, now)
}

// Alive asks the machine's agent for a Hello.
func (sp *StaticProvisioner) Alive(ctx context.Context, m *Machine) error {
	return agentAlive(ctx, m.Host)
}

// Release gives the host's lease file back, and removes it (while still
// holding it: see Reserve), so that no file is left per host ever leased.
func (sp *StaticProvisioner) Release(ctx context.Context, m *Machine) error {
	if !m.markReleased() || m.lock == nil {
		return nil
	}
	os.Remove(m.lock.Name()) // gone already: nothing to leave
	return m.lock.Close()    // releases the flock
}

// LabProvisioner is a local lab (StartLab, StartVMLab) as a provisioner: a
// reservation is one instance of a topology, every host of it served by
// the lab (Machine.Instance).
type LabProvisioner struct {
	// Lab is the lab (StartLab or StartVMLab) that builds the instances.
	Lab *Lab
}

// Provisioner is the lab as a provisioner (LabProvisioner).
func (l *Lab) Provisioner() Provisioner { return &LabProvisioner{Lab: l} }

// Name is "lab", or "vm" for the VM lab.
func (lp *LabProvisioner) Name() string {
	if lp.Lab.vm != nil {
		return "vm"
	}
	return "lab"
}

// Max is 0: a lab builds as many instances as are asked for.
func (lp *LabProvisioner) Max() int { return 0 }

// Reserve acquires an instance of req.Topology, built and usable.
func (lp *LabProvisioner) Reserve(ctx context.Context, req Request) (*Machine, error) {
	in, err := lp.Lab.Acquire(ctx, req.Topology)
	if err != nil {
		return nil, err
	}
	if in.Fresh {
		if err := lp.Lab.WaitUsable(ctx, in); err != nil {
			lp.Lab.Release(in)
			return nil, err
		}
	}
	return &Machine{Provisioner: lp.Name(), ID: fmt.Sprint(in.id), Instance: in}, nil
}

// Alive asks the lab agent, and each VM guest agent of the instance, for
// a Hello.
func (lp *LabProvisioner) Alive(ctx context.Context, m *Machine) error {
	if _, err := lp.Lab.Client().Hello(ctx, &pb.HelloRequest{}); err != nil {
		return fmt.Errorf("lab agent: %w", err)
	}
	for name := range m.Instance.Hosts {
		if c, _ := m.Instance.GuestClient(name); c != nil {
			if _, err := c.Hello(ctx, &pb.HelloRequest{}); err != nil {
				return fmt.Errorf("VM %s: %w", name, err)
			}
		}
	}
	return nil
}

// Release returns the instance to the lab for later reservations of its
// topology; the caller has restored what it changed on it.
func (lp *LabProvisioner) Release(ctx context.Context, m *Machine) error {
	if m.markReleased() {
		lp.Lab.Release(m.Instance)
	}
	return nil
}
