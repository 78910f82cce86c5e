package vmimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lnst-go/lnst/internal/cpio"
	"github.com/lnst-go/lnst/internal/debpkg"
	"github.com/lnst-go/lnst/internal/kernelpkg"
)

// The image built on Debian's kernel carries lnst_warn.ko, a module that
// makes the kernel WARN on demand (Debian's cloud kernel has no lkdtm),
// built against the kernel's header packages when the image is built. It
// is not loaded at boot: a test loads it (modprobe lnst_warn) and writes
// 1 to kernelpkg.WarnTrigger. When it cannot be built (no headers in apt,
// no make or gcc-12 here), the image is built without it and carries
// WarnModuleMissing, the reason, instead: a test that wants the module
// fails naming it.
const (
	// WarnModulePath is lnst_warn.ko's place under /lib/modules/<release>.
	WarnModulePath = "extra/" + kernelpkg.WarnModule
	// WarnModuleMissing, under /lib/modules/<release>, says why the image
	// has no lnst_warn.ko.
	WarnModuleMissing = "extra/lnst_warn.missing"
)

// warnCC is the compiler of Debian 12's kernels, which lnst_warn.ko is
// built with.
const warnCC = "gcc-12"

// warnToolchain says whether make and the kernel's compiler are here: an
// image built without them lacks lnst_warn.ko, so installing them gives
// another cache key.
func warnToolchain() string {
	var s []string
	for _, c := range []string{"make", warnCC} {
		_, err := exec.LookPath(c)
		s = append(s, fmt.Sprintf("%s=%t", c, err == nil))
	}
	return strings.Join(s, " ")
}

// resolveHeaders sets in.headers to the candidate header packages of the
// Debian kernel, or in.warnErr to why there are none.
func resolveHeaders(ctx context.Context, in *inputs) {
	if in.kernel == "" {
		return
	}
	pkgs, err := kernelpkg.HeaderPackages(ctx, in.release)
	if err == nil {
		in.headers, err = debpkg.Candidates(ctx, pkgs)
	}
	if err != nil {
		in.headers, in.warnErr = nil, err.Error()
	}
}

// hashWarnModule adds lnst_warn's inputs to an image's hash.
func hashWarnModule(h io.Writer, in *inputs) {
	fmt.Fprintln(h, "warnmod", kernelpkg.WarnModuleHash(), warnToolchain())
	names := make([]string, 0, len(in.headers))
	for n := range in.headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(h, "headers", in.headers[n].File, in.headers[n].SHA256)
	}
	if in.warnErr != "" {
		fmt.Fprintln(h, "warnmod-unresolved")
	}
}

// addWarnModule builds lnst_warn.ko and adds it to t, with a modules.dep
// line (addModules wrote modules.dep under tmp/modules), or adds
// WarnModuleMissing with the reason it could not be built. Only a
// cancelled ctx is an error: the image is still good without the module.
func addWarnModule(ctx context.Context, t *tree, in *inputs, debDir, tmp string, log io.Writer) error {
	dst := "/usr/lib/modules/" + in.release + "/"
	ko, err := buildWarnModule(ctx, in, debDir, tmp, log)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		dep := filepath.Join(tmp, "modules", "modules.dep")
		f, ferr := os.OpenFile(dep, os.O_APPEND|os.O_WRONLY, 0)
		if ferr == nil {
			_, ferr = fmt.Fprintf(f, "%s:\n", WarnModulePath)
			if cerr := f.Close(); ferr == nil {
				ferr = cerr
			}
		}
		if ferr != nil {
			return fmt.Errorf("add %s to modules.dep: %w", kernelpkg.WarnModule, ferr)
		}
		t.add(cpio.File{Path: dst + WarnModulePath, Mode: 0o644, Src: ko})
		fmt.Fprintf(log, "vmimage: built %s (a kernel WARNING on demand, not loaded at boot)\n", kernelpkg.WarnModule)
		return nil
	}
	fmt.Fprintf(log, "vmimage: WARNING: the image has no %s (tests of kernel WARNINGs will fail): %v\n", kernelpkg.WarnModule, err)
	t.add(cpio.File{Path: dst + "extra", Mode: os.ModeDir | 0o755})
	t.add(cpio.File{Path: dst + WarnModuleMissing, Mode: 0o644, Data: []byte(err.Error() + "\n")})
	return nil
}

func buildWarnModule(ctx context.Context, in *inputs, debDir, tmp string, log io.Writer) (string, error) {
	if in.warnErr != "" {
		return "", fmt.Errorf("build %s for %s: %s", kernelpkg.WarnModule, in.release, in.warnErr)
	}
	debs := make([]debpkg.File, 0, len(in.headers))
	for _, d := range in.headers {
		debs = append(debs, d)
	}
	sort.Slice(debs, func(i, j int) bool { return debs[i].Pkg < debs[j].Pkg })
	if err := debpkg.Download(ctx, debDir, debs, log); err != nil {
		return "", fmt.Errorf("build %s for %s: %w", kernelpkg.WarnModule, in.release, err)
	}
	paths := make([]string, len(debs))
	for i, d := range debs {
		paths[i] = filepath.Join(debDir, d.File)
	}
	return kernelpkg.BuildWarnModule(ctx, paths, in.release, filepath.Join(tmp, "warnmod"))
}
