package pool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/devices/tc"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/cpio"
	"github.com/lnst-go/lnst/internal/launch"
	"github.com/lnst-go/lnst/pool/vmimage"
	"google.golang.org/grpc"
)

// VMOptions make a Lab a VM lab: each host of a topology is a QEMU guest
// booting the image's kernel, with the test binary as its agent.
type VMOptions struct {
	// Image is what the guests boot (vmimage.Build).
	Image *vmimage.Image
	// MemoryMiB is each guest's memory (default 512).
	MemoryMiB int
	// CPUs is each guest's number of virtual CPUs (default 1). Under TCG
	// a second CPU is a second QEMU thread; Open vSwitch 3.1 needs two
	// (on one, its per-CPU upcall dispatch starts no handler thread and
	// loses every packet it must look at).
	CPUs int
	// BootTimeout bounds a guest's boot to a serving agent (default 3 min:
	// without KVM, QEMU emulates the CPU). It counts from the guest's
	// QEMU start, not from the wait for a boot slot (MaxBooting).
	BootTimeout time.Duration
	// MaxBooting is how many guests of the lab boot at once (default:
	// one per host CPU for each guest CPU, at least one). A guest holds
	// its slot from QEMU's start until its agent answers; the others
	// wait. Booting is CPU-bound (under TCG the whole boot is emulated),
	// so more at once only share the same cores, each guest's boot
	// stretches towards its BootTimeout, and every guest's memory is
	// touched at the same time.
	MaxBooting int
	// Accel is how QEMU runs the guests: AccelAuto ("" too) uses KVM
	// where DefaultAccelChooser finds it works, else TCG; AccelKVM fails
	// StartVMLab where KVM does not work; AccelTCG always emulates.
	Accel Accel
	// AgentLogLevel is the guest agents' log level; their log goes to the
	// guest's console file.
	AgentLogLevel string
	// Log receives progress lines ("booting 2 VMs"); nil discards them.
	Log io.Writer
}

// vmPort is the name of the virtio-serial port a guest's agent serves on.
const vmPort = "lnst.agent"

// vmStateSerial is the serial of each guest's state disk, by which its
// agent finds it; vmStateSize is the disk's size (a sparse file: blocks
// cost only once written).
const (
	vmStateSerial = "lnst-state"
	vmStateSize   = 512 << 20
)

// vmLab is the VM half of a Lab: the run directory with the guests'
// initramfs, sockets and consoles.
type vmLab struct {
	opts VMOptions
	dir  string
	exe  string

	mu sync.Mutex // serialises writing initramfs files

	// booting holds a token per guest between its QEMU start and its
	// agent's first answer (VMOptions.MaxBooting), across instances.
	booting chan struct{}
}

// vmGuest is one booted guest of an instance.
type vmGuest struct {
	name    string // agent-side name, "h1.3"
	conn    *guestConn
	client  pb.AgentClient
	hello   *pb.HelloReply
	console string
	disk    string // the state disk's file
	sock    string // the agent's virtio-serial socket
	qmp     string // the QMP socket (ResetGuest)
}

// StartVMLab starts a VM lab: a lab agent whose namespace hosts run the
// QEMU processes and switch their taps (nothing is created in the root
// namespace), and a run directory for the guests' files, removed at Close.
func StartVMLab(opts LabOptions, vm VMOptions) (*Lab, error) {
	if vm.Image == nil {
		return nil, errors.New("start VM lab: no image")
	}
	if err := vmimage.Check(); err != nil {
		return nil, fmt.Errorf("start VM lab: %w", err)
	}
	if vm.CPUs == 0 {
		vm.CPUs = 1
	}
	if vm.MemoryMiB == 0 {
		vm.MemoryMiB = 512
	}
	if vm.BootTimeout == 0 {
		vm.BootTimeout = 3 * time.Minute
	}
	if vm.MaxBooting <= 0 {
		vm.MaxBooting = max(1, runtime.NumCPU()/vm.CPUs)
	}
	if vm.Log == nil {
		vm.Log = io.Discard
	}
	accel, err := DefaultAccelChooser.Choose(context.Background(), vm.Accel)
	if err != nil {
		return nil, fmt.Errorf("start VM lab: %w", err)
	}
	vm.Accel = accel
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start VM lab: find this executable: %w", err)
	}
	dir, err := newRunDir()
	if err != nil {
		return nil, fmt.Errorf("start VM lab: %w", err)
	}
	exe = guestAgentBinary(exe, dir, vm.Log)
	l, err := StartLab(opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l.vm = &vmLab{opts: vm, dir: dir, exe: exe, booting: make(chan struct{}, vm.MaxBooting)}
	return l, nil
}

