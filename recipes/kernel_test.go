package recipes

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// kernelUnderTest is the Debian kernel package TestInstallKernel boots:
// a cloud kernel of another ABI than the VM lab's image (which follows
// linux-image-cloud-amd64). LNST_TEST_KERNEL_PKG names another package,
// or a .deb file.
const kernelUnderTest = "linux-image-6.1.0-47-cloud-amd64"

// TestInstallKernel boots a host into another kernel with InstallKernel
// and Reboot, checks uname -r and that the new kernel loads modules and
// makes devices, and that cleanup boots the host's own kernel again.
// InstallKernel downloads the package once into the VM lab's cache.
// Long: skipped under -short; it skips on the namespace lab, and on pool
// machines whose entry does not allow: [kernel, reboot].
func TestInstallKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("TestInstallKernel boots a VM twice more: skipped under -short")
	}
	lnsttest.Destructive(t, "kernel", "reboot")
	m := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))))
	h1 := m.Host("h1")
	uname := func(t *testing.T) string { return strings.TrimSpace(h1.Output(t, "uname -r")) }
	own := uname(t)
	require.NotEmpty(t, own, "uname -r")
	// Runs after InstallKernel's cleanup, which reboots the host.
	t.Cleanup(func() {
		require.Equal(t, own, uname(t), "uname -r once the test is over")
	})
	pkg := os.Getenv("LNST_TEST_KERNEL_PKG")
	if pkg == "" {
		pkg = kernelUnderTest
	}
	release := h1.InstallKernel(t, pkg)
	if release == own {
		t.Fatalf("the kernel under test %s is the host's own kernel %s: pick another package with LNST_TEST_KERNEL_PKG", pkg, own)
	}
	require.Equal(t, own, uname(t), "InstallKernel alone does not change the running kernel")

	h1.Reboot(t, lnsttest.RebootTimeout(5*time.Minute))

	require.Equal(t, release, uname(t), "uname -r after the reboot into the kernel under test")
	// The new kernel's modules load on demand: veth is a module.
	h1.Create(t, devices.Veth{Name: "kt0", PeerName: "kt1"})
	h1.Iface("eth0").Up(t)
}
