package recipes

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/agent"
	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/require"
)

// The README has a table of device kinds and recipes per lab, each
// between its markers; TestREADMEDeviceTable checks the one of the lab it
// runs on and, with LNST_UPDATE_README=1, rewrites it.
const tableReadme = "../README.md"

// tableLab is what the table of one lab says.
type tableLab struct {
	start, end string // the markers
	name       string // "the namespace lab"
	heading    string // the README section made when the markers are missing
	flags      string // what the update command adds to select the lab
}

var tableLabs = map[string]tableLab{
	"netns": {"<!-- device-table -->", "<!-- /device-table -->", "the namespace lab", "Devices and recipes", ""},
	"vm":    {"<!-- device-table-vm -->", "<!-- /device-table-vm -->", "the VM lab", "Devices and recipes on the VM lab", " -lnst.lab=vm"},
	"vm-ovs": {"<!-- device-table-vm-ovs -->", "<!-- /device-table-vm-ovs -->", "the VM lab with Open vSwitch",
		"Devices and recipes on the VM lab with Open vSwitch", " -lnst.lab=vm -lnst.vm.ovs=true"},
}

// tableLabOf picks the table of the lab this run uses (-lnst.lab or
// LNST_LAB): the rootless lab runs on the namespace lab's kernel; under
// auto, recipes move between labs, so no single table describes the run.
// The VM lab's image with Open vSwitch (-lnst.vm.ovs or LNST_VM_OVS) has
// a table of its own: there the Open vSwitch recipes run.
func tableLabOf(t *testing.T) tableLab {
	setting := func(name, env string) string {
		v := os.Getenv(env)
		if f := flag.Lookup(name); f != nil && f.Value.String() != f.DefValue {
			v = f.Value.String()
		}
		return v
	}
	switch setting("lnst.lab", "LNST_LAB") {
	case "vm":
		if setting("lnst.vm.ovs", "LNST_VM_OVS") == "true" {
			return tableLabs["vm-ovs"]
		}
		return tableLabs["vm"]
	case "auto":
		t.Skip("the device table is made per lab: it requires -lnst.lab=netns (the default) or -lnst.lab=vm")
	}
	return tableLabs["netns"]
}

// tableSpecs is one zero value of every devices Spec type, to name the Go
// type of each kind. The test fails when devices.Kinds() and this list
// differ.
var tableSpecs = []devices.Spec{
	devices.Veth{}, devices.Bridge{}, devices.Dummy{}, devices.Vrf{}, devices.Tuntap{}, devices.Ifb{},
	devices.Bond{}, devices.Team{},
	devices.Vlan{}, devices.Macvlan{}, devices.Macvtap{}, devices.Ipvlan{},
	devices.Vxlan{}, devices.Geneve{}, devices.Gre{}, devices.Ip6gre{}, devices.Gretap{}, devices.Ip6gretap{},
	devices.IpIp{}, devices.Sit{}, devices.Ip6Tnl{}, devices.Vti{}, devices.Vti6{}, devices.Xfrm{}, devices.Macsec{},
	devices.Wireguard{}, devices.OvsBridge{},
}

// tableProbeName maps a devices kind to the name the agent's kernel probe
// (lnsttest.Kernel) knows it by, when they differ.
var tableProbeName = map[string]string{"tun": "tuntap"}

// tableRecipe is a recipe as read from its source.
type tableRecipe struct {
	name, file string
	kernel     []string // kinds it requires with lnsttest.Kernel
	types      []string // devices types it creates
	caps       []string // interface capabilities it requires (lnsttest.Capability)
}

// tableFunc is what one function of the package's source uses.
type tableFunc struct {
	file   string
	kernel []string // string literals given to lnsttest.Kernel
	types  []string // devices.T{...} literals
	calls  []*ast.CallExpr
	// forwards is set when the function passes a parameter to
	// lnsttest.Kernel: the string literals its callers give it are kinds.
	forwards bool
	// caps are string literals given to lnsttest.Capability;
	// capForwards is set when it is given something else (a parameter):
	// the string literals its callers give it are capabilities.
	caps        []string
	capForwards bool
}

