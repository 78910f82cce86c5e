package vmimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lnst-go/lnst/internal/cpio"
	"github.com/lnst-go/lnst/internal/debpkg"
	"github.com/lnst-go/lnst/internal/kernelpkg"
)

// builderVersion is part of the cache key: bump it when the image layout
// or the init script changes.
const builderVersion = "lnst-vmimage-6"

// imageModules names the kernel modules the image carries; a variable so
// that a test can change the list.
var imageModules = kernelpkg.WantModules

// kernelMeta is the Debian meta package of the default kernel.
const kernelMeta = "linux-image-cloud-amd64"

// toolPackages hold the commands recipes run in the guest; their library
// packages (libiperf0...) come from apt-cache depends. /bin/sh is dash:
// Debian's busybox-static runs its own applets before PATH ("prefer
// applets"), so with busybox as /bin/sh every "ip" would be busybox's.
var toolPackages = []string{"dash", "iproute2", "iputils-ping", "iperf3", "ethtool", "tcpdump", "libteam-utils", "wireguard-tools"}

// Options configure Build.
type Options struct {
	// Cache is the cache directory; "" means DefaultCache().
	Cache string
	// Kernel optionally names the user's own bzImage, used instead of
	// Debian's kernel.
	Kernel string
	// Modules, with Kernel, optionally names the kernel's modules tree:
	// the directory holding kernel/..., i.e. /lib/modules/<release>.
	Modules string
	// OpenVSwitch adds Open vSwitch (ovsdb-server, ovs-vswitchd,
	// ovs-vsctl, the schema and their libraries) to the image, for
	// recipes with an OvsBridge. Off by default: it grows the initramfs
	// from 34 to 55 MB, which every guest's boot and memory pay.
	OpenVSwitch bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Image is a built VM image: a kernel and its base initramfs.
type Image struct {
	Kernel string // path of the bzImage to boot
	// Initrd is the path of the base initramfs, an uncompressed newc cpio:
	// under TCG the kernel's gunzip costs more than qemu loading the
	// bigger file (bare boot to "init done": 2.6 s uncompressed, 3.1-3.4 s
	// with gzip -1).
	Initrd  string
	Release string // kernel release, e.g. 6.1.0-56-cloud-amd64
	Key     string // hash of the inputs, the name of the cache entry
}

// DefaultCache returns the default cache directory, os.UserCacheDir()/lnst/vm,
// or a directory under os.TempDir() when there is no user cache directory.
func DefaultCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "lnst-vm-cache")
	}
	return filepath.Join(dir, "lnst", "vm")
}

// inputs is everything the image is built from.
type inputs struct {
	release string
	debs    map[string]debpkg.File // every package, by name
	libs    []string               // library package names
	kernel  string                 // the kernel package, "" with Options.Kernel
	ovs     bool                   // Options.OpenVSwitch
	// headers are the Debian kernel's header packages, to build
	// lnst_warn.ko (see warnmod.go); empty when they did not resolve,
	// and warnErr says why.
	headers map[string]debpkg.File
	warnErr string
}

