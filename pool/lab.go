package pool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lnst-go/lnst/devices/tc"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/launch"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Timeouts of the lab's agent process.
const (
	agentStartTimeout = 15 * time.Second
	agentStopTimeout  = 60 * time.Second
)

// Topology is what a recipe asks the lab for: hosts with interfaces, each
// on a network named by its label.
type Topology struct {
	Hosts []TopoHost
}

// TopoHost is one host of a Topology.
type TopoHost struct {
	Name   string
	Ifaces []TopoIface
	// Namespace makes the host, on a VM lab, a namespace host of the lab's
	// agent on the same networks as the guests (a mixed lab: only the
	// hosts that need another kernel are guests). The namespace lab
	// ignores it: all its hosts are.
	Namespace bool
}

// TopoIface is one interface of a TopoHost: its name in the host and the
// label of its network.
type TopoIface struct {
	Name, Net string
	// Impair, if set, is the qdisc on the lab switch's port towards the
	// interface: it impairs what the interface receives.
	Impair tc.Qdisc
}

// impairKey is i's impairment in a topology key, "" for none.
func (i TopoIface) impairKey() string {
	if i.Impair == nil {
		return ""
	}
	kind, data, err := tc.MarshalQdisc(i.Impair)
	if err != nil {
		return "~invalid"
	}
	return "~" + kind + string(data)
}

// key is the topology's canonical form: two topologies with one key can use
// the same lab hosts.
func (t Topology) key() string {
	var hosts []string
	for _, h := range t.Hosts {
		var ifs []string
		for _, i := range h.Ifaces {
			ifs = append(ifs, i.Name+"@"+i.Net+i.impairKey())
		}
		sort.Strings(ifs)
		name := h.Name
		if h.Namespace {
			name = "ns:" + name
		}
		hosts = append(hosts, name+"("+strings.Join(ifs, ",")+")")
	}
	sort.Strings(hosts)
	return strings.Join(hosts, " ")
}

// LabOptions configure StartLab.
type LabOptions struct {
	// AgentLogLevel is the agent's log level (hclog names); its log goes to
	// this process's stderr.
	AgentLogLevel string
	// UserNS starts the agent in a new user namespace where it is root,
	// with this process's uid and gid mapped to 0: the rootless lab. Its
	// namespace hosts are owned by that user namespace and need no
	// privilege on the machine.
	UserNS bool
	// IfNames says how the lab names the interfaces of its hosts:
	// IfNamesSame (the default, "") as the topology asks, IfNamesMapped
	// otherwise.
	IfNames IfNaming
	// SnapshotFresh makes Acquire take, for the namespace hosts of an
	// instance it builds, the agent's snapshot of what a recipe may change
	// (SnapshotHosts, what a clean check compares), once they are built and
	// usable; Instance.FreshSnapshot returns it. Nothing but the build
	// touches a host before Acquire returns, so it is the host's state
	// then, and the agent, told the hosts are fresh, reads their
	// namespace-wide sysctls once rather than per host (agent/snapfresh.go).
	SnapshotFresh bool
}

// IfNaming says how a lab names its hosts' interfaces.
type IfNaming string

// The lab's interface namings. IfNamesSame names each interface as the
// topology asks ("eth0"). IfNamesMapped names it unlike any requirement,
// as a pool machine's NICs are named ("enp1s0"): the n-th host's k-th
// interface (from 1 and 0, in topology order) is "lnst<n>p<k>"; a recipe
// still finds it by its requirement's name, and runs there only if it
// uses the real name the lab reports (Instance.Ifname) for it.
const (
	IfNamesSame   IfNaming = "same"
	IfNamesMapped IfNaming = "mapped"
)

// CheckIfNaming reports an IfNaming this package does not know.
func CheckIfNaming(n IfNaming) error {
	switch n {
	case "", IfNamesSame, IfNamesMapped:
		return nil
	}
	return fmt.Errorf("unknown interface naming %q (want %s or %s)", n, IfNamesSame, IfNamesMapped)
}

// Lab is the local lab: an agent process serving namespace hosts, and the
// topologies built on it. Hosts live until Close and are reused by later
// recipes that ask for the same topology; the caller restores them between
// recipes.
type Lab struct {
	// sockDir is the directory, private to this process's user, of the
	// agent's socket.
	sockDir string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	conn    *grpc.ClientConn
	client  pb.AgentClient
	hello   *pb.HelloReply
	exited  chan struct{}

	// vm makes this a VM lab (StartVMLab).
	vm *vmLab
	// ifnames is LabOptions.IfNames.
	ifnames IfNaming
	// snapFresh is LabOptions.SnapshotFresh.
	snapFresh bool

	mu        sync.Mutex
	instances map[string][]*Instance
	nextID    int
	closed    bool
}

