// Package archname is the one table between Go's architecture names
// (GOARCH) and the machine names `uname -m` prints, for the controller's
// checks that a binary it ships runs on a host.
package archname

import "slices"

// names lists each GOARCH with the machine names of the hosts that run it,
// the usual one first. A machine name may stand for more than one GOARCH
// (uname -m does not tell a mips host's byte order).
var names = []struct {
	goarch   string
	machines []string
}{
	{"amd64", []string{"x86_64", "amd64"}},
	{"386", []string{"i686", "i386", "i486", "i586"}},
	{"arm64", []string{"aarch64", "arm64"}},
	{"arm", []string{"armv7l", "armv5tel", "armv5tejl", "armv6l", "armv8l"}},
	{"ppc64le", []string{"ppc64le"}},
	{"ppc64", []string{"ppc64"}},
	{"s390x", []string{"s390x"}},
	{"riscv64", []string{"riscv64"}},
	{"loong64", []string{"loongarch64"}},
	{"mips64le", []string{"mips64"}},
	{"mips64", []string{"mips64"}},
	{"mipsle", []string{"mips"}},
	{"mips", []string{"mips"}},
}

// Machine is the name uname -m usually prints on a host of goarch
// ("x86_64" for amd64), or "" for a GOARCH the table lacks.
func Machine(goarch string) string {
	for _, n := range names {
		if n.goarch == goarch {
			return n.machines[0]
		}
	}
	return ""
}

// GOARCHes are the GOARCHes whose usual binaries a host named machine by
// uname -m runs, in the table's order; none for a machine it lacks.
func GOARCHes(machine string) []string {
	var out []string
	for _, n := range names {
		if slices.Contains(n.machines, machine) {
			out = append(out, n.goarch)
		}
	}
	return out
}

// GOARCH is the one GOARCH of a host named machine by uname -m; false when
// the table has none or more than one for it.
func GOARCH(machine string) (string, bool) {
	if g := GOARCHes(machine); len(g) == 1 {
		return g[0], true
	}
	return "", false
}

// Runs reports whether a binary built for goarch runs on a host named
// machine by uname -m: a GOARCH of that machine, or 386 on an amd64 host.
func Runs(goarch, machine string) bool {
	if slices.Contains(GOARCHes(machine), goarch) {
		return true
	}
	return goarch == "386" && slices.Contains(GOARCHes(machine), "amd64")
}
