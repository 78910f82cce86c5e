package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/lnst-go/lnst/internal/launch"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
)

// vmStateDir is where a VM guest's agent mounts its state disk.
const vmStateDir = "/var/lib/lnst"

// vmWait bounds how long ServeVM waits for the NICs and the port to appear
// (their drivers may still be probing).
const vmWait = 10 * time.Second

// virtioPortsDir lists the virtio-serial ports; each vportNpM in it has a
// name file, and the port's device is /dev/vportNpM.
const virtioPortsDir = "/sys/class/virtio-ports"

// IsVMAgent reports whether this process was started to be the agent of a
// VM lab guest.
func IsVMAgent() bool { return os.Getenv(launch.VMConfigEnv) != "" }

// ServeVM runs this process as the agent of a VM lab guest and returns its
// exit code. It reads the launch.VMConfig that launch.VMConfigEnv names, names the NICs
// by their hwaddrs (they stay down: the controller brings them up), sets
// the hostname, and serves the guest's own host on the virtio-serial port,
// one host connection at a time, logging to stderr (the console). Once it
// serves it writes launch.ReadyLine to stdout. It serves until SIGTERM or until
// serving fails; then it undoes every change it journaled.
func ServeVM() int {
	cfg, err := loadVMConfig(os.Getenv(launch.VMConfigEnv))
	log := hclog.New(&hclog.LoggerOptions{
		Name:   fmt.Sprintf("lnst-agent[%d]", os.Getpid()),
		Level:  hclog.LevelFromString(cfg.LogLevel),
		Output: LogOutput(os.Stderr),
	})
	if err != nil {
		log.Error("config", "error", err)
		return 1
	}
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)

	if err := setupGuest(cfg, log); err != nil {
		log.Error("set up guest", "error", err)
		return 1
	}
	var dev string
	if cfg.Mgmt == nil {
		if dev, err = waitPortDevice(virtioPortsDir, cfg.Port, vmWait); err != nil {
			log.Error("find port", "error", err)
			return 1
		}
	}
	opts := Options{Logger: log}
	// The image carries Open vSwitch, which no init system starts.
	enableOwnOvs()
	if cfg.StateDisk != "" {
		if err := mountStateDisk(virtioBlockDir, cfg.StateDisk, vmStateDir, vmWait); err != nil {
			log.Error("state disk", "error", err)
			return 1
		}
		opts.JournalPath = filepath.Join(vmStateDir, "journal")
	}
	srv, err := NewServer(opts)
	if err != nil {
		log.Error("start", "error", err)
		return 1
	}
	srv.files.reboot = guestReboot
	if cfg.Mgmt != nil {
		// A machine of a pool, not a lab's: its NICs are up from boot,
		// as a real machine's are (their link-local addresses go through
		// detection while the agent starts).
		if err := upLinks(cfg.Ifaces); err != nil {
			log.Error("test NICs", "error", err)
			return 1
		}
	} else if h, err := srv.host(""); err == nil {
		var nics []string
		for _, name := range cfg.Ifaces {
			nics = append(nics, name)
		}
		// The link-local addresses come without detection (vmdad.go).
		if err := h.quietFirstUp(nics); err != nil {
			log.Warn("NICs keep duplicate address detection on their first up", "error", err)
		}
	}
	sopts := srv.ServerOptions()
	var lis net.Listener
	if cfg.Mgmt != nil {
		var creds grpc.ServerOption
		if lis, creds, err = mgmtListener(*cfg.Mgmt); err != nil {
			log.Error("management NIC", "error", err)
			return 1
		}
		sopts = append(sopts, creds)
		dev = lis.Addr().String()
	} else {
		lis = newPortListener(cfg.Port, openPortDevice(dev))
	}
	g := grpc.NewServer(sopts...)
	srv.Register(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	log.Info("serving", "port", cfg.Port, "device", dev)
	fmt.Println(launch.ReadyLine)

	code := 0
	select {
	case sig := <-term:
		log.Debug("signal: restoring", "signal", sig)
	case err := <-served:
		log.Error("serve", "port", cfg.Port, "error", err)
		code = 1
	}
	code = max(code, srv.close(g))
	if err := stopOwnOvs(); err != nil {
		log.Error("stop Open vSwitch", "error", err)
		code = max(code, 1)
	}
	return code
}

// virtioBlockDir lists the block devices; a virtio-blk disk's serial is in
// its serial file.
const virtioBlockDir = "/sys/block"

// mountStateDisk mounts the ext4 file system of the block device whose
// serial is serial on dir, waiting up to wait for the device to appear.
func mountStateDisk(blockDir, serial, dir string, wait time.Duration) error {
	dev, err := pollFor(wait, func() (string, error) { return diskBySerial(blockDir, serial) })
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mount state disk %s: %w", dev, err)
	}
	if err := unix.Mount(dev, dir, "ext4", unix.MS_NOATIME, ""); err != nil {
		return fmt.Errorf("mount state disk %s (serial %s) on %s: %w", dev, serial, dir, err)
	}
	return nil
}

