package vmimage

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lnst-go/lnst/internal/cpio"
	"github.com/lnst-go/lnst/internal/kernelpkg"
)

// tree is the base initramfs being assembled, by canonical path.
type tree struct {
	entries map[string]cpio.File
}

// canon maps a Debian package path to its place in the usrmerged image:
// /bin, /sbin, /lib and /lib64 are links to usr/....
func canon(p string) string {
	p = path.Clean("/" + p)
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib64"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return "/usr" + p
		}
	}
	return p
}

func (t *tree) add(e cpio.File) { t.entries[canon(e.Path)] = e }

func (t *tree) has(p string) bool { _, ok := t.entries[canon(p)]; return ok }

// write writes the tree as a cpio archive, sorted so parents come first.
func (t *tree) write(path string) error {
	paths := make([]string, 0, len(t.entries))
	for p := range t.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	es := make([]cpio.File, 0, len(paths))
	for _, p := range paths {
		e := t.entries[p]
		e.Path = p
		es = append(es, e)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := cpio.Write(f, es); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stagedPath finds p in root, trying the usrmerged twin of p too.
func stagedPath(root, p string) (string, bool) {
	cands := []string{p, canon(p)}
	if rest, ok := strings.CutPrefix(p, "/usr/"); ok {
		cands = append(cands, "/"+rest)
	}
	for _, c := range cands {
		if _, err := os.Lstat(filepath.Join(root, c)); err == nil {
			return c, true
		}
	}
	return "", false
}

// addStaged adds the file at p of root to the tree, following symbolic
// links (each link is kept as a link) to the file they name.
func (t *tree) addStaged(root, p string, depth int) (string, error) {
	sp, ok := stagedPath(root, p)
	if !ok {
		return "", fmt.Errorf("%s not found in the unpacked packages", p)
	}
	host := filepath.Join(root, sp)
	st, err := os.Lstat(host)
	if err != nil {
		return "", err
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		if depth > 10 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		t.add(cpio.File{Path: sp, Mode: os.ModeSymlink | 0o777, Data: []byte(target)})
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(sp), target)
		}
		return t.addStaged(root, target, depth+1)
	case st.Mode().IsRegular():
		t.add(cpio.File{Path: sp, Mode: st.Mode().Perm(), Src: host})
		return host, nil
	}
	return "", fmt.Errorf("%s: unsupported file type %v", p, st.Mode().Type())
}

// libDirs are where the dynamic loader looks, in the staged libraries.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib"}

// addELFClosure adds the shared libraries (DT_NEEDED, recursively) and
// the interpreter of the ELF file at host, resolved in libRoot.
func (t *tree) addELFClosure(libRoot, host string, done map[string]bool) error {
	f, err := elf.Open(host)
	if err != nil {
		if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "bad magic") {
			return nil // a script
		}
		return err
	}
	defer f.Close()
	need, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("read DT_NEEDED of %s: %w", host, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return err
			}
			interp := strings.TrimRight(string(b), "\x00")
			if !done[interp] {
				done[interp] = true
				if _, err := t.addStaged(libRoot, interp, 0); err != nil {
					return fmt.Errorf("interpreter of %s: %w", host, err)
				}
			}
		}
	}
	for _, lib := range need {
		if done[lib] {
			continue
		}
		done[lib] = true
		if err := t.addLib(libRoot, lib, done); err != nil {
			return fmt.Errorf("%s needs %s: %w", filepath.Base(host), lib, err)
		}
	}
	return nil
}

// addLib adds the library soname and its closure.
func (t *tree) addLib(libRoot, soname string, done map[string]bool) error {
	for _, d := range libDirs {
		if _, ok := stagedPath(libRoot, d+"/"+soname); !ok {
			continue
		}
		host, err := t.addStaged(libRoot, d+"/"+soname, 0)
		if err != nil {
			return err
		}
		return t.addELFClosure(libRoot, host, done)
	}
	return fmt.Errorf("not found in the unpacked library packages (a package not named lib*?)")
}

// extraLibs are in the image for the agent, a cgo-linked Go binary.
var extraLibs = []string{"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
	"libresolv.so.2", "libnss_files.so.2", "libnss_dns.so.2"}

// etcFiles are the small configuration files of the guest.
var etcFiles = map[string]string{
	"/etc/passwd":        "root:x:0:0:root:/root:/bin/sh\ntcpdump:x:104:109::/nonexistent:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
	"/etc/group":         "root:x:0:\ntcpdump:x:109:\nnogroup:x:65534:\n",
	"/etc/hosts":         "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	"/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n",
	// No stray bond0, dummy0 or ifb0/ifb1 when the modules load (a kind
	// probe loads them).
	"/etc/modprobe.d/lnst.conf": "options bonding max_bonds=0\noptions dummy numdummies=0\noptions ifb numifbs=0\n",
	"/etc/protocols":            "ip\t0\tIP\nicmp\t1\tICMP\ntcp\t6\tTCP\nudp\t17\tUDP\nipv6-icmp\t58\tIPv6-ICMP\n",
}