// tableParse reads every _test.go file of the package and returns its
// recipes (func TestX(t *testing.T), but TestMain and this test) with what
// they need, following calls to the package's helpers.
func tableParse(t *testing.T) []tableRecipe {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	funcs := map[string]*tableFunc{}
	var tests []string
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, 0)
		require.NoError(t, err, "parse %s", file)
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || fd.Body == nil {
				continue
			}
			funcs[fd.Name.Name] = tableInspect(file, fd)
			if tableIsRecipe(fd) {
				tests = append(tests, fd.Name.Name)
			}
		}
	}
	var out []tableRecipe
	for _, name := range tests {
		r := tableRecipe{name: name, file: funcs[name].file}
		seen := map[string]bool{}
		var walk func(fn string)
		walk = func(fn string) {
			f := funcs[fn]
			if f == nil || seen[fn] {
				return
			}
			seen[fn] = true
			r.kernel = append(r.kernel, f.kernel...)
			r.types = append(r.types, f.types...)
			r.caps = append(r.caps, f.caps...)
			for _, c := range f.calls {
				id, ok := c.Fun.(*ast.Ident)
				if !ok {
					continue
				}
				if g := funcs[id.Name]; g != nil && g.forwards {
					r.kernel = append(r.kernel, tableStrings(c.Args)...)
				}
				if g := funcs[id.Name]; g != nil && g.capForwards {
					r.caps = append(r.caps, tableStrings(c.Args)...)
				}
				walk(id.Name)
			}
		}
		walk(name)
		slices.Sort(r.kernel)
		r.kernel = slices.Compact(r.kernel)
		slices.Sort(r.types)
		r.types = slices.Compact(r.types)
		slices.Sort(r.caps)
		r.caps = slices.Compact(r.caps)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b tableRecipe) int { return strings.Compare(a.name, b.name) })
	return out
}

// tableIsRecipe reports whether fd is a recipe: func TestX(t *testing.T),
// not TestMain nor TestREADMEDeviceTable.
func tableIsRecipe(fd *ast.FuncDecl) bool {
	n := fd.Name.Name
	if !strings.HasPrefix(n, "Test") || n == "TestMain" || n == "TestREADMEDeviceTable" {
		return false
	}
	p := fd.Type.Params.List
	if len(p) != 1 {
		return false
	}
	star, ok := p[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "T"
}

// tableInspect collects what fd uses.
func tableInspect(file string, fd *ast.FuncDecl) *tableFunc {
	f := &tableFunc{file: file}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			if tableIsSel(x.Fun, "lnsttest", "Kernel") {
				f.kernel = append(f.kernel, tableStrings(x.Args)...)
				if x.Ellipsis.IsValid() {
					f.forwards = true
				}
			} else if tableIsSel(x.Fun, "lnsttest", "Capability") {
				lits := tableStrings(x.Args)
				f.caps = append(f.caps, lits...)
				if len(lits) < len(x.Args) {
					f.capForwards = true
				}
			} else {
				f.calls = append(f.calls, x)
			}
		case *ast.CompositeLit:
			if sel, ok := x.Type.(*ast.SelectorExpr); ok && tableIsSel(sel, "devices", sel.Sel.Name) {
				f.types = append(f.types, sel.Sel.Name)
			}
			if tableIsSel(x.Type, "lnsttest", "Impair") {
				f.kernel = append(f.kernel, tableImpairQdisc(x))
			}
		}
		return true
	})
	return f
}

// tableImpairQdisc is the qdisc an lnsttest.Impair literal needs on the
// lab's switch, as lnsttest.Impair says: netem for Delay, Jitter or
// Loss, tbf for a Rate alone.
func tableImpairQdisc(lit *ast.CompositeLit) string {
	for _, e := range lit.Elts {
		if kv, ok := e.(*ast.KeyValueExpr); ok {
			if k, ok := kv.Key.(*ast.Ident); ok && k.Name != "Rate" {
				return "netem"
			}
		}
	}
	return "tbf"
}

