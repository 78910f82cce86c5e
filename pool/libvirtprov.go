package pool

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/lnst-go/lnst/internal/agentconn"
	"github.com/lnst-go/lnst/internal/cpio"
	"github.com/lnst-go/lnst/internal/launch"
	"github.com/lnst-go/lnst/pool/vmimage"
)

// LibvirtSpec is the libvirt field of a pool file's provisioner: the
// hypervisor whose domains the provisioner's machines are.
//
//	provisioners:
//	  - name: hv1
//	    libvirt: {uri: "qemu+ssh://root@hv1/system", max: 16, memory: 512, image: default}
//	    interfaces:
//	      - {name: eth0, network: net1}
//	      - {name: eth1, network: net1}
type LibvirtSpec struct {
	// URI is the hypervisor's libvirt URI.
	URI string
	// Max is how many guests the provisioner runs on it at most.
	Max int
	// MemoryMiB and CPUs are each guest's (defaults 512 and 1).
	MemoryMiB int
	CPUs      int
	// Image is the VM image the guests boot: "default" (or "") for
	// vmimage.Build's default, else the vmimage cache directory to
	// build it in.
	Image string
	// StoragePool is the libvirt storage pool the guests' kernel and
	// initramfs are uploaded to ("" is "default").
	StoragePool string
	// BootTimeout bounds a guest's boot to a serving agent (0: 3 min).
	BootTimeout time.Duration
	// Accel is "kvm", "tcg" (QEMU emulates the CPU: libvirt domain type
	// qemu), or "auto"/"": KVM where the hypervisor's capabilities offer
	// it. A hypervisor may offer KVM that does not work (nested, a
	// container): give tcg then.
	Accel string
}

// EmulatedParam is the host param that says a pool machine's CPU is
// emulated ("true"): a libvirt provisioner with accel: tcg sets it on its
// machines, and lnsttest's Host.Emulated reads it.
const EmulatedParam = "emulated"

// libvirtMaxGuests bounds LibvirtSpec.Max: each guest takes an address of
// its hypervisor's /24 management network.
const libvirtMaxGuests = 200

// libvirtAgentPort is the TCP port a guest's agent serves on, on its
// management NIC.
const libvirtAgentPort = 7000

// libvirtArch is the architecture of the VM image's kernel.
const libvirtArch = "x86_64"

// libvirtConn is what the provisioner calls of a libvirt connection:
// go-libvirt's *libvirt.Libvirt, or a fake in tests.
type libvirtConn interface {
	ConnectGetCapabilities() (string, error)
	NetworkCreateXML(xml string) (libvirt.Network, error)
	NetworkDestroy(n libvirt.Network) error
	DomainCreateXML(xml string, flags libvirt.DomainCreateFlags) (libvirt.Domain, error)
	DomainDestroy(d libvirt.Domain) error
	DomainResume(d libvirt.Domain) error
	DomainOpenConsole(d libvirt.Domain, dev libvirt.OptString, w io.Writer, flags uint32) error
	StoragePoolLookupByName(name string) (libvirt.StoragePool, error)
	StoragePoolGetInfo(p libvirt.StoragePool) (state uint8, capacity, allocation, available uint64, err error)
	StorageVolLookupByName(p libvirt.StoragePool, name string) (libvirt.StorageVol, error)
	StorageVolCreateXML(p libvirt.StoragePool, xml string, flags libvirt.StorageVolCreateFlags) (libvirt.StorageVol, error)
	StorageVolUpload(v libvirt.StorageVol, r io.Reader, offset, length uint64, flags libvirt.StorageVolUploadFlags) error
	StorageVolGetPath(v libvirt.StorageVol) (string, error)
	StorageVolDelete(v libvirt.StorageVol, flags libvirt.StorageVolDeleteFlags) error
	// What lnst gc lists.
	ConnectListAllDomains(need int32, flags libvirt.ConnectListAllDomainsFlags) ([]libvirt.Domain, uint32, error)
	ConnectListAllNetworks(need int32, flags libvirt.ConnectListAllNetworksFlags) ([]libvirt.Network, uint32, error)
	ConnectListAllStoragePools(need int32, flags libvirt.ConnectListAllStoragePoolsFlags) ([]libvirt.StoragePool, uint32, error)
	StoragePoolListAllVolumes(p libvirt.StoragePool, need int32, flags uint32) ([]libvirt.StorageVol, uint32, error)
	DomainGetXMLDesc(d libvirt.Domain, flags libvirt.DomainXMLFlags) (string, error)
	NetworkGetXMLDesc(n libvirt.Network, flags uint32) (string, error)
	Disconnect() error
}