// assemble fills t: layout, busybox, tools and their libraries, /etc,
// kernel modules and /init.
func assemble(ctx context.Context, t *tree, stage string, in *inputs, modDir, tmp string, log io.Writer) error {
	dir := func(p string, mode os.FileMode) {
		t.add(cpio.File{Path: p, Mode: os.ModeDir | mode})
	}
	for _, d := range []string{"/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/etc", "/proc",
		"/sys", "/dev", "/run", "/root", "/var", "/lnst"} {
		dir(d, 0o755)
	}
	dir("/tmp", 0o1777|os.ModeSticky)
	t.entries["/var/run"] = cpio.File{Path: "/var/run", Mode: os.ModeSymlink | 0o777, Data: []byte("../run")}
	t.entries["/var/tmp"] = cpio.File{Path: "/var/tmp", Mode: os.ModeSymlink | 0o777, Data: []byte("../tmp")}
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		t.entries["/"+d] = cpio.File{Path: "/" + d, Mode: os.ModeSymlink | 0o777, Data: []byte("usr/" + d)}
	}
	t.add(cpio.File{Path: "/dev/console", Mode: os.ModeDevice | os.ModeCharDevice | 0o600, DevMajor: 5, DevMinor: 1})
	t.add(cpio.File{Path: "/dev/null", Mode: os.ModeDevice | os.ModeCharDevice | 0o666, DevMajor: 1, DevMinor: 3})

	libRoot := filepath.Join(stage, "libs")
	done := map[string]bool{}
	real := map[string]bool{} // base names of the tools from packages
	for _, pkg := range toolPackages {
		root := filepath.Join(stage, "pkg", pkg)
		for _, d := range []string{"/bin", "/sbin", "/usr/bin", "/usr/sbin"} {
			ents, err := os.ReadDir(filepath.Join(root, d))
			if err != nil {
				continue
			}
			for _, e := range ents {
				host, err := t.addStaged(root, d+"/"+e.Name(), 0)
				if err != nil {
					return fmt.Errorf("package %s: %w", pkg, err)
				}
				real[e.Name()] = true
				if err := t.addELFClosure(libRoot, host, done); err != nil {
					return fmt.Errorf("package %s: %w", pkg, err)
				}
			}
		}
	}
	if in.ovs {
		if err := t.addOvs(stage, libRoot, done); err != nil {
			return err
		}
	}
	for _, lib := range extraLibs {
		if !done[lib] {
			done[lib] = true
			if err := t.addLib(libRoot, lib, done); err != nil {
				return fmt.Errorf("library %s: %w", lib, err)
			}
		}
	}
	// iproute2 reads /etc/iproute2 and /usr/share/iproute2 (rt_tables...).
	for _, d := range []string{"/etc/iproute2", "/usr/share/iproute2"} {
		if err := t.addDir(filepath.Join(stage, "pkg", "iproute2"), d); err != nil {
			return err
		}
	}
	for p, data := range etcFiles {
		t.add(cpio.File{Path: p, Mode: 0o644, Data: []byte(data)})
	}

	bbRoot := filepath.Join(stage, "pkg", "busybox-static")
	bb, err := t.addStaged(bbRoot, "/bin/busybox", 0)
	if err != nil {
		return fmt.Errorf("package busybox-static: %w", err)
	}
	apps, err := busyboxApplets(ctx, bb)
	if err != nil {
		return err
	}
	for _, a := range apps {
		if a == "bin/busybox" || real[path.Base(a)] || t.has(a) {
			continue
		}
		t.add(cpio.File{Path: a, Mode: os.ModeSymlink | 0o777, Data: []byte("/bin/busybox")})
	}
	if !t.has("/sbin/modprobe") {
		return errors.New("busybox has no modprobe applet")
	}
	t.add(cpio.File{Path: "/init", Mode: 0o755, Data: []byte(initScript)})

	if modDir == "" {
		fmt.Fprintln(log, "vmimage: no kernel modules (Options.Modules is empty)")
		return nil
	}
	return addModules(t, modDir, in.release, tmp, log)
}

// addDir adds the regular files and links under dir of root, if any.
func (t *tree) addDir(root, dir string) error {
	base := filepath.Join(root, dir)
	if _, err := os.Stat(base); err != nil {
		return nil
	}
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		_, err = t.addStaged(root, "/"+rel, 0)
		return err
	})
}

// addModules adds the closure of wantModules from modDir with the
// modules.dep and modules.alias files of that selection.
func addModules(t *tree, modDir, release, tmp string, log io.Writer) error {
	sel, err := kernelpkg.Select(modDir, log)
	if err != nil {
		return err
	}
	dst := "/usr/lib/modules/" + release
	for _, p := range sel.Paths() {
		t.add(cpio.File{Path: dst + "/" + p, Mode: 0o644, Src: filepath.Join(modDir, p)})
	}
	gen := filepath.Join(tmp, "modules")
	if err := os.MkdirAll(gen, 0o755); err != nil {
		return err
	}
	if err := sel.WriteDepFiles(gen); err != nil {
		return err
	}
	for _, f := range []string{"modules.dep", "modules.alias"} {
		t.add(cpio.File{Path: dst + "/" + f, Mode: 0o644, Src: filepath.Join(gen, f)})
	}
	for _, f := range []string{"modules.builtin", "modules.order", "modules.builtin.modinfo"} {
		if _, err := os.Stat(filepath.Join(modDir, f)); err == nil {
			t.add(cpio.File{Path: dst + "/" + f, Mode: 0o644, Src: filepath.Join(modDir, f)})
		}
	}
	fmt.Fprintf(log, "vmimage: %d kernel modules\n", sel.Len())
	return nil
}
