package pool

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/internal/launch"
	"github.com/lnst-go/lnst/internal/sockprobe"
	"github.com/lnst-go/lnst/pool/vmimage"
	"google.golang.org/grpc"
)

// vmImage builds (or finds cached) the VM lab image, or skips the test:
// booting guests needs QEMU, Debian's packages and root for the taps.
func vmImage(tb testing.TB) *vmimage.Image {
	tb.Helper()
	if testing.Short() {
		tb.Skip("VM lab tests boot QEMU guests: not run with -short")
	}
	if os.Geteuid() != 0 {
		tb.Skip("the VM lab test requires root (taps in the lab's namespaces)")
	}
	if err := vmimage.Check(); err != nil {
		tb.Skipf("the VM lab requires its tools: %v", err)
	}
	img, err := vmimage.Build(context.Background(), vmimage.Options{Cache: os.Getenv("LNST_VM_CACHE"), Log: testWriter{tb}})
	if err != nil {
		tb.Fatalf("build the VM image: %v", err)
	}
	return img
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// qemuProcesses lists the QEMU processes whose command line names dir.
func qemuProcesses(t testing.TB, dir string) []string {
	t.Helper()
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.HasPrefix(cmd, "qemu-system") && strings.Contains(cmd, dir) {
			found = append(found, p+": "+cmd)
		}
	}
	return found
}

func vmRun(t testing.TB, c pb.AgentClient, argv ...string) *pb.JobResult {
	t.Helper()
	r, err := c.RunJob(context.Background(), &pb.StartJobRequest{Argv: argv, Group: "test"})
	if err != nil {
		t.Fatalf("run %v: %v", argv, err)
	}
	if r.ExitCode != 0 {
		t.Fatalf("run %v: exit %d: %s%s", argv, r.ExitCode, r.Stdout, r.Stderr)
	}
	return r
}

