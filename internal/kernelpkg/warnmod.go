package kernelpkg

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/lnst-go/lnst/internal/debpkg"
)

// WarnModule is the file name of lnst_warn, the VM lab's kernel WARNING on
// demand: loading it does nothing; writing 1 to WarnTrigger makes the
// kernel WARN with WarnMessage (source: lnstwarn/lnst_warn.c).
const (
	WarnModule  = "lnst_warn.ko"
	WarnTrigger = "/sys/module/lnst_warn/parameters/trigger"
	WarnMessage = "lnst_warn: triggered on purpose"
)

//go:embed lnstwarn/lnst_warn.c lnstwarn/Kbuild
var warnSrc embed.FS

// WarnModuleHash hashes lnst_warn's source, for cache keys.
func WarnModuleHash() string {
	h := sha256.New()
	fs.WalkDir(warnSrc, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := warnSrc.ReadFile(p)
			fmt.Fprintf(h, "%s %d\n%s", p, len(b), b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// HeaderPackages returns the Debian packages that building a module for
// the Debian kernel release needs: linux-headers-<release> and the
// linux-headers-*-common and linux-kbuild-* packages it depends on
// (apt-cache depends).
func HeaderPackages(ctx context.Context, release string) ([]string, error) {
	pkg := "linux-headers-" + release
	out, err := debpkg.Command(ctx, "", "apt-cache", "depends", pkg)
	if err != nil {
		return nil, fmt.Errorf("header packages of %s: %w", release, err)
	}
	return parseHeaderDepends(pkg, string(out))
}

func parseHeaderDepends(pkg, out string) ([]string, error) {
	pkgs := []string{pkg}
	var common, kbuild bool
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || f[0] != "Depends:" {
			continue
		}
		switch {
		case strings.HasPrefix(f[1], "linux-headers-") && strings.HasSuffix(f[1], "-common"):
			common = true
			pkgs = append(pkgs, f[1])
		case strings.HasPrefix(f[1], "linux-kbuild-"):
			kbuild = true
			pkgs = append(pkgs, f[1])
		}
	}
	if !common || !kbuild {
		return nil, fmt.Errorf("header packages: apt-cache depends %s names no linux-headers-*-common and linux-kbuild-* (no such package? run apt-get update)", pkg)
	}
	return pkgs, nil
}

var kernelCC = regexp.MustCompile(`\bgcc-\d+\b`)

// BuildWarnModule builds lnst_warn.ko for the kernel release from its
// header packages (the .deb files of HeaderPackages), unpacked with
// dpkg-deb -x under the directory work, and returns the module's path
// (under work). It needs make and the compiler the kernel was built with,
// which the headers name (gcc-12 for Debian 12's kernels).
func BuildWarnModule(ctx context.Context, debs []string, release, work string) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("build %s for %s: %w", WarnModule, release, err)
	}
	root := filepath.Join(work, "headers")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fail(err)
	}
	for _, d := range debs {
		if _, err := debpkg.Command(ctx, "", "dpkg-deb", "-x", d, root); err != nil {
			return fail(err)
		}
	}
	hdr := filepath.Join(root, "usr", "src", "linux-headers-"+release)
	// The flavour's Makefile includes the common one by its absolute
	// path under /usr/src: point it at the unpacked one.
	mk, err := os.ReadFile(filepath.Join(hdr, "Makefile"))
	if err != nil {
		return fail(err)
	}
	mk = []byte(strings.ReplaceAll(string(mk), " /usr/src/", " "+root+"/usr/src/"))
	if err := os.WriteFile(filepath.Join(hdr, "Makefile"), mk, 0o644); err != nil {
		return fail(err)
	}
	tools := []string{"make"}
	if v, err := os.ReadFile(filepath.Join(hdr, ".kernelvariables")); err == nil {
		if cc := kernelCC.FindString(string(v)); cc != "" {
			tools = append(tools, cc)
		}
	}
	for _, c := range tools {
		if _, err := exec.LookPath(c); err != nil {
			return fail(fmt.Errorf("%s not found: install it (apt-get install make gcc-12 for Debian 12's kernels)", c))
		}
	}
	src := filepath.Join(work, "lnst_warn")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return fail(err)
	}
	for _, f := range []string{"lnst_warn.c", "Kbuild"} {
		b, _ := warnSrc.ReadFile("lnstwarn/" + f)
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			return fail(err)
		}
	}
	if _, err := debpkg.Command(ctx, "", "make", "-C", hdr, "M="+src, "modules"); err != nil {
		return fail(err)
	}
	ko := filepath.Join(src, WarnModule)
	if _, err := os.Stat(ko); err != nil {
		return fail(err)
	}
	return ko, nil
}
