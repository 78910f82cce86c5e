package vmimage

import (
	"testing"

	"github.com/lnst-go/lnst/internal/debpkg"
)

// TestKeyFollowsModules: a module added to the image's list gives another
// cache key and apt state, so the next Build makes a new image instead of
// returning the cached one without the module.
func TestKeyFollowsModules(t *testing.T) {
	in := &inputs{release: "6.1.0-57-cloud-amd64", debs: map[string]debpkg.File{
		"busybox-static": {Pkg: "busybox-static", File: "busybox-static_1_amd64.deb", SHA256: "00"},
	}}
	key := func() string {
		k, err := cacheKey(Options{}, in)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	state := func() string {
		s, err := aptState(Options{})
		if err != nil {
			t.Skipf("apt state unreadable here: %v", err)
		}
		return s
	}
	k1, s1 := key(), state()
	if k2 := key(); k2 != k1 {
		t.Fatalf("same inputs, keys %s and %s", k1, k2)
	}
	orig := imageModules
	t.Cleanup(func() { imageModules = orig })
	imageModules = func() []string { return append(orig(), "sch_cake") }
	if k2 := key(); k2 == k1 {
		t.Errorf("cache key %s did not change when sch_cake was added to the modules", k1)
	}
	if s2 := state(); s2 == s1 {
		t.Errorf("apt state %s did not change when sch_cake was added to the modules", s1)
	}
}

// TestKeyFollowsWarnModule: other kernel header packages, or headers that
// did not resolve, give another cache key, so an image built without
// lnst_warn.ko is not reused once it can be built.
func TestKeyFollowsWarnModule(t *testing.T) {
	in := &inputs{release: "6.1.0-57-cloud-amd64", kernel: "linux-image-6.1.0-57-cloud-amd64", debs: map[string]debpkg.File{
		"busybox-static": {Pkg: "busybox-static", File: "busybox-static_1_amd64.deb", SHA256: "00"},
	}, headers: map[string]debpkg.File{
		"linux-kbuild-6.1": {Pkg: "linux-kbuild-6.1", File: "linux-kbuild-6.1_1_amd64.deb", SHA256: "01"},
	}}
	key := func() string {
		k, err := cacheKey(Options{}, in)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k1 := key()
	in.headers["linux-kbuild-6.1"] = debpkg.File{Pkg: "linux-kbuild-6.1", File: "linux-kbuild-6.1_2_amd64.deb", SHA256: "02"}
	k2 := key()
	if k2 == k1 {
		t.Errorf("cache key %s did not change with another linux-kbuild-6.1", k1)
	}
	in.headers, in.warnErr = nil, "no headers"
	if k3 := key(); k3 == k1 || k3 == k2 {
		t.Errorf("cache key %s did not change when the headers did not resolve", k3)
	}
}