// TestVMLabTwoHosts boots two guests on one network, pings between them
// over their virtio NICs, makes a bond (a kind this machine's kernel may
// lack), and checks that closing the lab leaves no QEMU process and no
// run directory.
func TestVMLabTwoHosts(t *testing.T) {
	img := vmImage(t)
	lab, err := StartVMLab(LabOptions{AgentLogLevel: "warn"}, VMOptions{Image: img, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	dir := lab.vm.dir
	closed := false
	defer func() {
		if !closed {
			lab.Close()
		}
	}()
	ctx := context.Background()
	in, err := lab.Acquire(ctx, benchTopo)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitUsable(ctx, in); err != nil {
		t.Fatal(err)
	}
	c1, hello := in.GuestClient("h1")
	c2, _ := in.GuestClient("h2")
	if c1 == nil || c2 == nil {
		t.Fatal("no guest clients for h1 and h2")
	}
	if hello.Kernel != img.Release {
		t.Errorf("guest kernel %q, want the image's %q", hello.Kernel, img.Release)
	}
	for i, c := range []pb.AgentClient{c1, c2} {
		if _, err := c.AddAddr(ctx, &pb.AddrRequest{Group: "test", Name: "eth0", Cidr: fmt.Sprintf("198.18.7.%d/24", i+1)}); err != nil {
			t.Fatalf("h%d: add address: %v", i+1, err)
		}
	}
	out := vmRun(t, c1, "ping", "-c", "2", "-W", "5", "198.18.7.2")
	if !strings.Contains(string(out.Stdout), "2 received") {
		t.Errorf("ping h1 -> h2: %s", out.Stdout)
	}
	vmRun(t, c2, "ip", "link", "add", "bond0", "type", "bond")
	out = vmRun(t, c2, "ip", "-d", "link", "show", "bond0")
	if !strings.Contains(string(out.Stdout), "bond") {
		t.Errorf("bond0 in the guest: %s", out.Stdout)
	}
	if got := qemuProcesses(t, dir); len(got) != 2 {
		t.Errorf("%d QEMU processes for the lab, want 2: %v", len(got), got)
	}
	requireRunDirPrivate(t, dir, in)
	closed = true
	if err := lab.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if got := qemuProcesses(t, dir); len(got) != 0 {
		t.Errorf("QEMU left after Close: %v", got)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("run directory %s left after Close (%v)", dir, err)
	}
}

// TestVMLabKilledController checks that QEMU dies with the lab agent when
// the test process is killed outright: the agent's jobs get SIGKILL when
// it exits, and it exits when its stdin (from this process) closes.
func TestVMLabKilledController(t *testing.T) {
	img := vmImage(t)
	if os.Getenv("LNST_VM_CHILD") != "" {
		lab, err := StartVMLab(LabOptions{AgentLogLevel: "warn"}, VMOptions{Image: img})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lab.Acquire(context.Background(), benchTopo); err != nil {
			t.Fatal(err)
		}
		fmt.Println("VMS-UP", lab.vm.dir)
		time.Sleep(time.Hour)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestVMLabKilledController$", "-test.v")
	cmd.Env = append(os.Environ(), "LNST_VM_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	buf := make([]byte, 4096)
	var seen string
	deadline := time.Now().Add(5 * time.Minute)
	for dir == "" && time.Now().Before(deadline) {
		n, err := out.Read(buf)
		seen += string(buf[:n])
		if i := strings.Index(seen, "VMS-UP "); i >= 0 && strings.Contains(seen[i:], "\n") {
			dir = strings.Fields(seen[i+len("VMS-UP "):])[0]
		}
		if err != nil {
			break
		}
	}
	if dir == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child did not boot its VMs: %s", seen)
	}
	if got := qemuProcesses(t, dir); len(got) != 2 {
		t.Errorf("%d QEMU processes before the kill, want 2", len(got))
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline = time.Now().Add(30 * time.Second)
	for len(qemuProcesses(t, dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := qemuProcesses(t, dir); len(got) != 0 {
		t.Errorf("QEMU left after SIGKILL of the test process: %v", got)
	}
	// The run directory is the dead process's to remove; it cannot, so
	// this test does.
	os.RemoveAll(dir)
}

// benchVMRounds is how many rounds of each side BenchmarkVMLabTwoHosts
// runs per iteration, interleaved (ABAB... the lab first in even rounds,
// the bare boots first in odd ones); BenchmarkVMLabEightHosts, whose
// rounds take minutes on two cores, runs benchVM8Rounds.
const (
	benchVMRounds  = 3
	benchVM8Rounds = 2
)

// vmIdleSettle is how long the benchmarks leave the guests idle before
// reading their memory: free page reporting gives memory back after the
// guest has had it free for 2 s.
const vmIdleSettle = 3 * time.Second

// BenchmarkVMLabTwoHosts compares, round by round after one untimed
// warm-up round of each side:
//
//   - vmlab: Lab.Acquire of benchTopo as two VMs (the switch and taps, the
//     initramfs with the agent, both guests booted until their agents
//     answer), Lab.WaitUsable (each eth0 up with its link-local address
//     past duplicate address detection, as Require waits; reported apart
//     as waitusable-s), one job on each guest, and Lab.Destroy.
//   - bareboot, the floor: the same kernel and base initramfs booted twice
//     in parallel with bare QEMU, with the same -device set as a lab guest
//     (qemuArgs: TCG's cache size and the balloon; console on a file,
//     virtio-serial with a socket port, a virtio-blk state disk made as
//     the lab makes it, QMP, one multiqueue virtio-net NIC with the lab's
//     options, on a hub port rather than a tap), to power-off: the image's
//     /init powers off at once without an agent.
//
// It prints the median per-round ratio with its spread,
//
//	RATIO vmlab2/bareboot <x> (min, max, n)
//
// and each guest's memory once booted and idle (after the warm-up round),
// a line per guest: QEMU's resident set and its proportional share (the
// initramfs, mapped by every guest of an instance, counted once in all).
//
//	vm_idle_rss_mib <guest> <MiB>
//	vm_idle_pss_mib <guest> <MiB>
func BenchmarkVMLabTwoHosts(b *testing.B) {
	benchVMLab(b, 2, benchVMRounds, "vmlab2/bareboot")
}

// BenchmarkVMLabEightHosts is BenchmarkVMLabTwoHosts with eight guests
// on one network, booted together, on both sides:
//
//   - vmlab: Lab.Acquire of eight VMs (the lab boots VMOptions.MaxBooting
//     of them at once, one per CPU by default), Lab.WaitUsable, one job
//     on each guest, Lab.Destroy.
//   - bareboot8, the floor: eight bare boots (the same -device set as a
//     lab guest, as in BenchmarkVMLabTwoHosts) started together, to the
//     last one's power-off: what starting eight QEMU processes by hand
//     costs.
//
// It prints
//
//	RATIO vmlab8/bareboot8 <x> (min, max, n)
//
// and the per-guest memory lines.
func BenchmarkVMLabEightHosts(b *testing.B) {
	benchVMLab(b, 8, benchVM8Rounds, "vmlab8/bareboot8")
}

// benchVMLab runs the VM lab benchmarks: n guests on one network against
// n bare boots, rounds interleaved rounds per iteration.
func benchVMLab(b *testing.B, n, rounds int, ratio string) {
	img := vmImage(b)
	lab, err := StartVMLab(LabOptions{AgentLogLevel: "warn"}, VMOptions{Image: img})
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Close()
	ctx := context.Background()
	var topo Topology
	for i := range n {
		topo.Hosts = append(topo.Hosts, TopoHost{Name: fmt.Sprintf("h%d", i+1), Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}})
	}
	type vmTimes struct{ total, boot, usable, teardown time.Duration }
	var mem []guestMem
	labOnce := func(measure bool) vmTimes {
		var t vmTimes
		start := time.Now()
		in, err := lab.Acquire(ctx, topo)
		if err != nil {
			b.Fatal(err)
		}
		t.boot = time.Since(start)
		t0 := time.Now()
		if err := lab.WaitUsable(ctx, in); err != nil {
			b.Fatal(err)
		}
		t.usable = time.Since(t0)
		for _, h := range topo.Hosts {
			c, _ := in.GuestClient(h.Name)
			vmRun(b, c, "true")
		}
		if measure {
			time.Sleep(vmIdleSettle)
			mem = qemuMemory(lab.vm.dir)
		}
		t0 = time.Now()
		if err := lab.Destroy(in); err != nil {
			b.Fatal(err)
		}
		t.teardown = time.Since(t0)
		t.total = time.Since(start)
		return t
	}
	dir := b.TempDir()
	bareOnce := func() time.Duration {
		start := time.Now()
		errs := make(chan error, n)
		for g := range n {
			go func() {
				name := fmt.Sprintf("bare%d", g)
				console, disk, sock, qmp := guestFiles(dir, name)
				defer os.Remove(disk)
				defer os.Remove(console)
				if err := makeStateDisk(ctx, disk); err != nil {
					errs <- err
					return
				}
				a := append(qemuArgs(img, lab.vm.opts.Accel, lab.vm.opts.MemoryMiB, lab.vm.opts.CPUs),
					"-chardev", "file,id=console,path="+console, "-serial", "chardev:console",
					"-device", "virtio-serial-pci",
					"-chardev", "socket,id=agent,path="+sock+",server=on,wait=off",
					"-device", "virtserialport,chardev=agent,name="+vmPort,
					"-drive", "if=none,id=state,format=raw,file="+disk,
					"-device", "virtio-blk-pci,drive=state,serial="+vmStateSerial,
				)
				a = append(a, qmpArgs(qmp)...)
				// The lab's NIC (vmNICArgs) on a hub port instead of its tap.
				nic := vmNICArgs(0, "unused", vmMAC(99, g, 0))
				a = append(a, "-netdev", "hubport,id=n0,hubid=0", nic[2], nic[3])
				out, err := exec.Command(a[0], a[1:]...).CombinedOutput()
				if err != nil {
					err = fmt.Errorf("%w: %s", err, out)
				} else if c, _ := os.ReadFile(console); !strings.Contains(string(c), "init done") {
					err = fmt.Errorf("no init line in the console: %q", c)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				b.Fatalf("bare boot: %v", err)
			}
		}
		return time.Since(start)
	}
	labOnce(true)
	bareOnce()
	var vmlab, bare, boot, usable, teardown []time.Duration
	round := 0
	for b.Loop() {
		for range rounds {
			var t vmTimes
			var d time.Duration
			if round%2 == 0 {
				t = labOnce(false)
				d = bareOnce()
			} else {
				d = bareOnce()
				t = labOnce(false)
			}
			vmlab, bare = append(vmlab, t.total), append(bare, d)
			boot, usable, teardown = append(boot, t.boot), append(usable, t.usable), append(teardown, t.teardown)
			round++
		}
	}
	for name, d := range map[string][]time.Duration{"vmlab": vmlab, "bareboot": bare, "boot": boot, "waitusable": usable, "teardown": teardown} {
		med, _, _ := benchratio.Durations(d)
		b.ReportMetric(med.Seconds(), name+"-s")
	}
	var maxRSS int64
	for _, m := range mem {
		fmt.Printf("vm_idle_rss_mib %s %.0f\n", m.guest, float64(m.rss)/(1<<20))
		fmt.Printf("vm_idle_pss_mib %s %.0f\n", m.guest, float64(m.pss)/(1<<20))
		maxRSS = max(maxRSS, m.rss)
	}
	if len(mem) != n {
		b.Errorf("memory read of %d QEMU processes, want %d", len(mem), n)
	}
	b.ReportMetric(float64(maxRSS)/(1<<20), "MiB-rss/vm")
	benchratio.Print(ratio, benchratio.Ratios(vmlab, bare))
}

// guestMem is one QEMU process's memory: its resident set and its
// proportional set size (shared pages divided among their mappers).
type guestMem struct {
	guest    string // the agent-side name, from the console file's name
	rss, pss int64
}

// qemuMemory reads the memory of each QEMU process of a lab (run
// directory dir), sorted by guest.
func qemuMemory(dir string) []guestMem {
	return qemuProcessMemory(func(args []string) (string, bool) {
		if !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, dir) }) {
			return "", false
		}
		for _, arg := range args {
			if strings.Contains(arg, "path="+dir+"/") && strings.HasSuffix(arg, ".console") {
				return strings.TrimSuffix(filepath.Base(arg), ".console"), true
			}
		}
		return "?", true
	})
}

// qemuProcessMemory reads the memory of each QEMU process on this machine
// that guest names (from its command line; false: not one to read),
// sorted by guest name.
func qemuProcessMemory(guest func(args []string) (name string, ok bool)) []guestMem {
	var out []guestMem
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "qemu-system") {
			continue
		}
		name, ok := guest(args)
		if !ok {
			continue
		}
		rollup, err := os.ReadFile(filepath.Join(filepath.Dir(p), "smaps_rollup"))
		if err != nil {
			continue
		}
		m := guestMem{guest: name}
		for _, line := range strings.Split(string(rollup), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(line, "Rss: %d kB", &kb); err == nil {
				m.rss = kb << 10
			}
			if _, err := fmt.Sscanf(line, "Pss: %d kB", &kb); err == nil {
				m.pss = kb << 10
			}
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b guestMem) int { return strings.Compare(a.guest, b.guest) })
	return out
}

// TestVMLabReboot reboots a guest through its agent: QEMU keeps running,
// the redialled connection reaches the new agent (another boot id), that
// agent took back from the journal on its state disk the sysctl changed
// before the reboot, and GuestRebooted sets the NICs up again.
func TestVMLabReboot(t *testing.T) {
	img := vmImage(t)
	lab, err := StartVMLab(LabOptions{AgentLogLevel: "warn"}, VMOptions{Image: img, Log: testWriter{t}, AgentLogLevel: "info"})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	ctx := context.Background()
	topo := Topology{Hosts: []TopoHost{{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}}}}
	in, err := lab.Acquire(ctx, topo)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitUsable(ctx, in); err != nil {
		t.Fatal(err)
	}
	c, hello := in.GuestClient("h1")
	if _, err := c.WriteValue(ctx, &pb.WriteValueRequest{Group: "test", Kind: "sysctl", Key: "net.ipv4.ip_forward", Value: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reboot(ctx, &pb.RebootRequest{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	var after *pb.HelloReply
	for after == nil || after.BootId == hello.BootId {
		if time.Now().After(deadline) {
			t.Fatalf("the guest did not come back from another boot within 3 min; %s", in.Console("h1", 20))
		}
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		after, err = c.Hello(hctx, &pb.HelloRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			after = nil
			in.RedialGuest("h1")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := qemuProcesses(t, lab.vm.dir); len(got) != 1 {
		t.Errorf("%d QEMU processes after the reboot, want the same 1: %v", len(got), got)
	}
	if console := in.Console("h1", 50); !strings.Contains(console, "a previous agent left changes") {
		t.Errorf("the new agent did not take back the journal's changes; %s", console)
	}
	if out := vmRun(t, c, "cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(string(out.Stdout)) != "0" {
		t.Errorf("ip_forward after the reboot: %q, want 0", out.Stdout)
	}
	if err := lab.GuestRebooted(ctx, in, "h1"); err != nil {
		t.Fatal(err)
	}
	if out := vmRun(t, c, "ip", "-br", "link", "show", "eth0"); !strings.Contains(string(out.Stdout), "UP") {
		t.Errorf("eth0 after GuestRebooted: %s", out.Stdout)
	}
}

// TestMakeStateDisk checks a guest's state disk: a sparse file of
// vmStateSize with an ext4 superblock (magic 0xEF53 at byte 1080).
func TestMakeStateDisk(t *testing.T) {
	if _, err := mkfsExt4(); err != nil {
		t.Skipf("the state disk requires mkfs.ext4: %v", err)
	}
	p := filepath.Join(t.TempDir(), "h1.disk")
	if err := makeStateDisk(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != vmStateSize {
		t.Errorf("size %d, want %d", fi.Size(), vmStateSize)
	}
	// Read only the magic: the disk is a sparse file of vmStateSize.
	var b []byte
	if f, err := os.Open(p); err == nil {
		magic := make([]byte, 2)
		n, _ := f.ReadAt(magic, 1080)
		f.Close()
		b = magic[:n]
	}
	if len(b) < 2 || b[0] != 0x53 || b[1] != 0xef {
		t.Errorf("no ext4 superblock magic at byte 1080")
	}
	if err := makeStateDisk(context.Background(), p); err == nil {
		t.Errorf("a second makeStateDisk on %s did not fail", p)
	}
}

// TestConsolePanicked checks that a panic at the end of a console is
// seen, and one that scrolled out of the read tail is not.
func TestConsolePanicked(t *testing.T) {
	p := filepath.Join(t.TempDir(), "h1.console")
	os.WriteFile(p, []byte("lnst-vm: init done 2.1\n[    3.0] Kernel panic - not syncing: VFS: Unable to mount root\n"), 0o644)
	if !consolePanicked(p) {
		t.Error("panic not seen")
	}
	os.WriteFile(p, []byte("Kernel panic - not syncing: old\n"+strings.Repeat("lnst-vm: init done\n", 400)), 0o644)
	if consolePanicked(p) {
		t.Error("a panic of an earlier boot, far up the console, was seen")
	}
	if consolePanicked(filepath.Join(t.TempDir(), "none")) {
		t.Error("a missing console panicked")
	}
}

// requireRunDirPrivate checks that the VM lab's run directory is mode
// 0700, this process's user's, and holds every guest's console, agent
// socket and QMP socket; and that user nobody, who reads the sockets'
// paths in /proc/net/unix, cannot connect to any.
func requireRunDirPrivate(t *testing.T, dir string, in *Instance) {
	t.Helper()
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != os.ModeDir|0o700 || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		t.Errorf("run directory %s: mode %v owner %d, want %v owner %d", dir, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid, os.ModeDir|0o700, os.Geteuid())
	}
	var socks []string
	for name, g := range in.guests {
		for _, f := range []string{g.console, g.sock, g.qmp} {
			if filepath.Dir(f) != dir {
				t.Errorf("guest %s: %s is not in the run directory %s", name, f, dir)
			}
		}
		socks = append(socks, g.sock, g.qmp)
	}
	res := sockprobe.Probe(t, sockprobe.Nobody, sockprobe.Nobody, socks...)
	probed := 0
	for _, r := range res {
		if filepath.Dir(r.Addr) != dir {
			continue
		}
		probed++
		if !strings.Contains(r.Connect, "permission denied") {
			t.Errorf("user nobody connecting to %s: %q, want permission denied", r.Addr, r.Connect)
		}
	}
	if probed != len(socks) {
		t.Errorf("probed %d sockets in %s, want the guests' %d", probed, dir, len(socks))
	}
}

// TestVMRunDirPrivate checks, without booting a guest, that the VM lab's
// run directory is made mode 0700 and that a guest's files (console,
// agent and QMP sockets, disk) are in it; a socket there, even one left
// open to everyone, is out of user nobody's reach.
func TestVMRunDirPrivate(t *testing.T) {
	dir, err := newRunDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != os.ModeDir|0o700 {
		t.Errorf("run directory %s: mode %v, want %v", dir, fi.Mode(), os.ModeDir|0o700)
	}
	console, disk, sock, qmp := guestFiles(dir, "h1.1")
	for _, f := range []string{console, disk, sock, qmp} {
		if filepath.Dir(f) != dir {
			t.Errorf("guest file %s is not in the run directory %s", f, dir)
		}
	}
	if os.Geteuid() != 0 {
		return
	}
	lis, err := net.Listen("unix", qmp) // as QEMU makes it
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	if err := os.Chmod(qmp, 0o777); err != nil {
		t.Fatal(err)
	}
	res := sockprobe.Probe(t, sockprobe.Nobody, sockprobe.Nobody, qmp)
	found := false
	for _, r := range res {
		if r.Addr == qmp {
			found = true
			if !strings.Contains(r.Connect, "permission denied") {
				t.Errorf("user nobody connecting to %s: %q, want permission denied", qmp, r.Connect)
			}
		}
	}
	if !found {
		t.Errorf("%s was not probed: %+v", qmp, res)
	}
}

// TestVMLabBootSlots boots two guests with MaxBooting 1 and watches the
// lab's QEMU processes while it does: at no time are two of them booting
// (started, their agent not yet serving), and both boot. Each guest has
// the balloon driver bound, which gives its free memory back to the host
// (free page reporting).
func TestVMLabBootSlots(t *testing.T) {
	img := vmImage(t)
	lab, err := StartVMLab(LabOptions{AgentLogLevel: "warn"}, VMOptions{Image: img, MaxBooting: 1, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	dir := lab.vm.dir
	stop := make(chan struct{})
	most := make(chan int, 1)
	go func() {
		seen := 0
		for {
			select {
			case <-stop:
				most <- seen
				return
			case <-time.After(50 * time.Millisecond):
			}
			booting := 0
			for _, p := range qemuProcesses(t, dir) {
				console := ""
				for _, f := range strings.Fields(p) {
					if i := strings.Index(f, "path="); i >= 0 && strings.HasSuffix(f, ".console") {
						console = f[i+len("path="):]
					}
				}
				if !consoleHas(console, launch.ReadyLine) {
					booting++
				}
			}
			seen = max(seen, booting)
		}
	}()
	in, err := lab.Acquire(context.Background(), benchTopo)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if got := <-most; got != 1 {
		t.Errorf("at most %d guests booting at once, want 1 (MaxBooting)", got)
	}
	for _, h := range []string{"h1", "h2"} {
		c, _ := in.GuestClient(h)
		out := vmRun(t, c, "ls", "/sys/bus/virtio/drivers/virtio_balloon")
		if !strings.Contains(string(out.Stdout), "virtio") {
			t.Errorf("%s: no device bound to virtio_balloon: %q", h, out.Stdout)
		}
	}
}
