package main

import (
	"os/exec"
	"strings"
	"testing"
)

// module is this module's path, the prefix of its packages.
const module = "github.com/lnst-go/lnst"

// goListDeps lists the packages pkg depends on, itself included, with the
// go command.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("requires the go command on PATH to list package dependencies")
	}
	out, err := exec.Command(gocmd, "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

// TestLayers holds the layering of the module: the controller command
// links neither netlink nor the agent (whose init locks the main goroutine
// to its thread), and the agent links nothing of the pool.
func TestLayers(t *testing.T) {
	for _, c := range []struct {
		pkg, forbidden, why string
	}{
		{module + "/cmd/lnst", "github.com/vishvananda/", "the controller needs no netlink"},
		{module + "/cmd/lnst", module + "/agent", "the controller does not link the agent"},
		{module + "/pool", module + "/agent", "the pool launches agents through internal/launch, not by linking them"},
		{module + "/agent", module + "/pool", "the agent links nothing of the pool"},
	} {
		for _, dep := range goListDeps(t, c.pkg) {
			if dep == c.forbidden || strings.HasPrefix(dep, strings.TrimSuffix(c.forbidden, "/")+"/") {
				t.Errorf("%s depends on %s: %s (go list -deps -f '{{.ImportPath}}: {{.Imports}}' %s shows which import brings it)", c.pkg, dep, c.why, c.pkg)
			}
		}
	}
}
