package vmimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	if _, err := command(ctx, "", "dpkg-deb", "-x", deb, dir); err != nil {
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

// SelectModules copies into dst what a VM lab guest needs of a modules
// tree to boot that kernel: the modules the lab's image carries (virtio,
// the link kinds, qdiscs) with everything they depend on, and their
// modules.dep and modules.alias. It returns how many modules it copied.
func SelectModules(modDir, dst string, log io.Writer) (int, error) {
	if log == nil {
		log = io.Discard
	}
	mt, err := scanModules(modDir)
	if err != nil {
		return 0, err
	}
	sel, err := mt.wanted(modDir, log)
	if err != nil {
		return 0, err
	}
	for _, mi := range sel {
		d := filepath.Join(dst, mi.Path)
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			return 0, err
		}
		if err := copyFile(filepath.Join(modDir, mi.Path), d); err != nil {
			return 0, fmt.Errorf("select modules: %w", err)
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, err
	}
	if err := writeDepFiles(dst, sel); err != nil {
		return 0, fmt.Errorf("select modules: %w", err)
	}
	for _, f := range []string{"modules.builtin", "modules.order", "modules.builtin.modinfo"} {
		err := copyFile(filepath.Join(modDir, f), filepath.Join(dst, f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("select modules: %w", err)
		}
	}
	return len(sel), nil
}

// FetchPackage downloads a Debian package (its candidate version) with
// apt-get download into the cache's debs directory, as Build does for the
// image's packages, and returns its path. A file already there with the
// hash apt expects is not fetched again.
func FetchPackage(ctx context.Context, cache, pkg string) (string, error) {
	if cache == "" {
		cache = DefaultCache()
	}
	for _, c := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(c); err != nil {
			return "", fmt.Errorf("fetch package %s: %s not found: it needs a Debian machine with apt", pkg, c)
		}
	}
	debs, err := printURIs(ctx, []string{pkg})
	if err != nil {
		return "", fmt.Errorf("fetch package %s: %w", pkg, err)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("fetch package %s: %w", pkg, err)
	}
	unlock, err := lockCache(ctx, filepath.Join(cache, "lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	dir := filepath.Join(cache, "debs")
	if err := download(ctx, dir, []debFile{debs[pkg]}, io.Discard); err != nil {
		return "", fmt.Errorf("fetch package %s: %w", pkg, err)
	}
	return filepath.Join(dir, debs[pkg].File), nil
}