// dialLibvirt connects to uri with go-libvirt: a pure Go client of
// libvirt's RPC protocol (local socket, ssh, tls, tcp), no cgo and no
// libvirt library on the controller.
func dialLibvirt(ctx context.Context, uri string) (libvirtConn, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, err
	}
	type res struct {
		c   *libvirt.Libvirt
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := libvirt.ConnectToURI(u)
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Disconnect()
			}
		}()
		return nil, context.Cause(ctx)
	}
}

// thisRun is the run of this process, made once: its id is in the name
// and metadata of everything the libvirt provisioners make.
var thisRun = sync.OnceValue(func() libvirtRun {
	b := make([]byte, 4)
	rand.Read(b)
	host, _ := os.Hostname()
	start, _ := procStart(os.Getpid())
	return libvirtRun{ID: hex.EncodeToString(b), Controller: host, PID: os.Getpid(), Start: start}
})

// procStart is the start time of process pid, in clock ticks since boot
// (field 22 of /proc/PID/stat).
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// LibvirtProvisioner runs the machines of a pool file's libvirt
// provisioner as transient domains of one hypervisor. Each guest
// direct-boots the VM image's kernel with an initramfs holding the test
// binary as its agent; the kernel is uploaded once per hypervisor into
// its storage pool (named by its hash), the initramfs per guest (it holds
// the guest's own TLS key). Each guest has a virtio NIC per interface of
// the provisioner's template, on a libvirt network per network label
// (isolated: a bridge of the hypervisor's with no address, no DHCP, no
// NAT), and a management NIC on a network of the provisioner's own whose
// bridge has an address of the hypervisor's: the agent serves mutual TLS
// there, with certificates made for the run (a CA in a directory of the
// controller's, mode 0700). The controller dials the guest's management
// address directly: from the hypervisor itself, or from a machine that
// routes to the management network (an SSH forward or a route through the
// hypervisor; see the README).
//
// Names and <metadata> of domains, networks and volumes carry the run's
// id ("lnst-<run>-..."), so that `lnst gc --libvirt URI` can remove what a
// killed run left.
type LibvirtProvisioner struct {
	spec ExecSpec
	lv   LibvirtSpec
	log  io.Writer
	run  libvirtRun
	held chan struct{}

	// dial, image, agentExe and waitAgent are replaced in tests.
	dial      func(ctx context.Context, uri string) (libvirtConn, error)
	image     func(ctx context.Context) (*vmimage.Image, error)
	agentExe  func(dir string) (string, error)
	waitAgent func(ctx context.Context, h Host, timeout time.Duration) error

	// booting holds a token per guest between its start and its agent's
	// first answer: one per hypervisor CPU for each guest CPU, as the VM
	// lab's MaxBooting. Boots are CPU-bound (all of it under TCG): more
	// at once only stretch every one of them. Made at connect.
	booting chan struct{}

	mu       sync.Mutex // guards what follows
	conn     libvirtConn
	domType  string // "kvm" or "qemu", from the capabilities
	img      *vmimage.Image
	pool     libvirt.StoragePool
	kernel   string // the kernel volume's path on the hypervisor
	dir      string // certificates and initramfs files, "" until needed
	exe      string // the guests' agent binary, in dir
	subnet   int    // third octet of the management network 198.19.X.0/24
	nets     map[string]*libvirtNet
	slots    []bool // slot i+1 taken
	machines map[string]*libvirtGuest
}

