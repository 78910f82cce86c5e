package vmimage

import (
	"reflect"
	"testing"
)

func TestFilterLibraries(t *testing.T) {
	out := "iproute2\n  Depends: libc6\nlibc6\n  Depends: libgcc-s1\n<debconf-2.0>\nlibperl5.36\nlibfile-find-rule-perl\nzlib1g\nlibelogind0\nperl\nlibmnl0\n"
	got := filterLibraries(out)
	if want := []string{"libc6", "libmnl0", "zlib1g"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestCanon(t *testing.T) {
	for in, want := range map[string]string{"/bin/ip": "/usr/bin/ip", "/lib64/ld.so": "/usr/lib64/ld.so", "sbin": "/usr/sbin", "/usr/bin/x": "/usr/bin/x", "/libexec": "/libexec"} {
		if got := canon(in); got != want {
			t.Errorf("canon(%q) = %q, want %q", in, got, want)
		}
	}
}
