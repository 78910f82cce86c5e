package lnsttest

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/kernelpkg"
	"github.com/lnst-go/lnst/pool"
	"github.com/lnst-go/lnst/pool/vmimage"
)

// Kernels under test: Host.InstallKernel makes a kernel the one the host's
// next Reboot boots, once, and puts the host back on its own kernel when
// the test ends.

// KernelOpt is an option of Host.InstallKernel.
type KernelOpt func(*kernelOpts)

type kernelOpts struct {
	modules string
	cmdline string
}

// KernelModules names the modules tree (the directory that is
// /lib/modules/<release>) of a kernel given as a bzImage.
func KernelModules(dir string) KernelOpt { return func(o *kernelOpts) { o.modules = dir } }

// KernelCmdline is the new kernel's command line (default: the running
// kernel's, /proc/cmdline).
func KernelCmdline(cmdline string) KernelOpt { return func(o *kernelOpts) { o.cmdline = cmdline } }

// InstallKernel makes the kernel pkg the one the host's next Reboot boots,
// once, and returns its release (uname -r). pkg is a Debian kernel package
// file (.deb, unpacked here with dpkg-deb), the name of one
// ("linux-image-6.1.0-47-cloud-amd64": apt-get download fetches it once
// into the VM lab's cache, -lnst.vm.cache), or a bzImage, whose modules
// tree KernelModules names. The kernel and its modules are copied to the host
// and loaded with kexec; nothing on the host's boot configuration changes,
// so any later reboot boots the host's own kernel again.
//
// On a VM lab host the new kernel boots with an initramfs the guest's
// agent makes from its own root, plus the modules the lab's image carries
// (virtio, link kinds, qdiscs) taken from the new kernel's tree. A Debian
// machine with grub gets a .deb installed with dpkg -i and made grub's
// next entry once with grub-reboot (kernel_grub.go): the package stays in
// grub's menu until cleanup purges it, and while it is there a kernel
// newer than the machine's own is grub's default. Other machines load it
// by kexec, which their agent refuses unless their root is an initramfs
// (a machine's initramfs is its distribution's to build).
//
// When the test ends, a host still running the new kernel is rebooted
// into its own (a failure if it does not come back on it), and a kernel
// loaded but not booted is unloaded. Namespace lab hosts share this
// machine's kernel: InstallKernel skips the test there.
func (h *Host) InstallKernel(t testing.TB, pkg string, opts ...KernelOpt) string {
	t.Helper()
	var o kernelOpts
	for _, opt := range opts {
		opt(&o)
	}
	if h.s.pool == nil && h.vm == nil {
		t.Skipf("InstallKernel requires a VM lab host (-lnst.lab=vm) or a machine; lab host %s is a network namespace sharing this machine's kernel", h.name)
	}
	if h.id != "" {
		t.Fatalf("%s: InstallKernel: this handle is a network namespace (Netns) of its host; install the kernel on the host itself", h.name)
	}
	h.checkAllowed(t, pool.AllowKernel, "InstallKernel")
	k, deb := h.resolveKernel(t, pkg, o)
	before, err := h.waitUp(time.Now().Add(isUpWithin))
	if err != nil {
		t.Fatalf("%s: InstallKernel %s: the agent does not answer: %v", h.name, pkg, err)
	}
	if h.vm == nil && deb != "" && h.hasGrubDpkg(t) {
		h.installKernelGrub(t, deb, k.Release, before.Kernel)
		return k.Release
	}
	st := h.s.state(t)
	dir := h.TempDir(t)
	h.PutFile(t, k.Image, dir+"/vmlinuz")
	modules := ""
	if k.Modules != "" {
		modules = dir + "/modules"
		h.PutFile(t, k.Modules, modules)
	}
	t.Cleanup(func() { h.kernelBack(t, before.Kernel, k.Release) })
	ctx, cancel := context.WithTimeout(rpcCtx(t), 5*time.Minute)
	defer cancel()
	r, err := h.client.LoadKernel(ctx, &pb.LoadKernelRequest{Host: h.id, Kernel: dir + "/vmlinuz", Modules: modules, Release: k.Release, Cmdline: o.cmdline})
	if err != nil {
		t.Fatalf("%s: InstallKernel %s: %v", h.name, pkg, err)
	}
	st.logger().Info("kernel loaded for the next reboot", "host", h.name, "release", k.Release, "running", r.Running, "initrd_bytes", r.InitrdBytes)
	return k.Release
}