// libvirtNet is a network of the provisioner and how many guests use it.
type libvirtNet struct {
	net  libvirt.Network
	name string
	refs int
}

// libvirtGuest is what a reservation made on the hypervisor.
type libvirtGuest struct {
	slot   int
	dom    libvirt.Domain
	hasDom bool
	vol    libvirt.StorageVol
	hasVol bool
	nets   []string // keys of nets it holds a reference on
}

// libvirtMgmtKey is the key of the management network in nets (test
// network labels are never empty).
const libvirtMgmtKey = ""

// NewLibvirtProvisioner makes the provisioner of spec (spec.Libvirt set);
// progress lines go to log (nil: discarded). It connects to the
// hypervisor at the first Reserve.
func NewLibvirtProvisioner(spec ExecSpec, log io.Writer) *LibvirtProvisioner {
	lv := *spec.Libvirt
	if lv.MemoryMiB == 0 {
		lv.MemoryMiB = 512
	}
	if lv.CPUs == 0 {
		lv.CPUs = 1
	}
	if lv.StoragePool == "" {
		lv.StoragePool = "default"
	}
	if lv.BootTimeout == 0 {
		lv.BootTimeout = 3 * time.Minute
	}
	if spec.Idle <= 0 {
		spec.Idle = defaultIdle
	}
	if log == nil {
		log = io.Discard
	}
	p := &LibvirtProvisioner{
		spec: spec, lv: lv, log: log, run: thisRun(),
		held:      make(chan struct{}, max(lv.Max, 1)),
		dial:      dialLibvirt,
		waitAgent: waitLibvirtAgent,
		nets:      map[string]*libvirtNet{},
		slots:     make([]bool, max(lv.Max, 1)),
		machines:  map[string]*libvirtGuest{},
	}
	p.image = func(ctx context.Context) (*vmimage.Image, error) {
		cache := lv.Image
		if cache == "default" {
			cache = ""
		}
		return vmimage.Build(ctx, vmimage.Options{Cache: cache, Log: log})
	}
	p.agentExe = func(dir string) (string, error) {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		return guestAgentBinary(exe, dir, log), nil
	}
	return p
}

// Name is the provisioner's name in the pool file.
func (p *LibvirtProvisioner) Name() string { return p.spec.Name }

// Max is the pool file's max.
func (p *LibvirtProvisioner) Max() int { return cap(p.held) }

// Idle is how long a machine no recipe uses is kept.
func (p *LibvirtProvisioner) Idle() time.Duration { return p.spec.Idle }

// Template is the pool host of the provisioner's n-th machine. Its
// interfaces' network labels are prefixed with the provisioner's name
// ("hv1:net1"): a recipe network is never split over two hypervisors,
// whose libvirt networks do not reach each other.
func (p *LibvirtProvisioner) Template(n int) Host {
	h := p.spec.Template(n)
	h.Arch = libvirtArch
	if p.lv.Accel == "tcg" {
		h.Params = maps.Clone(h.Params)
		if h.Params == nil {
			h.Params = map[string]string{}
		}
		h.Params[EmulatedParam] = "true"
	}
	h.Ifaces = make([]Iface, len(p.spec.Ifaces))
	for i, f := range p.spec.Ifaces {
		if f.Net != "" {
			f.Net = p.spec.Name + ":" + f.Net
		}
		h.Ifaces[i] = f
	}
	return h
}

// errorf makes an error naming the provisioner and its hypervisor.
func (p *LibvirtProvisioner) errorf(format string, args ...any) error {
	return fmt.Errorf("provisioner %s (libvirt %s): %w", p.spec.Name, p.lv.URI, fmt.Errorf(format, args...))
}

