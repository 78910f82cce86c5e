package kernelpkg

import (
	"context"
	"debug/elf"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var regexpDepends = regexp.MustCompile(`Depends: linux-image-(\S+)`)

func TestParseHeaderDepends(t *testing.T) {
	out := "linux-headers-6.1.0-57-cloud-amd64\n  Depends: linux-headers-6.1.0-57-common\n  Depends: linux-kbuild-6.1\n  Depends: linux-compiler-gcc-12-x86\n"
	got, err := parseHeaderDepends("linux-headers-6.1.0-57-cloud-amd64", out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"linux-headers-6.1.0-57-cloud-amd64", "linux-headers-6.1.0-57-common", "linux-kbuild-6.1"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseHeaderDepends("linux-headers-x", "linux-headers-x\n"); err == nil {
		t.Error("no dependencies: want an error")
	}
}

// TestBuildWarnModule builds lnst_warn.ko against the headers of the
// default VM image's kernel, fetched with apt-get download.
func TestBuildWarnModule(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads kernel headers and builds a module: not run with -short")
	}
	for _, c := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs a Debian machine with apt: %s not found", c)
		}
	}
	ctx := context.Background()
	out, err := exec.Command("apt-cache", "depends", "linux-image-cloud-amd64").Output()
	if err != nil {
		t.Skipf("no linux-image-cloud-amd64 in apt here: %v", err)
	}
	var release string
	for _, f := range regexpDepends.FindAllStringSubmatch(string(out), -1) {
		release = f[1]
	}
	if release == "" {
		t.Fatalf("apt-cache depends linux-image-cloud-amd64 names no linux-image-*: %s", out)
	}
	pkgs, err := HeaderPackages(ctx, release)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	var debs []string
	for _, p := range pkgs {
		d, err := FetchPackage(ctx, cache, p)
		if err != nil {
			t.Fatal(err)
		}
		debs = append(debs, d)
	}
	ko, err := BuildWarnModule(ctx, debs, release, filepath.Join(t.TempDir(), "work"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(ko)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		t.Fatalf("%s has no .modinfo section", ko)
	}
	b, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	if want := "vermagic=" + release + " "; !strings.Contains(string(b), want) {
		t.Errorf("%s's .modinfo has no %q: %q", filepath.Base(ko), want, b)
	}
}