// Build returns the image for opts, building it into the cache when no
// image with the same inputs is there. The packages come from apt (the
// candidate versions); building needs network access only for packages
// not yet in <Cache>/debs. Concurrent Builds (also in other processes)
// wait for each other on a lock file in the cache.
func Build(ctx context.Context, opts Options) (*Image, error) {
	start := time.Now()
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	if opts.Cache == "" {
		opts.Cache = DefaultCache()
	}
	if opts.Modules != "" && opts.Kernel == "" {
		return nil, errors.New("vmimage: Options.Modules needs Options.Kernel")
	}
	if err := Check(); err != nil {
		return nil, err
	}
	// Fast path: apt's state and the user's files are as when an image
	// was last resolved, so its key is still right.
	state, stateErr := aptState(opts)
	if img := cachedByState(opts.Cache, state, stateErr); img != nil {
		fmt.Fprintf(log, "vmimage: cached %s (%s)\n", filepath.Dir(img.Kernel), img.Release)
		return img, nil
	}
	in, err := resolveInputs(ctx, opts)
	if err != nil {
		return nil, err
	}
	key, err := cacheKey(opts, in)
	if err != nil {
		return nil, err
	}
	if stateErr == nil {
		defer func() {
			if _, err := os.Stat(filepath.Join(opts.Cache, key, "done")); err == nil {
				os.MkdirAll(filepath.Join(opts.Cache, "state"), 0o755)
				writeFileAtomic(filepath.Join(opts.Cache, "state", state), []byte(key+" "+in.release+"\n"))
			}
		}()
	}
	img := &Image{
		Kernel:  filepath.Join(opts.Cache, key, "vmlinuz"),
		Initrd:  filepath.Join(opts.Cache, key, "initrd.cpio"),
		Release: in.release,
		Key:     key,
	}
	done := filepath.Join(opts.Cache, key, "done")
	if _, err := os.Stat(done); err == nil {
		fmt.Fprintf(log, "vmimage: cached %s (%s)\n", filepath.Join(opts.Cache, key), in.release)
		return img, nil
	}
	if err := os.MkdirAll(opts.Cache, 0o755); err != nil {
		return nil, fmt.Errorf("vmimage: create cache: %w", err)
	}
	unlock, err := debpkg.Lock(ctx, filepath.Join(opts.Cache, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(done); err == nil { // built while we waited
		fmt.Fprintf(log, "vmimage: cached %s (%s)\n", filepath.Join(opts.Cache, key), in.release)
		return img, nil
	}
	if err := build(ctx, opts, in, key, log); err != nil {
		return nil, fmt.Errorf("vmimage: %w", err)
	}
	st, _ := os.Stat(img.Initrd)
	var size int64
	if st != nil {
		size = st.Size()
	}
	fmt.Fprintf(log, "vmimage: built %s (%s, initrd %.1f MB) in %.1fs\n",
		filepath.Join(opts.Cache, key), in.release, float64(size)/1e6, time.Since(start).Seconds())
	return img, nil
}

func resolveInputs(ctx context.Context, opts Options) (*inputs, error) {
	in := &inputs{ovs: opts.OpenVSwitch}
	if opts.Kernel == "" {
		pkg, rel, err := kernelPackage(ctx, kernelMeta)
		if err != nil {
			return nil, fmt.Errorf("vmimage: %w", err)
		}
		in.kernel, in.release = pkg, rel
	} else {
		rel, err := kernelpkg.KernelRelease(opts.Kernel)
		if err != nil && opts.Modules != "" {
			rel, err = filepath.Base(filepath.Clean(opts.Modules)), nil
		}
		if err != nil {
			return nil, fmt.Errorf("vmimage: %w", err)
		}
		in.release = rel
	}
	tools := toolPackages
	if in.ovs {
		tools = append(append([]string{}, toolPackages...), ovsPackages()...)
	}
	libs, err := libraryPackages(ctx, tools)
	if err != nil {
		return nil, fmt.Errorf("vmimage: %w", err)
	}
	in.libs = libs
	pkgs := append(append([]string{"busybox-static"}, tools...), libs...)
	if in.kernel != "" {
		pkgs = append(pkgs, in.kernel)
	}
	in.debs, err = debpkg.Candidates(ctx, dedup(pkgs))
	if err != nil {
		return nil, fmt.Errorf("vmimage: %w", err)
	}
	resolveHeaders(ctx, in)
	return in, nil
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// cacheKey hashes the builder version, the wanted kernel modules, every
// package file (its name holds the version) with its hash, lnst_warn's
// source, header packages and toolchain (warnmod.go), and the user's
// kernel and modules paths with their size and mtime.
func cacheKey(opts Options, in *inputs) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, builderVersion, in.release)
	fmt.Fprintln(h, "modules", strings.Join(imageModules(), " "))
	names := make([]string, 0, len(in.debs))
	for n := range in.debs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(h, "deb", in.debs[n].File, in.debs[n].SHA256)
	}
	hashWarnModule(h, in)
	if err := hashUserFiles(h, opts); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// build makes the cache entry key: everything is written into a temporary
// directory renamed into place at the end.
func build(ctx context.Context, opts Options, in *inputs, key string, log io.Writer) error {
	debDir := filepath.Join(opts.Cache, "debs")
	all := make([]debpkg.File, 0, len(in.debs))
	for _, d := range in.debs {
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Pkg < all[j].Pkg })
	if err := debpkg.Download(ctx, debDir, all, log); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(opts.Cache, "tmp-"+key+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	stage := filepath.Join(tmp, "stage")
	fmt.Fprintf(log, "vmimage: unpacking %d packages\n", len(all))
	err = unpack(ctx, debDir, all, func(d debpkg.File) string {
		if d.Pkg == in.kernel {
			return filepath.Join(stage, "kernel")
		}
		if d.Pkg == "busybox-static" || contains(toolPackages, d.Pkg) || in.ovs && ovsFiles[d.Pkg] != nil {
			return filepath.Join(stage, "pkg", d.Pkg)
		}
		return filepath.Join(stage, "libs")
	})
	if err != nil {
		return err
	}
	out := filepath.Join(tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	kernel, modDir := opts.Kernel, opts.Modules
	if in.kernel != "" {
		kernel = filepath.Join(stage, "kernel", "boot", "vmlinuz-"+in.release)
		modDir = filepath.Join(stage, "kernel", "lib", "modules", in.release)
	}
	if err := copyFile(kernel, filepath.Join(out, "vmlinuz")); err != nil {
		return fmt.Errorf("copy kernel: %w", err)
	}
	t := &tree{entries: map[string]cpio.File{}}
	if err := assemble(ctx, t, stage, in, modDir, tmp, log); err != nil {
		return err
	}
	if in.kernel != "" {
		if err := addWarnModule(ctx, t, in, debDir, tmp, log); err != nil {
			return err
		}
	}
	if err := t.write(filepath.Join(out, "initrd.cpio")); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "release"), []byte(in.release+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "done"), nil, 0o644); err != nil {
		return err
	}
	final := filepath.Join(opts.Cache, key)
	os.RemoveAll(final) // a cache entry without "done" is garbage
	return os.Rename(out, final)
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
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

// aptState hashes what apt's candidate versions and the user's files
// depend on, and what the key depends on beside them: the builder
// version, the wanted kernel modules, lnst_warn's source and toolchain, the mtimes and sizes of the files under
// /var/lib/apt/lists and /etc/apt, and Options.Kernel and Modules.
func aptState(opts Options) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, builderVersion, kernelMeta, strings.Join(toolPackages, " "))
	fmt.Fprintln(h, "modules", strings.Join(imageModules(), " "))
	fmt.Fprintln(h, "warnmod", kernelpkg.WarnModuleHash(), warnToolchain())
	if opts.OpenVSwitch {
		fmt.Fprintln(h, "openvswitch", strings.Join(ovsPackages(), " "))
	}
	for _, dir := range []string{"/var/lib/apt/lists", "/etc/apt"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Name() == "lock" {
				return nil
			}
			if d.Name() == "partial" && d.IsDir() {
				return fs.SkipDir // apt's downloads in progress; root-only
			}
			st, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintln(h, p, st.Size(), st.ModTime().UnixNano())
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	if err := hashUserFiles(h, opts); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// cachedByState returns the complete image recorded for state, or nil.
func cachedByState(cache, state string, stateErr error) *Image {
	if stateErr != nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(cache, "state", state))
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return nil
	}
	dir := filepath.Join(cache, f[0])
	if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
		return nil
	}
	return &Image{Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.cpio"), Release: f[1], Key: f[0]}
}

// writeFileAtomic writes data to path through a temporary file.
func writeFileAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// hashUserFiles adds the user's kernel and modules tree (path, size and
// modification time) to an image's hash.
func hashUserFiles(h io.Writer, opts Options) error {
	for _, p := range []string{opts.Kernel, opts.Modules} {
		if p == "" {
			fmt.Fprintln(h, "-")
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("vmimage: %w", err)
		}
		fmt.Fprintln(h, "file", abs, st.Size(), st.ModTime().UnixNano())
	}
	return nil
}