// diskBySerial returns the device (/dev/vdb) of the disk under blockDir
// whose serial file holds serial.
func diskBySerial(blockDir, serial string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(blockDir, "*", "serial"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == serial {
			return "/dev/" + filepath.Base(filepath.Dir(f)), nil
		}
	}
	return "", fmt.Errorf("no disk has serial %q (in %s)", serial, blockDir)
}

// guestReboot reboots the guest at once, as reboot -f does: the guest's
// init is a shell script that would not pass a reboot request on. A
// kernel loaded for kexec (LoadKernel) is booted, else the machine
// resets and QEMU boots its -kernel again. The state disk's journal is
// synced on every write; sync flushes the rest.
func guestReboot() error {
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_RESTART
	if kexecLoaded() {
		cmd = unix.LINUX_REBOOT_CMD_KEXEC
	}
	if err := unix.Reboot(cmd); err != nil {
		return fmt.Errorf("reboot(%#x): %w", cmd, err)
	}
	return nil
}

// loadVMConfig reads and checks the VMConfig at path; its hwaddrs come
// back in the canonical lower-case form.
func loadVMConfig(path string) (launch.VMConfig, error) {
	var cfg launch.VMConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read VM config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("parse VM config %s: %w", path, err)
	}
	if err := normalizeVMConfig(&cfg); err != nil {
		return cfg, fmt.Errorf("VM config %s: %w", path, err)
	}
	return cfg, nil
}

// normalizeVMConfig checks c and puts its hwaddrs in canonical form.
func normalizeVMConfig(c *launch.VMConfig) error {
	if c.Port == "" && c.Mgmt == nil {
		return errors.New("port is empty and there is no management NIC")
	}
	if c.Mgmt != nil {
		mac, err := net.ParseMAC(c.Mgmt.HWAddr)
		if err != nil {
			return fmt.Errorf("management NIC: %w", err)
		}
		c.Mgmt.HWAddr = mac.String()
	}
	ifaces := make(map[string]string, len(c.Ifaces))
	names := map[string]string{}
	for hw, name := range c.Ifaces {
		mac, err := net.ParseMAC(hw)
		if err != nil {
			return fmt.Errorf("iface %q: %w", name, err)
		}
		if len(name) == 0 || len(name) >= unix.IFNAMSIZ || strings.ContainsAny(name, "/: \t\n") {
			return fmt.Errorf("iface %s: invalid interface name %q", hw, name)
		}
		key := mac.String()
		if _, dup := ifaces[key]; dup {
			return fmt.Errorf("hwaddr %s is listed twice", key)
		}
		if other, dup := names[name]; dup {
			return fmt.Errorf("hwaddrs %s and %s both want name %q", other, key, name)
		}
		ifaces[key], names[name] = name, key
	}
	c.Ifaces = ifaces
	return nil
}

// setupGuest names the guest's NICs and sets its hostname.
func setupGuest(cfg launch.VMConfig, log hclog.Logger) error {
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", cfg.Hostname, err)
		}
	}
	want := cfg.Ifaces
	if cfg.Mgmt != nil {
		want = maps.Clone(want)
		if want == nil {
			want = map[string]string{}
		}
		want[cfg.Mgmt.HWAddr] = cfg.Mgmt.Name
	}
	if len(want) == 0 {
		return nil
	}
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	defer nl.Close()
	return nameLinks(nl, want, vmWait, log)
}

// rename is one step of renaming links: the link named from gets to.
type rename struct{ from, to string }

