package lnsttest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// publicPackages are the directories, from this one, of the packages a
// recipe imports: their exported API must name no type of an internal
// package, which a recipe can neither name nor build.
var publicPackages = []string{".", "../pool", "../devices", "../results", "../modules", "../modules/perf"}

// knownInternal are the uses left, by "file: declaration": pool.Lab hands
// lnsttest its agents' clients. They go when lnsttest reaches the lab
// through pool's scheduler (issue 23, "Layers").
var knownInternal = map[string]bool{
	"lab.go: Client names pb.AgentClient":        true,
	"lab.go: Hello names pb.HelloReply":          true,
	"vmlab.go: GuestClient names pb.AgentClient": true,
	"vmlab.go: GuestClient names pb.HelloReply":  true,
}

// TestPublicAPIHasNoInternalTypes reads the exported declarations of the
// public packages (functions, methods of exported types, exported types
// and their exported fields, variables and constants) and fails on each
// that names a type of a package under internal/.
func TestPublicAPIHasNoInternalTypes(t *testing.T) {
	var found []string
	for _, dir := range publicPackages {
		fset := token.NewFileSet()
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			file, err := parser.ParseFile(fset, f, src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, at := range internalUses(file) {
				if dir == "../pool" && knownInternal[filepath.Base(f)+": "+at.what] {
					continue
				}
				found = append(found, fset.Position(at.pos).String()+": "+at.what)
			}
		}
	}
	sort.Strings(found)
	if len(found) > 0 {
		t.Errorf("the public API names internal types:\n%s", strings.Join(found, "\n"))
	}
}

type internalUse struct {
	pos  token.Pos
	what string
}

// internalUses lists where file's exported declarations name a type of an
// internal package.
func internalUses(file *ast.File) []internalUse {
	internal := map[string]bool{} // local names of internal imports
	for _, imp := range file.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if !strings.Contains(path, "/internal/") {
			continue
		}
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		internal[name] = true
	}
	var uses []internalUse
	check := func(what string, n ast.Node) {
		if n == nil {
			return
		}
		ast.Inspect(n, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && internal[id.Name] {
					uses = append(uses, internalUse{sel.Pos(), what + " names " + id.Name + "." + sel.Sel.Name})
				}
			}
			return true
		})
	}
	for _, d := range file.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || (d.Recv != nil && !exportedRecv(d.Recv)) {
				continue
			}
			check(d.Name.Name, d.Type)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					if st, ok := s.Type.(*ast.StructType); ok {
						for _, f := range st.Fields.List {
							for _, n := range f.Names {
								if n.IsExported() {
									check(s.Name.Name+"."+n.Name, f.Type)
								}
							}
							if len(f.Names) == 0 { // embedded
								check(s.Name.Name+" (embedded)", f.Type)
							}
						}
						continue
					}
					check(s.Name.Name, s.Type)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							check(n.Name, s.Type)
						}
					}
				}
			}
		}
	}
	return uses
}

// exportedRecv reports whether a method's receiver type is exported.
func exportedRecv(recv *ast.FieldList) bool {
	t := recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
