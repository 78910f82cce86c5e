// Package kernelpkg handles the kernels InstallKernel installs on a host
// and the VM image boots: unpacking a kernel's Debian package, reading a
// bzImage's release, and selecting from a modules tree what a VM lab guest
// needs (the closure of the image's modules, with their modules.dep and
// modules.alias).
package kernelpkg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/lnst-go/lnst/internal/debpkg"
)

// Kernel is a kernel to install on a host: its bzImage, release and
// modules tree.
type Kernel struct {
	Image   string // the bzImage
	Release string // uname -r, e.g. 6.1.0-47-cloud-amd64
	// Modules is the modules tree (what goes to /lib/modules/<release>);
	// "" when the kernel has none.
	Modules string
}

// UnpackKernelPackage unpacks a kernel .deb into dir with dpkg-deb -x and
// finds its bzImage (boot/vmlinuz-<release>) and modules tree
// (lib/modules/<release> or usr/lib/modules/<release>).
func UnpackKernelPackage(ctx context.Context, deb, dir string) (Kernel, error) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		return Kernel{}, fmt.Errorf("unpack kernel package %s: dpkg-deb not found: install it with apt-get install dpkg (an .rpm or a bzImage with its modules tree needs no dpkg)", deb)
	}
	if _, err := debpkg.Command(ctx, "", "dpkg-deb", "-x", deb, dir); err != nil {
		return Kernel{}, fmt.Errorf("unpack kernel package %s: %w", deb, err)
	}
	return findKernel(dir, deb)
}

// findKernel finds the one kernel unpacked under root.
func findKernel(root, what string) (Kernel, error) {
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return Kernel{}, fmt.Errorf("kernel package %s: want one boot/vmlinuz-<release>, found %d", what, len(images))
	}
	k := Kernel{Image: images[0], Release: strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")}
	for _, d := range []string{"lib/modules", "usr/lib/modules"} {
		p := filepath.Join(root, d, k.Release)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			k.Modules = p
			break
		}
	}
	return k, nil
}

// KernelRelease reads the release of a bzImage from its setup header.
func KernelRelease(bzImage string) (string, error) { return bzImageRelease(bzImage) }

// bzImageRelease reads the kernel version string of a bzImage: its setup
// header ("HdrS" at 0x202) points at it with the 16-bit kernel_version
// field at 0x20E, relative to 0x200.
func bzImageRelease(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read kernel release: %w", err)
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return "", fmt.Errorf("read kernel release of %s: %w", path, err)
	}
	if string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("read kernel release: %s is not a bzImage (no HdrS header)", path)
	}
	ptr := int64(hdr[0x20E]) | int64(hdr[0x20F])<<8
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, ptr+0x200)
	s, _, _ := strings.Cut(string(buf[:n]), "\x00")
	f0 := strings.Fields(s)
	if len(f0) == 0 {
		return "", fmt.Errorf("read kernel release of %s: empty version string", path)
	}
	return f0[0], nil
}

// SelectModules copies into dst what a VM lab guest needs of a modules
// tree to boot that kernel: the modules the lab's image carries (virtio,
// the link kinds, qdiscs) with everything they depend on, and their
// modules.dep and modules.alias. It returns how many modules it copied.
func SelectModules(modDir, dst string, log io.Writer) (int, error) {
	sel, err := Select(modDir, log)
	if err != nil {
		return 0, err
	}
	for _, p := range sel.Paths() {
		d := filepath.Join(dst, p)
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			return 0, err
		}
		if err := copyFile(filepath.Join(modDir, p), d); err != nil {
			return 0, fmt.Errorf("select modules: %w", err)
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, err
	}
	if err := sel.WriteDepFiles(dst); err != nil {
		return 0, fmt.Errorf("select modules: %w", err)
	}
	for _, f := range []string{"modules.builtin", "modules.order", "modules.builtin.modinfo"} {
		err := copyFile(filepath.Join(modDir, f), filepath.Join(dst, f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("select modules: %w", err)
		}
	}
	return sel.Len(), nil
}

// FetchPackage downloads a Debian package (its candidate version) with
// apt-get download into the debs directory of cache (the VM image cache,
// vmimage.DefaultCache() by default), as vmimage.Build does for the
// image's packages, and returns its path. A file already there with the
// hash apt expects is not fetched again.
func FetchPackage(ctx context.Context, cache, pkg string) (string, error) {
	if cache == "" {
		return "", fmt.Errorf("fetch package %s: no cache directory given", pkg)
	}
	for _, c := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(c); err != nil {
			return "", fmt.Errorf("fetch package %s: %s not found: it needs a Debian machine with apt", pkg, c)
		}
	}
	debs, err := debpkg.Candidates(ctx, []string{pkg})
	if err != nil {
		return "", fmt.Errorf("fetch package %s: %w", pkg, err)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("fetch package %s: %w", pkg, err)
	}
	unlock, err := debpkg.Lock(ctx, filepath.Join(cache, "lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	dir := filepath.Join(cache, "debs")
	if err := debpkg.Download(ctx, dir, []debpkg.File{debs[pkg]}, io.Discard); err != nil {
		return "", fmt.Errorf("fetch package %s: %w", pkg, err)
	}
	return filepath.Join(dir, debs[pkg].File), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