// newRunDir makes the VM lab's run directory. It holds the guests'
// consoles, disks and the QEMU sockets (each guest's agent and QMP
// socket), none of which checks who connects: the directory, new and mode
// 0700 (MkdirTemp), keeps every other user out. The controller's pid in
// the name tells whose VMs a QEMU process (its command line names the
// directory) belongs to.
func newRunDir() (string, error) {
	return os.MkdirTemp("", fmt.Sprintf("lnst-vmlab-%d-", os.Getpid()))
}

// guestAgentBinary is the binary the guests run as their agent: a copy
// of this executable, exe, without its symbol table and debug sections
// (binutils' strip, into the run directory dir), or exe itself where strip
// is missing or fails (said on log). Go's tracebacks do not need what strip
// removes. Every guest unpacks its agent into its RAM and QEMU maps the
// whole initramfs: a 26 MB test binary stripped to 18 MB took 8 MiB off
// each, twice, of an idle guest's resident memory, and a third of a
// second off its boot under TCG.
func guestAgentBinary(exe, dir string, log io.Writer) string {
	out := filepath.Join(dir, "agent")
	if b, err := exec.Command("strip", "-o", out, exe).CombinedOutput(); err != nil {
		fmt.Fprintf(log, "VM lab: guests run the unstripped %s (strip: %v %s)\n", exe, err, bytes.TrimSpace(b))
		os.Remove(out)
		return exe
	}
	return out
}

// guestFiles are the files of guest name (agent-side name) in the run
// directory dir: its console, state disk, agent socket and QMP socket.
func guestFiles(dir, name string) (console, disk, sock, qmp string) {
	return filepath.Join(dir, name+".console"), filepath.Join(dir, name+".disk"), filepath.Join(dir, name+".sock"), qmpSocket(dir, name)
}

// agentArchive writes the initramfs an instance's guests boot: the
// image's base archive followed by one holding this test binary as
// /lnst/agent, /lnst/run, which starts it with the guest's own config, and
// the configs (the kernel unpacks concatenated archives in order).
func (v *vmLab) agentArchive(configs []cpio.File) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	f, err := os.CreateTemp(v.dir, "initrd-*.cpio")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := writeAgentInitrd(f, v.opts.Image.Initrd, v.exe, configs); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// writeAgentInitrd writes to dst the initramfs a guest boots: the image's
// base archive baseInitrd followed by one holding exe as /lnst/agent,
// /lnst/run, which starts it with the guest's own config
// (/lnst/vm-<hostname>.json), and extra (the kernel unpacks concatenated
// archives in order). The VM lab and the libvirt provisioner both boot it.
func writeAgentInitrd(dst io.Writer, baseInitrd, exe string, extra []cpio.File) error {
	base, err := os.Open(baseInitrd)
	if err != nil {
		return fmt.Errorf("VM image: %w", err)
	}
	defer base.Close()
	w := bufio.NewWriterSize(dst, 1<<20)
	if _, err := io.Copy(w, base); err != nil {
		return err
	}
	run := "#!/bin/sh\n" +
		"export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root\n" +
		"exec env " + launch.VMConfigEnv + "=/lnst/vm-$(hostname).json /lnst/agent\n"
	files := []cpio.File{
		{Path: "lnst", Mode: os.ModeDir | 0o755},
		{Path: "lnst/agent", Mode: 0o755, Src: exe},
		{Path: "lnst/run", Mode: 0o755, Data: []byte(run)},
	}
	if err := cpio.Write(w, append(files, extra...)); err != nil {
		return fmt.Errorf("VM initramfs: %w", err)
	}
	return w.Flush()
}