// Reserve boots a guest on the hypervisor, after waiting for one of the
// Max to be free, and returns it once its agent answers. A Reserve that
// fails or whose ctx ends leaves nothing it made on the hypervisor.
func (p *LibvirtProvisioner) Reserve(ctx context.Context, req Request) (*Machine, error) {
	select {
	case p.held <- struct{}{}:
	case <-ctx.Done():
		return nil, p.errorf("waiting for one of its %d guests to be free: %w", p.Max(), context.Cause(ctx))
	}
	m, err := p.reserve(ctx, req)
	if err != nil {
		p.cleanupIdle()
		<-p.held
		return nil, err
	}
	return m, nil
}

func (p *LibvirtProvisioner) reserve(ctx context.Context, req Request) (_ *Machine, err error) {
	g := &libvirtGuest{}
	defer func() {
		if err != nil {
			if uerr := p.undo(g); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}
	}()
	p.mu.Lock()
	if err := p.connect(ctx); err != nil {
		p.mu.Unlock()
		return nil, err
	}
	g.slot = p.takeSlot()
	ip := p.guestIP(g.slot)
	cfg := launch.VMConfig{
		Hostname: fmt.Sprintf("lnst-vm-%d", g.slot),
		Ifaces:   map[string]string{},
		LogLevel: "info",
		Mgmt: &launch.VMMgmt{
			HWAddr: p.mac(g.slot, 0), Name: "lnstmgmt", Addr: ip + "/24", Port: libvirtAgentPort,
			CA: "/lnst/tls/ca.pem", Cert: "/lnst/tls/agent.pem", Key: "/lnst/tls/agent-key.pem",
		},
	}
	spec := libvirtDomainSpec{
		Name: p.objName(strconv.Itoa(g.slot)), Run: p.run, Type: p.domType, Arch: libvirtArch,
		MemoryMiB: p.lv.MemoryMiB, CPUs: p.lv.CPUs, Kernel: p.kernel,
		Cmdline: strings.Join(append(append([]string{}, guestCmdline...), "lnst.hostname="+cfg.Hostname), " "),
	}
	mgmt, err := p.netRef(libvirtMgmtKey)
	if err != nil {
		p.mu.Unlock()
		return nil, err
	}
	g.nets = append(g.nets, libvirtMgmtKey)
	spec.Mgmt = libvirtNIC{MAC: cfg.Mgmt.HWAddr, Network: mgmt}
	host := p.Template(g.slot)
	for k, f := range p.spec.Ifaces {
		mac := p.mac(g.slot, k+1)
		name := ""
		if f.Net != "" {
			if name, err = p.netRef(f.Net); err != nil {
				p.mu.Unlock()
				return nil, err
			}
			g.nets = append(g.nets, f.Net)
		} else {
			// An interface on no network: a network of its own.
			key := fmt.Sprintf("%d.%s", g.slot, f.Name)
			if name, err = p.netRef(key); err != nil {
				p.mu.Unlock()
				return nil, err
			}
			g.nets = append(g.nets, key)
		}
		spec.NICs = append(spec.NICs, libvirtNIC{MAC: mac, Network: name})
		cfg.Ifaces[mac] = f.Name
		host.Ifaces[k].HWAddr = mac
	}
	certs, files, err := p.guestCerts(ip)
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	files = append(files, cpio.File{Path: "lnst/vm-" + cfg.Hostname + ".json", Mode: 0o644, Data: js})
	tUp := time.Now()
	if spec.Initrd, err = p.uploadInitrd(ctx, g, files); err != nil {
		return nil, err
	}
	upload := time.Since(tUp)
	xml, err := domainXML(spec)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	booting := p.booting
	p.mu.Unlock()
	select {
	case booting <- struct{}{}:
	case <-ctx.Done():
		return nil, p.errorf("guest %s waited for a boot slot (%d at once): %w", spec.Name, cap(booting), context.Cause(ctx))
	}
	defer func() { <-booting }()
	if err := ctx.Err(); err != nil {
		return nil, p.errorf("start guest %s: %w", spec.Name, context.Cause(ctx))
	}
	start := time.Now()
	// Paused until its console is open: the console has the whole boot.
	dom, err := p.conn.DomainCreateXML(xml, libvirt.DomainStartPaused)
	if err != nil {
		return nil, p.errorf("start guest %s: %w", spec.Name, err)
	}
	created := time.Since(start)
	g.dom, g.hasDom = dom, true
	console := &tailBuffer{max: 16 << 10}
	var w io.Writer = console
	if os.Getenv("LNST_LIBVIRT_CONSOLE") != "" {
		// Each console write to the log, with the time since the start.
		w = io.MultiWriter(console, writerFunc(func(b []byte) (int, error) {
			fmt.Fprintf(p.log, "%s +%.1fs: %q\n", spec.Name, time.Since(start).Seconds(), b)
			return len(b), nil
		}))
	}
	// It ends with the domain.
	go p.conn.DomainOpenConsole(dom, nil, w, 0)
	if err := p.conn.DomainResume(dom); err != nil {
		return nil, p.errorf("start guest %s: %w", spec.Name, err)
	}
	host.Agent = fmt.Sprintf("%s:%d", ip, libvirtAgentPort)
	host.TLS = certs
	id := strconv.Itoa(g.slot)
	host.Name = p.spec.Name + "/" + id
	if err := p.waitAgent(ctx, host, p.lv.BootTimeout); err != nil {
		return nil, p.errorf("guest %s: %w; console:\n%s", spec.Name, err, consoleLines(console, 20))
	}
	// The steps' times: a start (DomainCreateXML) of a minute or more is
	// libvirtd probing QEMU again (see the README's "On a libvirt
	// cluster": /dev/kvm).
	fmt.Fprintf(p.log, "libvirt %s: guest %s up in %.1fs (initramfs written and uploaded in %.1fs; domain started in %.1fs, then booted to its agent in %.1fs)\n",
		p.spec.Name, spec.Name, time.Since(start).Seconds(), upload.Seconds(), created.Seconds(), (time.Since(start) - created).Seconds())
	p.mu.Lock()
	p.machines[id] = g
	p.mu.Unlock()
	return &Machine{Provisioner: p.Name(), ID: id, Host: host}, nil
}

