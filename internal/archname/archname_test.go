package archname

import (
	"slices"
	"testing"
)

func TestMachine(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "arm": "armv7l",
		"loong64": "loongarch64", "mips64le": "mips64", "sparc64": ""} {
		if got := Machine(goarch); got != want {
			t.Errorf("Machine(%q) = %q, want %q", goarch, got, want)
		}
	}
}

func TestGOARCH(t *testing.T) {
	for machine, want := range map[string]string{"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
		"armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x",
		"riscv64": "riscv64", "loongarch64": "loong64"} {
		if got, ok := GOARCH(machine); !ok || got != want {
			t.Errorf("GOARCH(%q) = %q, %v; want %q", machine, got, ok, want)
		}
	}
	for _, machine := range []string{"pdp11", "mips64", "mips", ""} {
		if got, ok := GOARCH(machine); ok {
			t.Errorf("GOARCH(%q) = %q, want none (unknown or ambiguous)", machine, got)
		}
	}
	if got := GOARCHes("mips64"); !slices.Equal(got, []string{"mips64le", "mips64"}) {
		t.Errorf("GOARCHes(mips64) = %q", got)
	}
}

func TestRuns(t *testing.T) {
	for _, c := range []struct {
		goarch, machine string
		want            bool
	}{
		{"amd64", "x86_64", true},
		{"386", "x86_64", true},
		{"386", "i586", true},
		{"arm64", "aarch64", true},
		{"arm64", "arm64", true},
		{"arm", "armv7l", true},
		{"arm", "arm64", false},
		{"amd64", "aarch64", false},
		{"arm64", "x86_64", false},
		{"amd64", "i686", false},
		{"mips64le", "mips64", true},
		{"amd64", "pdp11", false},
	} {
		if got := Runs(c.goarch, c.machine); got != c.want {
			t.Errorf("Runs(%q, %q) = %v, want %v", c.goarch, c.machine, got, c.want)
		}
	}
}