// vmMAC is the hardware address of interface k of host h of instance in:
// locally administered (QEMU's 52:54:00 prefix), unique in the lab.
func vmMAC(in, h, k int) string {
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", (in>>8)&0xff, in&0xff, h&0xff, k&0xff)
}

// buildVMs boots one guest per topology host. A "vmm" namespace host of
// the lab agent holds, per network, a bridge, and per guest interface a
// tap on it; the guests' QEMU processes are that host's jobs, so the
// instance's group undoes them all: QEMU killed, taps and bridges deleted,
// the namespace gone. Guests boot in parallel.
func (l *Lab) buildVMs(ctx context.Context, in *Instance, t Topology) error {
	v := l.vm
	prepStart := time.Now()
	vmm := fmt.Sprintf("vmm.%d", in.id)
	if _, err := l.client.CreateHost(ctx, &pb.CreateHostRequest{Name: vmm, Group: in.group}); err != nil {
		return fmt.Errorf("VM lab: create the switch host: %w", err)
	}
	// The switch's bridges and taps carry the guests' frames and send none
	// of their own: no IPv6 link-local addresses, router solicitations or
	// duplicate address detection on the test networks (an empty bridge
	// has carrier, and setting it up would wait for its DAD).
	for _, key := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		if _, err := l.client.WriteValue(ctx, &pb.WriteValueRequest{Host: vmm, Group: in.group, Kind: "sysctl", Key: key, Value: "1"}); err != nil {
			return fmt.Errorf("VM lab: switch host: %w", err)
		}
	}
	up := true
	bridges := map[string]string{}
	for _, h := range t.Hosts {
		for _, i := range h.Ifaces {
			if _, ok := bridges[i.Net]; ok {
				continue
			}
			br := fmt.Sprintf("br%d", len(bridges))
			if err := l.createLink(ctx, vmm, in.group, devices.Bridge{Name: br}); err != nil {
				return fmt.Errorf("VM lab: network %s: %w", i.Net, err)
			}
			if _, err := l.client.SetLink(ctx, &pb.SetLinkRequest{Host: vmm, Group: in.group, Name: br, Up: &up}); err != nil {
				return fmt.Errorf("VM lab: network %s: %w", i.Net, err)
			}
			bridges[i.Net] = br
		}
	}
	var configs []cpio.File
	args := map[string][]string{}
	guests := map[string]*vmGuest{}
	var nguests int
	for hi, h := range t.Hosts {
		if h.Namespace {
			if err := l.joinNamespaceHost(ctx, in, vmm, hi, h, bridges); err != nil {
				return err
			}
			continue
		}
		nguests++
		name := fmt.Sprintf("%s.%d", h.Name, in.id)
		console, disk, sock, qmp := guestFiles(v.dir, name)
		g := &vmGuest{name: name, console: console, disk: disk, sock: sock, qmp: qmp}
		guests[h.Name] = g
		if err := makeStateDisk(ctx, g.disk); err != nil {
			return fmt.Errorf("VM lab: host %s: %w", h.Name, err)
		}
		cfg := launch.VMConfig{Hostname: hostLabel(hi, in.id), Port: vmPort, Ifaces: map[string]string{}, LogLevel: v.opts.AgentLogLevel, StateDisk: vmStateSerial}
		a := qemuArgs(v.opts.Image, v.opts.Accel, v.opts.MemoryMiB, v.opts.CPUs, "lnst.hostname="+cfg.Hostname)
		a = append(a,
			"-chardev", "file,id=console,path="+g.console, "-serial", "chardev:console",
			"-device", "virtio-serial-pci",
			"-chardev", "socket,id=agent,path="+g.sock+",server=on,wait=off",
			"-device", "virtserialport,chardev=agent,name="+vmPort,
			"-drive", "if=none,id=state,format=raw,file="+g.disk,
			"-device", "virtio-blk-pci,drive=state,serial="+vmStateSerial,
		)
		a = append(a, qmpArgs(g.qmp)...) // ResetGuest
		for k, i := range h.Ifaces {
			tap := fmt.Sprintf("t%d.%d.%d", in.id, hi, k)
			if err := l.createLink(ctx, vmm, in.group, devices.Tuntap{Name: tap, Mode: "tap", Multiqueue: true}); err != nil {
				return fmt.Errorf("VM lab: host %s interface %s: %w", h.Name, i.Name, err)
			}
			br := bridges[i.Net]
			if _, err := l.client.SetLink(ctx, &pb.SetLinkRequest{Host: vmm, Group: in.group, Name: tap, Up: &up, Master: &br}); err != nil {
				return fmt.Errorf("VM lab: host %s interface %s: %w", h.Name, i.Name, err)
			}
			if i.Impair != nil {
				// The tap's egress is what the guest receives.
				kind, spec, err := tc.MarshalQdisc(i.Impair)
				if err == nil {
					_, err = l.client.TcAddQdisc(ctx, &pb.TcQdiscRequest{Host: vmm, Group: in.group, Dev: tap, Kind: kind, Spec: spec})
				}
				if err != nil {
					return fmt.Errorf("VM lab: host %s interface %s: impairment: %w", h.Name, i.Name, err)
				}
			}
			mac := vmMAC(in.id, hi, k)
			cfg.Ifaces[mac] = in.Ifname(h.Name, i.Name)
			a = append(a, vmNICArgs(k, tap, mac)...)
		}
		js, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		configs = append(configs, cpio.File{Path: "lnst/vm-" + cfg.Hostname + ".json", Mode: 0o644, Data: js})
		args[h.Name] = a
	}
	prep := time.Since(prepStart)
	initrd, err := v.agentArchive(configs)
	if err != nil {
		return fmt.Errorf("VM lab: %w", err)
	}
	in.initrd = initrd
	in.guests = guests
	fmt.Fprintf(v.opts.Log, "VM lab: booting %d VMs, %d at once (%s, %s, %d MiB each; switch and taps made in %.2fs, initramfs written in %.2fs)\n",
		nguests, min(nguests, cap(v.booting)), v.opts.Image.Release, v.opts.Accel, v.opts.MemoryMiB, prep.Seconds(), (time.Since(prepStart) - prep).Seconds())
	start := time.Now()
	errs := make(chan error, nguests)
	for _, h := range t.Hosts {
		if h.Namespace {
			continue
		}
		g := guests[h.Name]
		a := args[h.Name]
		a[slices.Index(a, "-initrd")+1] = initrd
		go func() { errs <- l.bootGuest(ctx, vmm, in.group, g, a) }()
	}
	var first error
	for range nguests {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return first
	}
	fmt.Fprintf(v.opts.Log, "VM lab: %d VMs up in %.1fs\n", nguests, time.Since(start).Seconds())
	return nil
}