// waitLibvirtAgent polls the agent of h until it answers or timeout
// passes: the guest is booting.
func waitLibvirtAgent(ctx context.Context, h Host, timeout time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("its agent did not answer within %v", timeout))
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		err := agentAlive(actx, h)
		acancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", context.Cause(ctx), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// connect connects to the hypervisor, checks it runs guests of the image's
// arch, finds the storage pool and uploads the kernel: once, at the first
// Reserve. Called with p.mu held.
func (p *LibvirtProvisioner) connect(ctx context.Context) error {
	if p.conn != nil {
		return nil
	}
	c, err := p.dial(ctx, p.lv.URI)
	if err != nil {
		return p.errorf("the hypervisor is unreachable: %w", err)
	}
	fail := func(err error) error {
		c.Disconnect()
		return err
	}
	caps, err := c.ConnectGetCapabilities()
	if err != nil {
		return fail(p.errorf("read capabilities: %w", err))
	}
	archs, err := guestArchs(caps)
	if err != nil {
		return fail(p.errorf("%w", err))
	}
	types, ok := archs[libvirtArch]
	if !ok {
		var have []string
		for a := range archs {
			have = append(have, a)
		}
		return fail(p.errorf("the hypervisor runs no %s guests, the VM image's arch (it runs: %s)", libvirtArch, strings.Join(have, ", ")))
	}
	p.domType = "qemu"
	for _, t := range types {
		if t == "kvm" && p.lv.Accel != "tcg" {
			p.domType = "kvm"
		}
	}
	if p.lv.Accel == "kvm" && p.domType != "kvm" {
		return fail(p.errorf("accel kvm: the hypervisor offers no KVM for %s guests (domain types: %s)", libvirtArch, strings.Join(types, ", ")))
	}
	p.booting = make(chan struct{}, max(1, hostCPUs(caps)/p.lv.CPUs))
	pool, err := c.StoragePoolLookupByName(p.lv.StoragePool)
	if err != nil {
		return fail(p.errorf("storage pool %q: %w (make one: virsh pool-define-as %s dir --target /var/lib/libvirt/images && virsh pool-start %s)", p.lv.StoragePool, err, p.lv.StoragePool, p.lv.StoragePool))
	}
	if p.img == nil {
		if p.img, err = p.image(ctx); err != nil {
			return fail(p.errorf("VM image: %w", err))
		}
	}
	p.conn, p.pool = c, pool
	if p.kernel, err = p.uploadKernel(ctx); err != nil {
		p.conn = nil
		return fail(err)
	}
	p.subnet = 200 + int(hash32(p.run.ID+"/"+p.spec.Name)%50)
	return nil
}