// Instance is one built topology, leased to one recipe at a time.
type Instance struct {
	id    int
	key   string
	group string
	busy  bool
	// Hosts maps a topology host name to its name on the agent.
	Hosts map[string]string
	// Fresh is set when Acquire built the instance rather than reused it.
	Fresh bool
	topo  Topology
	// ifnames maps a topology host name and an interface's name in the
	// topology to the interface's name on the host (Ifname).
	ifnames map[string]map[string]string
	// guests are the VM lab's guests by topology host name, and initrd
	// the initramfs they booted.
	guests map[string]*vmGuest
	initrd string
	// snaps are the snapshots of the namespace hosts Acquire built, by
	// topology host name (LabOptions.SnapshotFresh); under snapMu.
	snapMu sync.Mutex
	snaps  map[string]*pb.SnapshotHost
}

// Snapshot is a clean-check snapshot of one lab host, as the agent took
// it: the host's id, its text, and the parts it could not read.
type Snapshot struct {
	Host, Text string
	Errors     []string
}

// FreshSnapshot is the snapshot Acquire took of namespace host host (its
// topology name) when it built the instance (LabOptions.SnapshotFresh),
// with the parts the agent could not read in its Errors; nil if it took
// none. Only a fresh instance has them, and only until its first use.
func (in *Instance) FreshSnapshot(host string) *Snapshot {
	in.snapMu.Lock()
	defer in.snapMu.Unlock()
	sn := in.snaps[host]
	if sn == nil {
		return nil
	}
	return &Snapshot{Host: sn.Host, Text: sn.Text, Errors: sn.Errors}
}

// DropFreshSnapshots forgets the snapshots Acquire took: the caller has
// recorded them, or the instance has been used since.
func (in *Instance) DropFreshSnapshots() {
	in.snapMu.Lock()
	defer in.snapMu.Unlock()
	in.snaps = nil
}

// Ifname is the real name, on topology host host, of the interface the
// topology calls name: name itself unless the lab was started with
// IfNamesMapped. A name the topology does not give host is returned as it
// is (a device the recipe made, "lo").
func (in *Instance) Ifname(host, name string) string {
	if real, ok := in.ifnames[host][name]; ok {
		return real
	}
	return name
}

// nameIfaces sets the real names of t's interfaces in in, as naming says.
func (in *Instance) nameIfaces(t Topology, naming IfNaming) {
	in.ifnames = map[string]map[string]string{}
	for hi, h := range t.Hosts {
		m := map[string]string{}
		for k, i := range h.Ifaces {
			m[i.Name] = i.Name
			if naming == IfNamesMapped {
				m[i.Name] = fmt.Sprintf("lnst%dp%d", hi+1, k)
			}
		}
		in.ifnames[h.Name] = m
	}
}

// WaitUsable waits until every interface of a freshly built instance is
// usable as on a machine that has been up a while: the kernel has given it
// an IPv6 link-local address and that address has finished duplicate
// address detection (about a second after the link came up). The waits
// run in parallel. A namespace lab's interfaces are usable when Acquire
// returns (the agent's Connect waits for the address, agent/labdad.go):
// WaitUsable has nothing to do there.
func (l *Lab) WaitUsable(ctx context.Context, in *Instance) error {
	if l.vm == nil {
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	up := true
	for _, h := range in.topo.Hosts {
		for _, i := range h.Ifaces {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, host := l.client, in.Hosts[h.Name]
				if g := in.guests[h.Name]; g != nil {
					c, host = g.client, ""
				}
				_, err := c.SetLink(ctx, &pb.SetLinkRequest{Host: host, Group: in.group, Name: in.Ifname(h.Name, i.Name), Up: &up})
				if err != nil {
					errs <- fmt.Errorf("lab: host %s interface %s: %w", h.Name, i.Name, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// StartLab starts the lab's agent: this executable, re-executed with
// launch.LabSocketEnv set. The agent lives in its own process group, so a
// Ctrl-C reaches only this process; it restores everything when this
// process exits, however that happens, because its stdin closes then.
//
// Only this process's user reaches the agent: its socket is in a
// directory made for it, mode 0700, and the agent checks every peer's uid
// (SO_PEERCRED).
func StartLab(opts LabOptions) (*Lab, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start lab agent: find this executable: %w", err)
	}
	// MkdirTemp makes a new directory, mode 0700, or fails: nobody else
	// can have made it, or can enter it.
	dir, err := os.MkdirTemp("", fmt.Sprintf("lnst-lab-%d-", os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("start lab agent: make its socket directory: %w", err)
	}
	socket := filepath.Join(dir, "agent.sock")
	if len(socket) >= len(syscall.RawSockaddrUnix{}.Path) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start lab agent: socket path %s is too long for a unix socket (%d bytes at most); set TMPDIR to a shorter directory", socket, len(syscall.RawSockaddrUnix{}.Path)-1)
	}
	started := false
	defer func() {
		if !started {
			os.RemoveAll(dir)
		}
	}()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), launch.LabSocketEnv+"="+socket, launch.LabLogEnv+"="+opts.AgentLogLevel)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if opts.UserNS {
		userNS(cmd.SysProcAttr)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		if opts.UserNS {
			return nil, fmt.Errorf("start rootless lab agent: %w", userNSError(err))
		}
		return nil, fmt.Errorf("start lab agent %s: %w", exe, err)
	}
	started = true // l.Close removes dir from here on
	l := &Lab{sockDir: dir, cmd: cmd, stdin: stdin, exited: make(chan struct{}), instances: map[string][]*Instance{}, ifnames: opts.IfNames, snapFresh: opts.SnapshotFresh}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != launch.ReadyLine {
			err = fmt.Errorf("unexpected first line %q", line)
		}
		ready <- err
		io.Copy(os.Stdout, stdout)
	}()
	go func() {
		cmd.Wait()
		close(l.exited)
	}()
	select {
	case err = <-ready:
	case <-time.After(agentStartTimeout):
		err = fmt.Errorf("not ready after %v", agentStartTimeout)
	case <-l.exited:
		err = fmt.Errorf("exited: %v", cmd.ProcessState)
	}
	if err == nil {
		err = l.dial(socket)
	}
	if err != nil {
		l.Close()
		if opts.UserNS {
			return nil, fmt.Errorf("start rootless lab agent: %w", err)
		}
		return nil, fmt.Errorf("start lab agent: %w (does this process run as root? the local lab needs CAP_NET_ADMIN and CAP_SYS_ADMIN; without root, use -lnst.lab=rootless)", err)
	}
	return l, nil
}

func (l *Lab) dial(socket string) error {
	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	l.conn = conn
	l.client = pb.NewAgentClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), agentStartTimeout)
	defer cancel()
	l.hello, err = l.client.Hello(ctx, &pb.HelloRequest{})
	return err
}