// qemuArgs is the QEMU command line of a guest booting img, without its
// console, agent port and NICs; BenchmarkVMLabTwoHosts boots its bare
// guests with it too. Under KVM the guest gets the host's CPU model
// ("-cpu host") and its cpus as real vCPUs. Under TCG, "-cpu max" gives
// the guest RDRAND, so its kernel's random pool is ready at boot: with
// QEMU's default CPU the agent's first read of crypto/rand waited 1.5 s
// for it. A guest that reboots (Host.Reboot) boots -kernel again in the
// same QEMU process, keeping its sockets and disks; one that powers off
// ends QEMU. A kernel panic reboots too (panic=-1): bootGuest fails on
// the panic message in the console. no_timer_check skips the kernel's
// check that the emulated timer interrupt arrives in time: on a loaded
// host a TCG guest failed it ("IO-APIC + timer doesn't work!") and
// panicked at boot.
//
// What an idle guest costs the host (QEMU's RSS; measured under TCG with
// the default image, BenchmarkVMLabTwoHosts prints it) is mostly guest
// memory the guest once touched, the translated code and the mapped
// initramfs. Two options keep it small:
//
//   - tb-size caps TCG's translation cache (vmTBSizeMiB): QEMU's default
//     on a 64-bit host is up to 1 GiB, and a guest's boot alone filled
//     80 MiB of it with code that runs once; a full cache is flushed and
//     refilled with what still runs.
//   - a virtio balloon with free page reporting: the guest's
//     virtio_balloon driver (loaded by the image's /init) reports free
//     memory in 2 MiB blocks and QEMU gives it back to the host. Without
//     it, memory the guest freed (the initramfs's own copy after it is
//     unpacked, boot-time allocations) stays resident in QEMU.
func qemuArgs(img *vmimage.Image, accel Accel, memMiB, cpus int, cmdline ...string) []string {
	a := []string{"qemu-system-x86_64", "-accel", fmt.Sprintf("tcg,tb-size=%d", vmTBSizeMiB), "-cpu", "max"}
	if accel == AccelKVM {
		a = []string{"qemu-system-x86_64", "-accel", "kvm", "-cpu", "host"}
	}
	return append(a, "-m", fmt.Sprint(memMiB), "-smp", fmt.Sprint(cpus),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-device", "virtio-balloon-pci,free-page-reporting=on",
		"-kernel", img.Kernel, "-initrd", img.Initrd,
		"-append", strings.Join(append(slices.Clone(guestCmdline), cmdline...), " "),
	)
}