// planRenames plans the renames that give every link whose hwaddr want
// lists (hwaddr -> name) the name it wants. current maps the name of every
// link to its hwaddr. The kernel names NICs in probe order, so a wanted
// name may be another link's: in phase one each link to rename, and each
// unlisted link holding a wanted name, moves to a temporary name none has
// or wants; in phase two the listed ones take their names. An unlisted
// link moved aside keeps its temporary name. It fails when a listed hwaddr
// is on no link or on more than one.
func planRenames(current, want map[string]string) ([]rename, error) {
	byHW := map[string]string{}
	for name, hw := range current {
		if _, listed := want[hw]; !listed {
			continue
		}
		if other, dup := byHW[hw]; dup {
			a, b := min(name, other), max(name, other)
			return nil, fmt.Errorf("links %s and %s both have hwaddr %s", a, b, hw)
		}
		byHW[hw] = name
	}
	var missing []string
	for hw := range want {
		if _, ok := byHW[hw]; !ok {
			missing = append(missing, hw)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("no link has hwaddr %s", strings.Join(missing, ", "))
	}

	wanted := map[string]bool{}
	for _, name := range want {
		wanted[name] = true
	}
	var moved []string // the names of the links to move aside, sorted
	for name, hw := range current {
		to, listed := want[hw]
		if (listed && name != to) || (!listed && wanted[name]) {
			moved = append(moved, name)
		}
	}
	slices.Sort(moved)

	n := 0
	temp := func() string {
		for {
			name := fmt.Sprintf("lnsttmp%d", n)
			n++
			if _, taken := current[name]; !taken && !wanted[name] {
				return name
			}
		}
	}
	var phase1, phase2 []rename
	for _, name := range moved {
		t := temp()
		phase1 = append(phase1, rename{from: name, to: t})
		if to, listed := want[current[name]]; listed {
			phase2 = append(phase2, rename{from: t, to: to})
		}
	}
	return append(phase1, phase2...), nil
}

// nameLinks gives the links whose hwaddrs want lists the names it gives
// them, waiting up to wait for those links to appear. Every listed link is
// left down, and so is an unlisted one moved out of a wanted name's way.
func nameLinks(nl *netlink.Handle, want map[string]string, wait time.Duration, log hclog.Logger) error {
	deadline := time.Now().Add(wait)
	for {
		links, err := nl.LinkList()
		if err != nil {
			return fmt.Errorf("list links: %w", err)
		}
		current := map[string]string{}
		index := map[string]int{}
		for _, l := range links {
			a := l.Attrs()
			current[a.Name], index[a.Name] = a.HardwareAddr.String(), a.Index
		}
		plan, err := planRenames(current, want)
		if err != nil {
			if time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return fmt.Errorf("name links (waited %v): %w", wait, err)
		}
		return applyRenames(nl, current, index, want, plan, log)
	}
}

// applyRenames sets the listed links down and runs plan.
func applyRenames(nl *netlink.Handle, current map[string]string, index map[string]int, want map[string]string, plan []rename, log hclog.Logger) error {
	down := func(name string) error {
		if err := nl.LinkSetDown(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index[name]}}); err != nil {
			return fmt.Errorf("set link %s down: %w", name, err)
		}
		return nil
	}
	for name, hw := range current {
		if _, listed := want[hw]; listed {
			if err := down(name); err != nil {
				return err
			}
		}
	}
	for _, r := range plan {
		if hw, orig := current[r.from]; orig {
			if _, listed := want[hw]; !listed { // moved out of the way
				if err := down(r.from); err != nil {
					return err
				}
			}
		}
		i := index[r.from]
		if err := nl.LinkSetName(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: i}}, r.to); err != nil {
			return fmt.Errorf("rename link %s to %s: %w", r.from, r.to, err)
		}
		log.Debug("renamed link", "from", r.from, "to", r.to)
		delete(index, r.from)
		index[r.to] = i
	}
	return nil
}

// waitPortDevice returns the device of the virtio-serial port named name,
// waiting up to wait for it to appear under dir (virtioPortsDir).
func waitPortDevice(dir, name string, wait time.Duration) (string, error) {
	return pollFor(wait, func() (string, error) { return portDevice(dir, name) })
}

// pollFor calls find every 100ms until it succeeds or wait has passed,
// and returns its last answer: a device of the guest that may not have
// appeared yet.
func pollFor(wait time.Duration, find func() (string, error)) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		dev, err := find()
		if err == nil || !time.Now().Before(deadline) {
			return dev, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// portDevice returns the device of the virtio-serial port named name: the
// port vportNpM under dir whose name file holds name is /dev/vportNpM.
func portDevice(dir, name string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "vport*", "name"))
	if err != nil {
		return "", fmt.Errorf("find virtio-serial port %q: %w", name, err)
	}
	var seen []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the port went away
		}
		got := strings.TrimSpace(string(b))
		if got == name {
			return "/dev/" + filepath.Base(filepath.Dir(f)), nil
		}
		seen = append(seen, fmt.Sprintf("%q", got))
	}
	return "", fmt.Errorf("no virtio-serial port is named %q (ports: %s)", name, strings.Join(seen, ", "))
}

