package lnsttest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoConcreteProvisioner holds the layering of issue 23: lnsttest
// schedules through pool.Scheduler and reaches machines through the
// pool.Provisioner interface only, so its non-test code names no
// concrete provisioner of package pool (StaticProvisioner,
// ExecProvisioner, LabProvisioner, their constructors).
func TestNoConcreteProvisioner(t *testing.T) {
	allowed := map[string]bool{"Provisioner": true, "Provisioners": true, "HostProvisioner": true, "SlotProvisioner": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		poolName := ""
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == "github.com/lnst-go/lnst/pool" {
				poolName = "pool"
				if imp.Name != nil {
					poolName = imp.Name.Name
				}
			}
		}
		if poolName == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == poolName && strings.Contains(sel.Sel.Name, "Provisioner") && !allowed[sel.Sel.Name] {
				t.Errorf("%s: lnsttest names the concrete provisioner pool.%s: go through pool.Provisioner and pool.Scheduler", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