// guestCmdline is the start of a guest's kernel command line (see
// qemuArgs), in the VM lab and on libvirt.
var guestCmdline = []string{"console=ttyS0", "quiet", "panic=-1", "no_timer_check"}

// vmTBSizeMiB is the TCG translation cache of each guest, in MiB. Boot
// times with 32 and with QEMU's default (1 GiB, of which boot filled 80
// MiB) were the same within this machine's noise.
const vmTBSizeMiB = 32

// hostLabel is a guest's hostname: unique in the lab, so each guest finds
// its own config in the shared archive.
func hostLabel(h, in int) string { return fmt.Sprintf("lnst-vm%d-%d", in, h) }

func (l *Lab) createLink(ctx context.Context, host, group string, spec devices.Spec) error {
	kind, data, err := devices.Marshal(spec)
	if err != nil {
		return err
	}
	_, err = l.client.CreateLink(ctx, &pb.CreateLinkRequest{Host: host, Group: group,
		Spec: &pb.CreateLinkRequest_Generic{Generic: &pb.GenericSpec{Kind: kind, Json: data}}})
	if err != nil {
		return fmt.Errorf("create %s %s: %w", spec.Kind(), spec.LinkName(), err)
	}
	return nil
}

// guestRedialAfter is how long bootGuest waits for a guest whose console
// says its agent serves to answer before it drops the connection and makes
// a new one; guestRedialPause is the moment it leaves the guest to read
// the old connection's end before the new one sends its handshake.
const (
	guestRedialAfter = 10 * time.Second
	guestRedialPause = 500 * time.Millisecond
)

// consoleHas reports whether the console file holds line.
func consoleHas(console, line string) bool {
	b, err := os.ReadFile(console)
	return err == nil && bytes.Contains(b, []byte(line))
}

