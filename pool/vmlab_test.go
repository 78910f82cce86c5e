package pool

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool/vmimage"
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

// BenchmarkVMLabTwoHosts boots benchTopo as two VMs (to a serving agent;
// like BenchmarkLabTwoHosts it does not wait for IPv6 DAD, a kernel
// timer), runs one job on each, and tears them down; then, in the same
// run, boots the same kernel and base initramfs twice in parallel with
// bare QEMU to power-off (the image's /init powers off at once without an
// agent). It prints
//
//	RATIO vmlab2/bareboot <x>
//
// and reports each guest's resident memory once idle (QEMU's RSS).
func BenchmarkVMLabTwoHosts(b *testing.B) {
	img := vmImage(b)
	lab, err := StartVMLab(LabOptions{AgentLogLevel: "warn"}, VMOptions{Image: img})
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Close()
	ctx := context.Background()
	var vmlab, bare, boot, teardown time.Duration
	var rss int64
	for i := 0; i < b.N; i++ {
		start := time.Now()
		in, err := lab.Acquire(ctx, benchTopo)
		if err != nil {
			b.Fatal(err)
		}
		boot += time.Since(start)
		for _, h := range []string{"h1", "h2"} {
			c, _ := in.GuestClient(h)
			vmRun(b, c, "true")
		}
		if i == 0 {
			rss = qemuRSS(lab.vm.dir)
		}
		t0 := time.Now()
		if err := lab.Destroy(in); err != nil {
			b.Fatal(err)
		}
		teardown += time.Since(t0)
		vmlab += time.Since(start)
	}
	for i := 0; i < b.N; i++ {
		start := time.Now()
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				a := append(qemuArgs(img, 512), "-serial", "stdio")
				out, err := exec.Command(a[0], a[1:]...).CombinedOutput()
				if err == nil && !strings.Contains(string(out), "init done") {
					err = fmt.Errorf("no init line in %q", out)
				}
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				b.Fatalf("bare boot: %v", err)
			}
		}
		bare += time.Since(start)
	}
	b.ReportMetric(float64(vmlab.Nanoseconds())/float64(b.N), "vmlab-ns/op")
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "bareboot-ns/op")
	b.ReportMetric(float64(boot.Nanoseconds())/float64(b.N), "boot-ns/op")
	b.ReportMetric(float64(teardown.Nanoseconds())/float64(b.N), "teardown-ns/op")
	b.ReportMetric(float64(rss)/2/(1<<20), "MiB-rss/vm")
	fmt.Printf("RATIO vmlab2/bareboot %.2f\n", float64(vmlab)/float64(bare))
	fmt.Printf("VM idle memory (QEMU RSS) %.0f MiB per guest\n", float64(rss)/2/(1<<20))
}

// qemuRSS sums the resident memory of the QEMU processes of a lab.
func qemuRSS(dir string) int64 {
	var total int64
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.HasPrefix(string(b), "qemu-system") || !strings.Contains(string(b), dir) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
				total += kb << 10
			}
		}
	}
	return total
}