// resolveKernel finds the bzImage, release and modules of pkg on this
// machine, and the path of its .deb if it is one; on a VM lab host the
// modules are the lab's selection of them.
func (h *Host) resolveKernel(t testing.TB, pkg string, o kernelOpts) (k kernelpkg.Kernel, deb string) {
	t.Helper()
	if _, err := os.Stat(pkg); err != nil {
		if !debianName.MatchString(pkg) {
			t.Fatalf("%s: InstallKernel: %v", h.name, err)
		}
		pkg = fetchPackage(t, pkg)
	}
	switch {
	case strings.HasSuffix(pkg, ".deb"):
		deb = pkg
		var err error
		k, err = kernelpkg.UnpackKernelPackage(rpcCtx(t), pkg, filepath.Join(t.TempDir(), "pkg"))
		if err != nil {
			t.Fatalf("%s: InstallKernel: %v", h.name, err)
		}
	case strings.HasSuffix(pkg, ".rpm"):
		t.Fatalf("%s: InstallKernel %s: .rpm packages are not supported yet; give the bzImage and KernelModules", h.name, pkg)
	default:
		rel, err := kernelpkg.KernelRelease(pkg)
		if err != nil {
			t.Fatalf("%s: InstallKernel: %v", h.name, err)
		}
		k = kernelpkg.Kernel{Image: pkg, Release: rel}
	}
	if o.modules != "" {
		k.Modules = o.modules
	}
	if k.Modules != "" && h.vm != nil {
		sel := filepath.Join(t.TempDir(), k.Release)
		n, err := kernelpkg.SelectModules(k.Modules, sel, nil)
		if err != nil {
			t.Fatalf("%s: InstallKernel %s: %v", h.name, pkg, err)
		}
		h.s.state(t).logger().Debug("modules for the VM guest", "host", h.name, "release", k.Release, "modules", n)
		k.Modules = sel
	}
	return k, deb
}

// kernelBack puts the host back on its own kernel at the end of a test
// that installed release: a reboot when it runs another kernel than
// before, else the loaded kernel is dropped.
func (h *Host) kernelBack(t testing.TB, before, release string) {
	t.Helper()
	hello, err := h.waitUp(time.Now().Add(time.Minute))
	if err != nil {
		t.Errorf("%s: InstallKernel cleanup: the agent does not answer: %v", h.name, err)
		return
	}
	if hello.Kernel == before {
		ctx, cancel := context.WithTimeout(rpcCtx(t), 30*time.Second)
		defer cancel()
		if _, err := h.client.LoadKernel(ctx, &pb.LoadKernelRequest{Host: h.id, Unload: true}); err != nil {
			t.Errorf("%s: InstallKernel cleanup: unload kernel %s: %v", h.name, release, err)
		}
		return
	}
	h.s.state(t).logger().Info("rebooting into the host's own kernel", "host", h.name, "running", hello.Kernel, "own", before)
	h.rebootBack(t, before)
}

// rebootBack reboots the host at the end of an InstallKernel test and
// reports whether it came back on its own kernel before; when it did not,
// the test fails.
func (h *Host) rebootBack(t testing.TB, before string) bool {
	t.Helper()
	if now := h.reboot(t).Kernel; now != before {
		t.Errorf("%s: InstallKernel cleanup: after the reboot the host runs kernel %q, not its own %s", h.name, now, before)
		return false
	}
	return true
}

// debianName is what a Debian package name looks like.
var debianName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// fetchPackage returns the path of the Debian package pkg, downloading it
// with apt-get download into the VM lab's cache (-lnst.vm.cache) unless
// it is there already. It skips the test on a machine without apt.
func fetchPackage(t testing.TB, pkg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(rpcCtx(t), 10*time.Minute)
	defer cancel()
	cache := cfg.vmCache
	if cache == "" {
		cache = vmimage.DefaultCache()
	}
	p, err := kernelpkg.FetchPackage(ctx, cache, pkg)
	if err != nil && strings.Contains(err.Error(), "not found: it needs") {
		t.Skipf("InstallKernel %s requires apt: %v", pkg, err)
	}
	if err != nil {
		t.Fatalf("InstallKernel: %v", err)
	}
	return p
}