// bootGuest starts a guest's QEMU as a job of the switch host and waits
// until its agent answers on the virtio-serial socket. It first waits for
// a boot slot (VMOptions.MaxBooting), held until the agent answers.
func (l *Lab) bootGuest(ctx context.Context, vmm, group string, g *vmGuest, argv []string) error {
	v := l.vm
	select {
	case v.booting <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("VM lab: %s waited for a boot slot: %w", g.name, ctx.Err())
	}
	defer func() { <-v.booting }()
	sock := g.sock
	job, err := l.client.StartJob(ctx, &pb.StartJobRequest{Host: vmm, Group: group, Argv: argv, Desc: "VM " + g.name})
	if err != nil {
		return fmt.Errorf("VM lab: start QEMU for %s: %w", g.name, err)
	}
	conn, err := newGuestConn(sock)
	if err != nil {
		return err
	}
	g.conn, g.client = conn, pb.NewAgentClient(conn)
	deadline := time.Now().Add(v.opts.BootTimeout)
	var ready time.Time // when the console first said the agent serves
	for {
		// QEMU makes the socket at start; the agent answers once booted.
		if _, err := os.Stat(sock); err == nil {
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			g.hello, err = g.client.Hello(hctx, &pb.HelloRequest{}, grpc.WaitForReady(true))
			cancel()
			if err == nil {
				return nil
			}
			// The port is one byte stream under every connection: a
			// handshake that reached the guest on an older connection is
			// lost, and the connection can stay silent (seen under load:
			// a guest that said it serves and answered no Hello for
			// minutes). A guest that serves but has not answered for
			// guestRedialAfter gets a new connection.
			switch {
			case ready.IsZero() && consoleHas(g.console, launch.ReadyLine):
				ready = time.Now()
			case !ready.IsZero() && time.Since(ready) > guestRedialAfter:
				if err := conn.redial(); err != nil {
					return fmt.Errorf("VM lab: redial the agent of %s: %w", g.name, err)
				}
				ready = time.Now()
				time.Sleep(guestRedialPause)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		r, err := l.client.WaitJob(wctx, &pb.JobRef{Host: vmm, Id: job.Id})
		cancel()
		if err == nil {
			return fmt.Errorf("VM lab: QEMU for %s exited (%s) before its agent answered; %s", g.name, jobEnd(r), consoleTail(g.console, 20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("VM lab: the agent of %s did not answer within %v; %s", g.name, v.opts.BootTimeout, consoleTail(g.console, 20))
		}
		if consolePanicked(g.console) {
			return fmt.Errorf("VM lab: the kernel of %s panicked before its agent answered; %s", g.name, consoleTail(g.console, 20))
		}
	}
}

func jobEnd(r *pb.JobResult) string {
	s := fmt.Sprintf("exit %d", r.ExitCode)
	if msg := strings.TrimSpace(string(r.Stderr)); msg != "" {
		s += ": " + msg
	}
	return s
}

// consoleTail is the last n lines of a guest's console file, for errors.
func consoleTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no console output"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "console " + path + ":\n" + strings.Join(lines, "\n")
}

// GuestClient is the agent of a VM instance's host (by its topology name),
// nil on a namespace lab. Its own namespace is host "".
func (in *Instance) GuestClient(host string) (pb.AgentClient, *pb.HelloReply) {
	g := in.guests[host]
	if g == nil {
		return nil, nil
	}
	return g.client, g.hello
}

// Console returns the last n lines of a VM host's serial console, "" on a
// namespace lab.
func (in *Instance) Console(host string, n int) string {
	g := in.guests[host]
	if g == nil {
		return ""
	}
	return consoleTail(g.console, n)
}

// closeGuests drops the instance's agent connections and files; the
// guests themselves end with the instance's group on the lab agent.
func (in *Instance) closeGuests() {
	for _, g := range in.guests {
		if g.conn != nil {
			g.conn.Close()
		}
		os.Remove(g.sock)
		os.Remove(g.qmp)
		os.Remove(g.disk)
	}
	if in.initrd != "" {
		os.Remove(in.initrd)
	}
}

// vmNICQueues is how many queue pairs a VM lab guest's NIC has: enough
// for the NIC recipes (channels, interrupt pinning, RSS) to spread flows
// over; the guest's driver starts with one per CPU, up to this.
const vmNICQueues = 4

// vmNICArgs are QEMU's arguments of guest NIC k on tap device tap (made
// multi-queue): a multiqueue virtio-net (one MSI-X vector per queue, two
// per pair, plus config and control) with RSS, which QEMU does in
// software when it cannot load its eBPF program.
func vmNICArgs(k int, tap, mac string) []string {
	// romfile= leaves out the NIC's iPXE option ROM: the guest boots
	// from -kernel, and SeaBIOS initialising the ROM under TCG cost
	// about a third of a second per guest.
	return []string{"-netdev", fmt.Sprintf("tap,id=n%d,ifname=%s,script=no,downscript=no,queues=%d", k, tap, vmNICQueues),
		"-device", fmt.Sprintf("virtio-net-pci,netdev=n%d,mac=%s,romfile=,mq=on,vectors=%d,rss=on", k, mac, 2*vmNICQueues+2)}
}