// writerFunc is a function as an io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// consoleLines is the last n lines of a guest's console.
func consoleLines(t *tailBuffer, n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(t.b), "\r\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	io.WriteString(h, s)
	return h.Sum32()
}

// uploadKernel uploads the image's kernel into the storage pool as
// "lnst-kernel-<hash>", unless a volume of that name is there already,
// and returns its path. The volume is shared by every run (it is the same
// file): gc leaves it.
func (p *LibvirtProvisioner) uploadKernel(ctx context.Context) (string, error) {
	f, err := os.Open(p.img.Kernel)
	if err != nil {
		return "", p.errorf("VM image: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return "", p.errorf("VM image: %w", err)
	}
	name := "lnst-kernel-" + hex.EncodeToString(h.Sum(nil))[:16]
	if v, err := p.conn.StorageVolLookupByName(p.pool, name); err == nil {
		path, err := p.conn.StorageVolGetPath(v)
		if err != nil {
			return "", p.errorf("kernel volume %s: %w", name, err)
		}
		return path, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	v, err := p.createVolume(ctx, name, "the kernel", f, uint64(size))
	if err != nil {
		return "", err
	}
	path, err := p.conn.StorageVolGetPath(v)
	if err != nil {
		p.conn.StorageVolDelete(v, 0)
		return "", p.errorf("kernel volume %s: %w", name, err)
	}
	return path, nil
}

// createVolume makes volume name of size bytes in the storage pool and
// uploads r into it; a volume it made and could not fill is deleted. A
// pool with less room than size is refused up front, naming it.
func (p *LibvirtProvisioner) createVolume(ctx context.Context, name, what string, r io.Reader, size uint64) (libvirt.StorageVol, error) {
	_, _, _, avail, err := p.conn.StoragePoolGetInfo(p.pool)
	if err != nil {
		return libvirt.StorageVol{}, p.errorf("storage pool %q: %w", p.lv.StoragePool, err)
	}
	if avail < size {
		return libvirt.StorageVol{}, p.errorf("storage pool %q is full: %s free, %s needs %s", p.lv.StoragePool, mib(avail), what, mib(size))
	}
	xml, err := volumeXML(name, size)
	if err != nil {
		return libvirt.StorageVol{}, err
	}
	v, err := p.conn.StorageVolCreateXML(p.pool, xml, 0)
	if err != nil {
		return libvirt.StorageVol{}, p.errorf("storage pool %q: create volume %s for %s: %w", p.lv.StoragePool, name, what, err)
	}
	if err := ctx.Err(); err != nil {
		p.conn.StorageVolDelete(v, 0)
		return libvirt.StorageVol{}, p.errorf("upload %s: %w", what, context.Cause(ctx))
	}
	if err := p.conn.StorageVolUpload(v, r, 0, size, 0); err != nil {
		p.conn.StorageVolDelete(v, 0)
		return libvirt.StorageVol{}, p.errorf("storage pool %q: upload %s to volume %s: %w", p.lv.StoragePool, what, name, err)
	}
	return v, nil
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// uploadInitrd writes guest g's initramfs (the image's, the agent, files)
// and uploads it as the guest's volume; it returns the volume's path.
func (p *LibvirtProvisioner) uploadInitrd(ctx context.Context, g *libvirtGuest, files []cpio.File) (string, error) {
	f, err := os.CreateTemp(p.dir, "initrd-*.cpio")
	if err != nil {
		return "", p.errorf("guest initramfs: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := writeAgentInitrd(f, p.img.Initrd, p.exe, files); err != nil {
		return "", p.errorf("guest initramfs: %w", err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	name := p.objName(strconv.Itoa(g.slot) + "-initrd")
	v, err := p.createVolume(ctx, name, "the guest's initramfs", f, uint64(size))
	if err != nil {
		return "", err
	}
	g.vol, g.hasVol = v, true
	path, err := p.conn.StorageVolGetPath(v)
	if err != nil {
		return "", p.errorf("initramfs volume %s: %w", name, err)
	}
	return path, nil
}

// guestCerts makes the certificates of the guest at ip: the run's CA
// (made at the first guest, in p.dir), the agent's certificate for ip and
// the controller's client certificate. It returns the controller's TLS
// files and the guest's, as initramfs files. Called with p.mu held.
func (p *LibvirtProvisioner) guestCerts(ip string) (TLSFiles, []cpio.File, error) {
	if p.dir == "" {
		dir, err := os.MkdirTemp("", libvirtRunDirPrefix(p.run.ID)+p.spec.Name+"-")
		if err != nil {
			return TLSFiles{}, nil, p.errorf("%w", err)
		}
		p.dir = dir
		if p.exe, err = p.agentExe(dir); err != nil {
			return TLSFiles{}, nil, p.errorf("the guests' agent: %w", err)
		}
	}
	certs := filepath.Join(p.dir, "certs")
	if err := agentconn.GenerateCerts(certs, []string{ip}, []string{"controller"}, 7*24*time.Hour); err != nil {
		return TLSFiles{}, nil, p.errorf("%w", err)
	}
	files := []cpio.File{
		{Path: "lnst/tls", Mode: os.ModeDir | 0o700},
		{Path: "lnst/tls/ca.pem", Mode: 0o644, Src: filepath.Join(certs, agentconn.CAFile)},
		{Path: "lnst/tls/agent.pem", Mode: 0o644, Src: filepath.Join(certs, ip+".pem")},
		{Path: "lnst/tls/agent-key.pem", Mode: 0o600, Src: filepath.Join(certs, ip+"-key.pem")},
	}
	tf := TLSFiles{CA: filepath.Join(certs, agentconn.CAFile), Cert: filepath.Join(certs, "controller.pem"), Key: filepath.Join(certs, "controller-key.pem")}
	return tf, files, nil
}

// libvirtRunDirPrefix is how the directories of run id on the controller
// (its CA and key, the guests' initramfs files) are named, in
// os.TempDir(): lnst gc removes a dead run's.
func libvirtRunDirPrefix(id string) string { return "lnst-libvirt-" + id + "-" }

// objName is the name of one of the run's objects on the hypervisor:
// "lnst-<run>-<provisioner>-<what>".
func (p *LibvirtProvisioner) objName(what string) string {
	return libvirtPrefix + p.run.ID + "-" + p.spec.Name + "-" + what
}

// guestIP is the management address of the guest in slot n.
func (p *LibvirtProvisioner) guestIP(n int) string {
	return fmt.Sprintf("198.19.%d.%d", p.subnet, 10+n)
}

// mac is the hardware address of NIC k (0: management) of slot n's
// guest: locally administered, unique among the run's guests of the
// hypervisor.
func (p *LibvirtProvisioner) mac(n, k int) string {
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", hash32(p.run.ID)&0xff, p.subnet, n, k)
}

// takeSlot takes the lowest free slot (from 1). Called with p.mu held;
// the held token guarantees one is free.
func (p *LibvirtProvisioner) takeSlot() int {
	for i, taken := range p.slots {
		if !taken {
			p.slots[i] = true
			return i + 1
		}
	}
	panic("libvirt provisioner: no free slot under its max")
}

// netRef takes a reference on network key (a label, or the management
// network), creating it on first use, and returns its libvirt name.
// Called with p.mu held.
func (p *LibvirtProvisioner) netRef(key string) (string, error) {
	if n := p.nets[key]; n != nil {
		n.refs++
		return n.name, nil
	}
	if key == libvirtMgmtKey {
		// Another run's management network may have the subnet: try
		// the next ones.
		var first error
		for try := range 8 {
			sub := 200 + (p.subnet-200+try)%50
			name := p.objName("mgmt")
			xml, err := networkXML(name, p.run, fmt.Sprintf("198.19.%d.1/24", sub))
			if err != nil {
				return "", err
			}
			n, err := p.conn.NetworkCreateXML(xml)
			if err == nil {
				p.subnet = sub
				p.nets[key] = &libvirtNet{net: n, name: name, refs: 1}
				return name, nil
			}
			if first == nil {
				first = err
			}
		}
		return "", p.errorf("create management network: %w", first)
	}
	name := p.objName("net-" + netNameSafe(key))
	xml, err := networkXML(name, p.run, "")
	if err != nil {
		return "", err
	}
	n, err := p.conn.NetworkCreateXML(xml)
	if err != nil {
		return "", p.errorf("create network %s for label %q: %w", name, key, err)
	}
	p.nets[key] = &libvirtNet{net: n, name: name, refs: 1}
	return name, nil
}

// netNameSafe maps a network label to characters libvirt names take.
func netNameSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// netUnref drops a reference on network key, destroying the network
// (transient: destroyed is gone) with the last. Called with p.mu held.
func (p *LibvirtProvisioner) netUnref(key string) error {
	n := p.nets[key]
	if n == nil {
		return nil
	}
	if n.refs--; n.refs > 0 {
		return nil
	}
	delete(p.nets, key)
	if err := p.conn.NetworkDestroy(n.net); err != nil {
		return p.errorf("destroy network %s: %w", n.name, err)
	}
	return nil
}

// undo destroys what g holds on the hypervisor: its domain, its volume,
// its references on networks, its slot.
func (p *LibvirtProvisioner) undo(g *libvirtGuest) error {
	var errs []error
	if g.hasDom {
		if err := p.conn.DomainDestroy(g.dom); err != nil {
			errs = append(errs, p.errorf("destroy guest %s: %w", g.dom.Name, err))
		}
		g.hasDom = false
	}
	if g.hasVol {
		if err := p.conn.StorageVolDelete(g.vol, 0); err != nil {
			errs = append(errs, p.errorf("delete volume %s: %w", g.vol.Name, err))
		}
		g.hasVol = false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, key := range g.nets {
		if err := p.netUnref(key); err != nil {
			errs = append(errs, err)
		}
	}
	g.nets = nil
	if g.slot > 0 {
		p.slots[g.slot-1] = false
		g.slot = 0
	}
	return errors.Join(errs...)
}

// Alive asks the guest's agent for a Hello.
func (p *LibvirtProvisioner) Alive(ctx context.Context, m *Machine) error {
	return agentAlive(ctx, m.Host)
}

// Release destroys the guest and its volume, and the networks no other
// guest of the provisioner uses.
func (p *LibvirtProvisioner) Release(ctx context.Context, m *Machine) error {
	if !m.markReleased() {
		return nil
	}
	defer func() { <-p.held }()
	p.mu.Lock()
	g := p.machines[m.ID]
	delete(p.machines, m.ID)
	p.mu.Unlock()
	if g == nil {
		return nil
	}
	err := p.undo(g)
	p.cleanupIdle()
	return err
}

// cleanupIdle, once the provisioner holds no guest, drops its connection
// and removes its directory (the run's CA with it): nothing is left on
// the controller or the hypervisor between reservations.
func (p *LibvirtProvisioner) cleanupIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.machines) > 0 || len(p.nets) > 0 {
		return
	}
	for _, taken := range p.slots {
		if taken {
			return
		}
	}
	if p.conn != nil {
		p.conn.Disconnect()
		p.conn = nil
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
		p.dir, p.exe = "", ""
	}
}
