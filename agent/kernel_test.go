package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/cpio"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestRootFiles checks the file list a kexec initramfs is built from:
// files, links and directories of the root with their modes, the modules
// tree under /usr/lib/modules/<release>, and the console and null devices.
func TestRootFiles(t *testing.T) {
	root, mods := t.TempDir(), t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("x"), 0o755))
	require.NoError(t, os.Symlink("usr/bin", filepath.Join(root, "bin")))
	require.NoError(t, os.MkdirAll(filepath.Join(mods, "kernel/net"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(mods, "kernel/net/veth.ko"), []byte("ko"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(mods, "modules.dep"), []byte("kernel/net/veth.ko:\n"), 0o644))

	files, err := rootFiles(root, mods, "6.1.0-47-cloud-amd64")
	require.NoError(t, err)
	byPath := map[string]cpio.File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	require.Equal(t, os.ModeDir|0o755, byPath["/usr/bin"].Mode)
	require.Equal(t, os.FileMode(0o755), byPath["/usr/bin/tool"].Mode)
	require.Equal(t, filepath.Join(root, "usr/bin/tool"), byPath["/usr/bin/tool"].Src)
	require.Equal(t, "usr/bin", string(byPath["/bin"].Data))
	require.NotZero(t, byPath["/bin"].Mode&os.ModeSymlink)
	require.Equal(t, filepath.Join(mods, "kernel/net/veth.ko"), byPath["/usr/lib/modules/6.1.0-47-cloud-amd64/kernel/net/veth.ko"].Src)
	require.Contains(t, byPath, "/usr/lib/modules/6.1.0-47-cloud-amd64/modules.dep")
	console := byPath["/dev/console"]
	require.Equal(t, [2]uint32{5, 1}, [2]uint32{console.DevMajor, console.DevMinor})
	require.NotZero(t, console.Mode&os.ModeCharDevice)
	// The parent comes before the child, as an archive needs.
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	require.Less(t, slices.Index(paths, "/usr/bin"), slices.Index(paths, "/usr/bin/tool"))
}

// TestRootFileMountPoint checks that a directory on another device is
// kept, empty: what is mounted there is not passed on.
func TestRootFileMountPoint(t *testing.T) {
	dir := t.TempDir()
	var st unix.Stat_t
	require.NoError(t, unix.Stat(dir, &st))
	f, skip, err := rootFile(dir, "/mnt", st.Dev)
	require.NoError(t, err)
	require.False(t, skip, "same device")
	require.Equal(t, "/mnt", f.Path)
	_, skip, err = rootFile(dir, "/mnt", st.Dev+1)
	require.NoError(t, err)
	require.True(t, skip, "another device: a mount point")
}

// TestDiskBySerial finds a state disk by the serial QEMU gave it.
func TestDiskBySerial(t *testing.T) {
	sys := testSysfsDirs(t, "serial", map[string]string{"vda": "other", "vdb": "lnst-state"})
	dev, err := diskBySerial(sys, "lnst-state")
	require.NoError(t, err)
	require.Equal(t, "/dev/vdb", dev)
	_, err = diskBySerial(sys, "nope")
	require.ErrorContains(t, err, `no disk has serial "nope"`)
	err = mountStateDisk(sys, "nope", t.TempDir(), 0)
	require.ErrorContains(t, err, `no disk has serial "nope"`)
}

// TestLoadKernelRefused checks what LoadKernel refuses: a lab agent, a
// namespace host, missing arguments, and a root that is not an initramfs
// (this machine's).
func TestLoadKernelRefused(t *testing.T) {
	lab, err := NewServer(Options{Lab: true})
	require.NoError(t, err)
	t.Cleanup(func() { lab.Shutdown() })
	_, err = lab.LoadKernel(context.Background(), &pb.LoadKernelRequest{Kernel: "/boot/vmlinuz", Release: "6.1"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "lab agent: %v", err)

	srv, err := NewServer(Options{})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown() })
	_, err = srv.LoadKernel(context.Background(), &pb.LoadKernelRequest{Release: "6.1"})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "no kernel: %v", err)
	_, err = srv.LoadKernel(context.Background(), &pb.LoadKernelRequest{Kernel: "/boot/vmlinuz", Release: "../x"})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "bad release: %v", err)
	_, err = srv.LoadKernel(context.Background(), &pb.LoadKernelRequest{Kernel: "/boot/vmlinuz", Release: "6.1"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "root on disk: %v", err)
	require.ErrorContains(t, err, "requires a host whose root is an initramfs")
}
