package kernelpkg

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseModinfoData(t *testing.T) {
	data := []byte("license=GPL\x00alias=rtnl-link-bond\x00depends=tls,foo-bar\x00softdep=pre: crc32c post: x\x00alias=net-pf-1\x00")
	got := parseModinfoData(data)
	want := modInfo{Depends: []string{"tls", "foo_bar"}, SoftPre: []string{"crc32c"}, Aliases: []string{"rtnl-link-bond", "net-pf-1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// fakeTree: a -> b -> c, a -> c, d soft-depends on e, f is built in.
func fakeTree() (*moduleTree, modinfoReader) {
	info := map[string]modInfo{
		"k/a.ko": {Depends: []string{"b", "c", "f"}, Aliases: []string{"rtnl-link-a"}},
		"k/b.ko": {Depends: []string{"c"}},
		"k/c.ko": {},
		"k/d.ko": {SoftPre: []string{"e", "nothere"}},
		"k/e.ko": {},
		"k/x.ko": {},
	}
	mt := &moduleTree{Mods: map[string]modInfo{}, Builtin: map[string]bool{"f": true, "builtin_one": true}}
	for p := range info {
		mt.Mods[strings.TrimSuffix(filepath.Base(p), ".ko")] = modInfo{Path: p}
	}
	return mt, func(rel string) (modInfo, error) { return info[rel], nil }
}

func TestClosureAndDepFiles(t *testing.T) {
	mt, read := fakeTree()
	sel, missing, err := mt.closure([]string{"a", "d", "builtin-one", "gone"}, read)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(missing, []string{"gone"}) {
		t.Errorf("missing = %v, want [gone]", missing)
	}
	var names []string
	for n := range sel {
		names = append(names, n)
	}
	if len(sel) != 5 || sel["x"].Path != "" {
		t.Errorf("selected %v, want a b c d e", names)
	}
	dir := t.TempDir()
	if err := writeDepFiles(dir, sel); err != nil {
		t.Fatal(err)
	}
	dep, _ := os.ReadFile(filepath.Join(dir, "modules.dep"))
	// Loading each line's dependencies from last to first loads c before b.
	wantDep := "k/a.ko: k/b.ko k/c.ko\nk/b.ko: k/c.ko\nk/c.ko:\nk/d.ko: k/e.ko\nk/e.ko:\n"
	if string(dep) != wantDep {
		t.Errorf("modules.dep:\n%s\nwant:\n%s", dep, wantDep)
	}
	alias, _ := os.ReadFile(filepath.Join(dir, "modules.alias"))
	if string(alias) != "alias rtnl-link-a a\n" {
		t.Errorf("modules.alias: %q", alias)
	}
}

func TestClosureUnknownDependency(t *testing.T) {
	mt := &moduleTree{Mods: map[string]modInfo{"a": {Path: "a.ko"}}, Builtin: map[string]bool{}}
	_, _, err := mt.closure([]string{"a"}, func(string) (modInfo, error) { return modInfo{Depends: []string{"zz"}}, nil })
	if err == nil || !strings.Contains(err.Error(), "zz") {
		t.Errorf("err = %v, want one naming zz", err)
	}
}

// imageCache is the VM image cache (vmimage.DefaultCache, or
// LNST_VM_CACHE as the VM lab's tests use; vmimage imports this package,
// so its function cannot be called here).
func imageCache() string {
	if c := os.Getenv("LNST_VM_CACHE"); c != "" {
		return c
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "lnst-vm-cache")
	}
	return filepath.Join(dir, "lnst", "vm")
}

// cachedKernel unpacks the newest kernel package of the VM image cache
// (its debs directory, filled by make vm-image and the VM lab's tests)
// into a directory of the test. It skips, saying why, when the cache
// holds none.
func cachedKernel(t *testing.T) Kernel {
	t.Helper()
	cache := imageCache()
	debs, _ := filepath.Glob(filepath.Join(cache, "debs", "linux-image-*.deb"))
	if len(debs) == 0 {
		t.Skipf("no kernel package in the VM image cache %s/debs: run make vm-image (or a VM lab test) to fill it", cache)
	}
	slices.Sort(debs)
	deb := debs[len(debs)-1]
	k, err := UnpackKernelPackage(context.Background(), deb, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if k.Modules == "" {
		t.Fatalf("%s has no modules tree", deb)
	}
	return k
}

// TestParseModinfoRealModules reads the modules of a real Debian kernel
// package, from the VM image cache: their dependencies, aliases and the
// release of their bzImage.
func TestParseModinfoRealModules(t *testing.T) {
	k := cachedKernel(t)
	if rel, err := bzImageRelease(k.Image); err != nil || rel != k.Release {
		t.Errorf("%s: got release %q, %v, want %q", k.Image, rel, err, k.Release)
	}
	mt, err := scanModules(k.Modules)
	if err != nil {
		t.Fatal(err)
	}
	sel, missing, err := mt.closure([]string{"bonding", "vxlan", "ipv6"}, func(rel string) (modInfo, error) {
		return parseModinfo(filepath.Join(k.Modules, rel))
	})
	if err != nil || len(missing) != 0 {
		t.Fatalf("closure: %v, missing %v", err, missing)
	}
	if _, ok := sel["udp_tunnel"]; !ok {
		t.Errorf("vxlan's closure lacks udp_tunnel: %v", slices.Sorted(maps.Keys(sel)))
	}
	if !slices.Contains(sel["bonding"].Aliases, "rtnl-link-bond") {
		t.Errorf("bonding aliases %v lack rtnl-link-bond", sel["bonding"].Aliases)
	}
}

func TestBzImageRelease(t *testing.T) {
	img := make([]byte, 0x400)
	copy(img[0x202:], "HdrS")
	img[0x20E], img[0x20F] = 0x00, 0x01 // version at 0x100+0x200
	copy(img[0x300:], "6.9.0-test (me@host) #1 SMP\x00")
	p := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if rel, err := bzImageRelease(p); err != nil || rel != "6.9.0-test" {
		t.Errorf("got %q, %v", rel, err)
	}
}