func tableIsSel(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg
}

// tableStrings returns the string literals among args.
func tableStrings(args []ast.Expr) []string {
	var out []string
	for _, a := range args {
		if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil {
				out = append(out, s)
			}
		}
	}
	return out
}

// tableProbe finds which of the kernel features the lab's kernel has, the
// way recipes find out: a subtest per feature that Requires it, which
// skips when the kernel lacks it. It also returns the kernel's release.
func tableProbe(t *testing.T, features []string) (have map[string]bool, kernel string) {
	t.Helper()
	have = map[string]bool{}
	for _, k := range features {
		t.Run("probe="+k, func(t *testing.T) {
			m := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.Kernel(k), lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))))
			have[k] = true
			if kernel == "" {
				kernel = strings.TrimSpace(m.Host("h1").Output(t, "uname -r", lnsttest.Quiet()))
			}
		})
	}
	if kernel == "" {
		m := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))))
		kernel = strings.TrimSpace(m.Host("h1").Output(t, "uname -r", lnsttest.Quiet()))
	}
	return have, kernel
}

// kernelLine starts the line of the generated section that names the
// kernel probed.
func (l tableLab) kernelLine() string { return "Probed on " + l.name + " of Linux " }

// tableMarkdown renders the section between the markers.
func tableMarkdown(lab tableLab, kernel string, have map[string]bool, recipes []tableRecipe) string {
	typeOf := map[string]string{}
	for _, s := range tableSpecs {
		typeOf[s.Kind()] = reflect.TypeOf(s).Name()
	}
	probed := agent.KernelFeatures()
	var b strings.Builder
	fmt.Fprintf(&b, "%s%s. Generated by `TestREADMEDeviceTable` in `recipes/readme_table_test.go`:\n", lab.kernelLine(), kernel)
	fmt.Fprintf(&b, "run `LNST_UPDATE_README=1 go test ./recipes/ -run TestREADMEDeviceTable%s` to update it.\n\n", lab.flags)
	b.WriteString("| kind | `devices` type | kernel | recipes |\n| --- | --- | --- | --- |\n")
	for _, kind := range devices.Kinds() {
		typ := typeOf[kind]
		var users []string
		for _, r := range recipes {
			if slices.Contains(r.types, typ) || slices.Contains(r.kernel, kind) {
				users = append(users, "`"+r.name+"`")
			}
		}
		probe := kind
		if p, ok := tableProbeName[kind]; ok {
			probe = p
		}
		state := "not probed"
		if slices.Contains(probed, probe) {
			state = map[bool]string{true: "yes", false: "no"}[have[probe]]
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", kind, typ, state, strings.Join(users, ", "))
	}
	fmt.Fprintf(&b, "\n| recipe | file | needs kernel | on %s |\n| --- | --- | --- | --- |\n", lab.name)
	for _, r := range recipes {
		var lacks []string
		for _, k := range r.kernel {
			if !have[k] {
				lacks = append(lacks, k)
			}
		}
		verdict := "runs: the kernel has what it needs"
		if len(lacks) > 0 {
			verdict = "skips: kernel lacks " + strings.Join(lacks, ", ")
		}
		if len(r.caps) > 0 {
			verdict = "skips: needs a pool interface with capability " + strings.Join(r.caps, ", ")
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", r.name, r.file, strings.Join(r.kernel, ", "), verdict)
	}
	return b.String()
}

// TestREADMEDeviceTable builds the README's table of every device kind
// (devices.Kinds) and every recipe of this package, with what the lab's
// kernel has and which recipes it can run or must skip, and checks that the README
// holds it between its markers. With LNST_UPDATE_README=1 it writes it
// there instead.
func TestREADMEDeviceTable(t *testing.T) {
	var kinds []string
	for _, s := range tableSpecs {
		kinds = append(kinds, s.Kind())
	}
	slices.Sort(kinds)
	require.Equal(t, devices.Kinds(), kinds, "tableSpecs must list one value of every devices type")

	recipes := tableParse(t)
	require.NotEmpty(t, recipes)
	var features []string
	for _, k := range agent.KernelFeatures() {
		if slices.Contains(devices.Kinds(), k) || slices.ContainsFunc(recipes, func(r tableRecipe) bool { return slices.Contains(r.kernel, k) }) ||
			slices.Contains([]string{"tuntap"}, k) {
			features = append(features, k)
		}
	}
	for _, r := range recipes {
		for _, k := range r.kernel {
			require.Contains(t, agent.KernelFeatures(), k, "%s requires unknown kernel feature %q", r.name, k)
		}
	}
	lab := tableLabOf(t)
	have, kernel := tableProbe(t, features)
	want := tableMarkdown(lab, kernel, have, recipes)
	tableStart, tableEnd := lab.start, lab.end

	raw, err := os.ReadFile(tableReadme)
	require.NoError(t, err)
	readme := string(raw)
	start, end := strings.Index(readme, tableStart), strings.Index(readme, tableEnd)
	if os.Getenv("LNST_UPDATE_README") == "1" {
		section := tableStart + "\n" + want + tableEnd
		if start < 0 || end < start {
			readme = strings.TrimRight(readme, "\n") + "\n\n## " + lab.heading + "\n\n" + section + "\n"
		} else {
			readme = readme[:start] + section + readme[end+len(tableEnd):]
		}
		require.NoError(t, os.WriteFile(tableReadme, []byte(readme), 0o644))
		t.Logf("wrote the device table to %s", tableReadme)
		return
	}
	if start < 0 || end < start {
		t.Fatalf("%s has no %s ... %s section: run LNST_UPDATE_README=1 go test ./recipes/ -run TestREADMEDeviceTable%s", tableReadme, tableStart, tableEnd, lab.flags)
	}
	got := strings.TrimPrefix(readme[start+len(tableStart):end], "\n")
	if got == want {
		return
	}
	if !strings.Contains(got, lab.kernelLine()+kernel+".") {
		// Probed on another kernel: what that kernel has may differ, the
		// kinds, types, recipes and their needs may not.
		require.Equal(t, tableWithoutKernel(lab, want), tableWithoutKernel(lab, got),
			"the README's device table is out of date (kernel columns left out: it was probed on another kernel than this one, %s): run LNST_UPDATE_README=1 go test ./recipes/ -run TestREADMEDeviceTable%s", kernel, lab.flags)
		t.Logf("the README's device table was probed on another kernel than this one (%s): its kernel columns were not compared", kernel)
		return
	}
	require.Equal(t, want, got, "the README's device table is out of date: run LNST_UPDATE_README=1 go test ./recipes/ -run TestREADMEDeviceTable%s", lab.flags)
}

// tableWithoutKernel blanks what the table says of the kernel it was
// probed on: the release in its first line, the kind table's "kernel"
// column and the recipe table's last ("on <lab>") column.
func tableWithoutKernel(lab tableLab, section string) string {
	lines := strings.Split(section, "\n")
	column := 0 // the column to blank in the table of the current line
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, lab.kernelLine()):
			_, rest, _ := strings.Cut(strings.TrimPrefix(l, lab.kernelLine()), ". ")
			lines[i] = lab.kernelLine() + "(kernel). " + rest
		case strings.HasPrefix(l, "| kind |"):
			column = 3
		case strings.HasPrefix(l, "| recipe |"):
			column = 4
		case !strings.HasPrefix(l, "|"):
			column = 0
		case column > 0 && !strings.HasPrefix(l, "| ---"):
			cells := strings.Split(l, "|")
			if column < len(cells) {
				cells[column] = " (kernel) "
			}
			lines[i] = strings.Join(cells, "|")
		}
	}
	return strings.Join(lines, "\n")
}