// Client is the lab agent's client.
func (l *Lab) Client() pb.AgentClient { return l.client }

// Hello is what the lab agent said of itself.
func (l *Lab) Hello() *pb.HelloReply { return l.hello }

// Acquire leases hosts with topology t: a free instance built earlier for
// the same topology, or a new one.
func (l *Lab) Acquire(ctx context.Context, t Topology) (*Instance, error) {
	key := t.key()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("the lab is closed")
	}
	for _, in := range l.instances[key] {
		if !in.busy {
			in.busy, in.Fresh = true, false
			l.mu.Unlock()
			return in, nil
		}
	}
	l.nextID++
	in := &Instance{id: l.nextID, key: key, busy: true, Fresh: true, Hosts: map[string]string{}, topo: t}
	in.group = fmt.Sprintf("lab/%d", in.id)
	in.nameIfaces(t, l.ifnames)
	l.mu.Unlock()

	if err := l.build(ctx, in, t); err != nil {
		l.destroy(in)
		return nil, err
	}
	l.mu.Lock()
	l.instances[key] = append(l.instances[key], in)
	l.mu.Unlock()
	return in, nil
}

func (l *Lab) build(ctx context.Context, in *Instance, t Topology) error {
	if l.vm != nil {
		for _, h := range t.Hosts {
			in.Hosts[h.Name] = fmt.Sprintf("%s.%d", h.Name, in.id)
		}
		return l.buildVMs(ctx, in, t)
	}
	return l.buildHosts(ctx, in, t)
}

// Release returns an instance to the lab for later recipes. The caller has
// restored everything it changed on it.
func (l *Lab) Release(in *Instance) {
	l.mu.Lock()
	defer l.mu.Unlock()
	in.busy = false
}

// Destroy removes an instance's hosts and networks.
func (l *Lab) Destroy(in *Instance) error {
	l.mu.Lock()
	list := l.instances[in.key]
	for i, x := range list {
		if x == in {
			l.instances[in.key] = append(list[:i:i], list[i+1:]...)
		}
	}
	l.mu.Unlock()
	return l.destroy(in)
}

func (l *Lab) destroy(in *Instance) error {
	defer in.closeGuests()

	r, err := l.client.Restore(context.Background(), &pb.RestoreRequest{Group: in.group})
	if err != nil {
		return fmt.Errorf("lab: destroy hosts: %w", err)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("lab: destroy hosts: %s", strings.Join(r.Errors, "; "))
	}
	return nil
}

// Close ends the lab: the agent undoes everything it journaled, removes
// every host and exits. Close waits for that and reports an agent that
// failed to restore.
func (l *Lab) Close() error {
	l.mu.Lock()
	l.closed = true
	for _, list := range l.instances {
		for _, in := range list {
			in.closeGuests()
		}
	}
	l.mu.Unlock()
	if l.vm != nil {
		// After the agent has exited: its QEMU processes are gone then.
		defer os.RemoveAll(l.vm.dir)
	}
	// After the agent has exited; it removes the directory itself when
	// it can, this is for an agent that died.
	defer os.RemoveAll(l.sockDir)
	if l.conn != nil {
		l.conn.Close()
	}
	l.stdin.Close()
	select {
	case <-l.exited:
	case <-time.After(agentStopTimeout):
		l.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-l.exited:
		case <-time.After(5 * time.Second):
			l.cmd.Process.Kill()
			<-l.exited
			return fmt.Errorf("lab agent did not stop within %v; killed it", agentStopTimeout)
		}
	}
	if !l.cmd.ProcessState.Success() {
		return fmt.Errorf("lab agent ended with %v while restoring (its log is above)", l.cmd.ProcessState)
	}
	return nil
}