// openPortDevice opens the virtio-serial port device at path, non-blocking
// so that the runtime poller serves it.
func openPortDevice(path string) func() (int, error) {
	return func() (int, error) {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// Timings of portListener.Accept.
const (
	portPollSlice  = 100 * time.Millisecond // longest poll before checking Close
	portHupRetry   = 20 * time.Millisecond  // re-poll while the host is not connected
	portBusyRetry  = 100 * time.Millisecond // re-open while another holds the port
	portNetworkTag = "virtio-serial"
)

// portListener is a net.Listener over a virtio-serial port: each Accept
// opens the port and returns a connection once the host has connected to
// the port's chardev and sent data. The port has one host side, so there
// is one connection at a time: Accept waits until the previous one is
// closed. The host's client disconnecting reads as io.EOF on the
// connection; its owner closes it and the next Accept opens the port anew.
//
// Linux's virtio_console lets one process at a time open a port; while the
// host side has no client, poll reports POLLHUP and read returns 0 at once.
//
// The port is one byte stream: a host client that connects before the
// guest has read the previous client's EOF has its first bytes read on the
// old connection, which the gRPC server then drops as garbage, and its
// handshake is lost (seen in QEMU: grpc-go's client retried after its 20 s
// connect timeout). Hosts keep one client for a guest's life, or wait a
// moment after dropping one.
type portListener struct {
	addr portAddr
	// open opens the port and returns a non-blocking descriptor.
	open func() (int, error)
	slot chan struct{} // holds a token while a connection is open
	done chan struct{} // closed by Close
	once sync.Once
}

// newPortListener makes a listener on the port named name that open opens.
func newPortListener(name string, open func() (int, error)) *portListener {
	return &portListener{addr: portAddr(name), open: open, slot: make(chan struct{}, 1), done: make(chan struct{})}
}

// Accept waits for the previous connection to close, opens the port and
// waits for the host to connect and send data. After Close it returns
// net.ErrClosed.
func (l *portListener) Accept() (net.Conn, error) {
	select {
	case l.slot <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.accept()
	if err != nil {
		<-l.slot
		return nil, err
	}
	return c, nil
}

func (l *portListener) accept() (net.Conn, error) {
	fd, err := l.openPort()
	if err != nil {
		return nil, err
	}
	if err := l.waitHost(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "virtio-serial:"+string(l.addr))
	// A descriptor the poller cannot serve would return EAGAIN from reads:
	// make it blocking then (and deadlines fail with os.ErrNoDeadline).
	if errors.Is(f.SetDeadline(time.Time{}), os.ErrNoDeadline) {
		if err := unix.SetNonblock(fd, false); err != nil {
			f.Close()
			return nil, fmt.Errorf("virtio-serial port %s: set blocking: %w", l.addr, err)
		}
	}
	return &portConn{f: f, addr: l.addr, release: func() { <-l.slot }}, nil
}

// openPort opens the port, retrying while another process holds it.
func (l *portListener) openPort() (int, error) {
	for {
		fd, err := l.open()
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return -1, fmt.Errorf("open virtio-serial port %s: %w", l.addr, err)
		}
		if !l.sleep(portBusyRetry) {
			return -1, net.ErrClosed
		}
	}
}

// waitHost waits until fd is readable: the host has connected and sent
// data. While the host is not connected the port reports POLLHUP at once,
// so it sleeps between polls.
func (l *portListener) waitHost(fd int) error {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		select {
		case <-l.done:
			return net.ErrClosed
		default:
		}
		fds[0].Revents = 0
		n, err := unix.Poll(fds, int(portPollSlice/time.Millisecond))
		if errors.Is(err, unix.EINTR) || (err == nil && n == 0) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll virtio-serial port %s: %w", l.addr, err)
		}
		re := fds[0].Revents
		switch {
		case re&unix.POLLIN != 0:
			return nil
		case re&(unix.POLLERR|unix.POLLNVAL) != 0:
			return fmt.Errorf("poll virtio-serial port %s: events %#x", l.addr, re)
		case re&unix.POLLHUP != 0:
			if !l.sleep(portHupRetry) {
				return net.ErrClosed
			}
		}
	}
}

// sleep waits d and reports whether the listener is still open.
func (l *portListener) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}

// Close makes pending and later Accepts return net.ErrClosed. The open
// connection stays open.
func (l *portListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns the port's name.
func (l *portListener) Addr() net.Addr { return l.addr }

// portAddr is the address of both ends of a virtio-serial connection: the
// port's name.
type portAddr string

func (a portAddr) Network() string { return portNetworkTag }
func (a portAddr) String() string  { return string(a) }

// portConn is a connection over an open virtio-serial port. Reads and
// writes go through the runtime poller, so deadlines work and Close ends
// pending calls. A read of 0 bytes (the host's client is gone) is io.EOF.
type portConn struct {
	f       *os.File
	addr    portAddr
	release func()
	once    sync.Once
	err     error
}

func (c *portConn) Read(b []byte) (int, error)  { return c.f.Read(b) }
func (c *portConn) Write(b []byte) (int, error) { return c.f.Write(b) }

// Close closes the port, letting the listener accept the next connection.
func (c *portConn) Close() error {
	c.once.Do(func() {
		c.err = c.f.Close()
		c.release()
	})
	return c.err
}

func (c *portConn) LocalAddr() net.Addr                { return c.addr }
func (c *portConn) RemoteAddr() net.Addr               { return c.addr }
func (c *portConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *portConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *portConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }
