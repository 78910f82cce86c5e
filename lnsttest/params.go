package lnsttest

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// ParamKind is the set of Go types a recipe parameter may have: a
// duration ("60s"), a whole number, a number, a string, a boolean, or a
// comma-separated list of strings or whole numbers ("64,1400,16k" is not
// a number list; "64,1400,16384" is).
type ParamKind interface {
	time.Duration | int | float64 | string | bool | []string | []int
}

// Parameter is a typed recipe parameter: declared once, at package level,
// with its default; set by -lnst.set NAME=VALUE (repeatable) or by the
// environment variable LNST_SET_NAME (NAME upper-cased, '.' and '-' as
// '_'), the flag winning. go test -args -lnst.params lists every
// parameter of a test binary with its type, default and doc.
//
//	var duration = lnsttest.NewParam("perf.duration", 5*time.Second, "how long each flow runs")
//
//	func TestX(t *testing.T) { ... duration.Get() ... }
type Parameter[T ParamKind] struct {
	name, doc string
	def       T
	choices   []string

	mu     sync.Mutex
	value  T
	set    bool
	source string
}

// paramEntry is what the registry needs of a Parameter of any type.
type paramEntry interface {
	Name() string
	Doc() string
	Type() string
	DefaultString() string
	setString(v, source string) error
	reset()
}

var (
	paramsMu sync.Mutex
	params   = map[string]paramEntry{}
)

// ParamOpt is an option of NewParam.
type ParamOpt func(*paramOpts)

type paramOpts struct{ choices []string }

// Choices restricts a parameter to the given values (compared as written
// on the command line): "short" or "full".
func Choices(values ...string) ParamOpt {
	return func(o *paramOpts) { o.choices = values }
}

// NewParam declares the recipe parameter name with its default and doc,
// and returns it. Declare parameters in package-level vars so that they
// exist before Main reads -lnst.set; a name declared twice, an empty name
// or one with '=' or a blank in it panics (a programming error).
func NewParam[T ParamKind](name string, def T, doc string, opts ...ParamOpt) *Parameter[T] {
	if name == "" || strings.ContainsAny(name, "= \t\n,") {
		panic(fmt.Sprintf("lnsttest.NewParam: invalid parameter name %q", name))
	}
	var o paramOpts
	for _, opt := range opts {
		opt(&o)
	}
	p := &Parameter[T]{name: name, doc: doc, def: def, value: def, choices: o.choices}
	if len(o.choices) > 0 && !slices.Contains(o.choices, p.DefaultString()) {
		panic(fmt.Sprintf("lnsttest.NewParam %s: default %q is not one of its choices %v", name, p.DefaultString(), o.choices))
	}
	paramsMu.Lock()
	defer paramsMu.Unlock()
	if _, dup := params[name]; dup {
		panic(fmt.Sprintf("lnsttest.NewParam: parameter %q declared twice", name))
	}
	params[name] = p
	return p
}

// Get returns the parameter's value: the one set on the command line or
// in the environment, else the default.
func (p *Parameter[T]) Get() T {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.value
}

// IsSet reports whether the value was set (by -lnst.set or the
// environment) rather than defaulted.
func (p *Parameter[T]) IsSet() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set
}

// Name returns the parameter's name ("perf.duration").
func (p *Parameter[T]) Name() string { return p.name }

// Doc returns the parameter's documentation.
func (p *Parameter[T]) Doc() string { return p.doc }

// EnvName returns the environment variable that sets the parameter:
// LNST_SET_PERF_DURATION for perf.duration.
func (p *Parameter[T]) EnvName() string { return paramEnv(p.name) }

// Type names the parameter's type as -lnst.params shows it: duration,
// int, float, string, bool, list, int-list; "short|full" for a
// parameter with Choices.
func (p *Parameter[T]) Type() string {
	if len(p.choices) > 0 {
		return strings.Join(p.choices, "|")
	}
	switch any(p.def).(type) {
	case time.Duration:
		return "duration"
	case int:
		return "int"
	case float64:
		return "float"
	case bool:
		return "bool"
	case []string:
		return "list"
	case []int:
		return "int-list"
	}
	return "string"
}

// DefaultString returns the default as -lnst.set would take it.
func (p *Parameter[T]) DefaultString() string { return formatParam(p.def) }

func formatParam(v any) string {
	switch v := v.(type) {
	case time.Duration:
		return v.String()
	case []string:
		return strings.Join(v, ",")
	case []int:
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = strconv.Itoa(n)
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprint(v)
}

// parseParam parses s as a value of T.
func parseParam[T ParamKind](s string) (T, error) {
	var zero T
	var v any
	var err error
	switch any(zero).(type) {
	case time.Duration:
		v, err = time.ParseDuration(s)
	case int:
		v, err = strconv.Atoi(s)
	case float64:
		v, err = strconv.ParseFloat(s, 64)
	case bool:
		v, err = strconv.ParseBool(s)
	case string:
		v = s
	case []string:
		v = splitList(s)
	case []int:
		var ns []int
		for _, f := range splitList(s) {
			n, perr := strconv.Atoi(f)
			if perr != nil {
				return zero, fmt.Errorf("%q is not a whole number", f)
			}
			ns = append(ns, n)
		}
		v = ns
	}
	if err != nil {
		return zero, err
	}
	return v.(T), nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (p *Parameter[T]) setString(s, source string) error {
	if len(p.choices) > 0 && !slices.Contains(p.choices, s) {
		return fmt.Errorf("want one of %s", strings.Join(p.choices, ", "))
	}
	v, err := parseParam[T](s)
	if err != nil {
		return fmt.Errorf("not a %s: %v", p.Type(), err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.value, p.set, p.source = v, true, source
	return nil
}

func (p *Parameter[T]) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.value, p.set, p.source = p.def, false, ""
}

// paramEnv is the environment variable of parameter name.
func paramEnv(name string) string {
	return "LNST_SET_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(name))
}

// setFlag is -lnst.set: repeatable NAME=VALUE.
type setFlag []string

func (s *setFlag) String() string { return strings.Join(*s, " ") }

func (s *setFlag) Set(v string) error {
	if _, _, ok := strings.Cut(v, "="); !ok {
		return fmt.Errorf("%q is not NAME=VALUE", v)
	}
	*s = append(*s, v)
	return nil
}

// applyParams sets every declared parameter from its environment variable
// and then from sets (the -lnst.set values, later ones winning). An
// unknown name in sets or a value its parameter cannot take is an error
// naming both. An LNST_SET_ variable naming no parameter of this binary is
// not an error: one environment serves every test binary of go test ./...
func applyParams(sets []string, getenv func(string) string) error {
	paramsMu.Lock()
	defer paramsMu.Unlock()
	for _, name := range sortedParamNames() {
		p := params[name]
		env := paramEnv(name)
		if v := getenv(env); v != "" {
			if err := p.setString(v, "environment variable "+env); err != nil {
				return fmt.Errorf("environment variable %s=%q: parameter %s: %v", env, v, name, err)
			}
		}
	}
	for _, kv := range sets {
		name, v, _ := strings.Cut(kv, "=")
		p, ok := params[name]
		if !ok {
			return fmt.Errorf("-lnst.set %s: unknown parameter %q (this test binary has: %s; -lnst.params lists them)",
				kv, name, strings.Join(sortedParamNames(), ", "))
		}
		if err := p.setString(v, "-lnst.set"); err != nil {
			return fmt.Errorf("-lnst.set %s: parameter %s: bad value %q: %v", kv, name, v, err)
		}
	}
	return nil
}

func sortedParamNames() []string {
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// printParams writes the table -lnst.params prints: every parameter with
// its type, default, environment variable and doc.
func printParams(w io.Writer) {
	paramsMu.Lock()
	defer paramsMu.Unlock()
	if len(params) == 0 {
		fmt.Fprintln(w, "this test binary declares no recipe parameters")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARAMETER\tTYPE\tDEFAULT\tENV\tDOC")
	for _, n := range sortedParamNames() {
		p := params[n]
		def := p.DefaultString()
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, p.Type(), def, paramEnv(n), p.Doc())
	}
	tw.Flush()
	fmt.Fprintln(w, "set with -lnst.set NAME=VALUE (repeatable) or the variable in ENV")
}

// paramsCheck is run by Main after the flags are parsed: it applies
// -lnst.set and LNST_SET_* and, under -lnst.params, prints the
// parameters. It returns the exit code Main must exit with (0 after
// -lnst.params, 2 on a bad parameter) and whether it must exit.
func paramsCheck(stdout, stderr io.Writer, getenv func(string) string) (code int, exit bool) {
	if err := applyParams(cfg.sets, getenv); err != nil {
		fmt.Fprintf(stderr, "lnsttest: %v\n", err)
		return 2, true
	}
	if cfg.params {
		w, closeW := paramsOut(stdout)
		printParams(w)
		closeW()
		return 0, true
	}
	return 0, false
}

// paramsOut is where -lnst.params writes its list: the terminal when
// there is one and stdout is not it, else stdout. go test ./recipes
// -args -lnst.params runs the binary in package list mode, where the go
// command drops the output of a binary that exits 0 unless -v is given;
// the terminal still shows the list. Without a terminal (CI), add -v.
func paramsOut(stdout io.Writer) (io.Writer, func()) {
	if f, ok := stdout.(*os.File); ok && isTerminal(f) {
		return stdout, func() {}
	}
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		return stdout, func() {}
	}
	return tty, func() { tty.Close() }
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// SetForTest sets the parameter to value, parsed and checked as
// -lnst.set would (a bad value fails t naming both), for the rest of t,
// and puts back the value it had when t ends: for unit tests of code that
// reads parameters. Tests that read the parameter must not run in
// parallel with t.
func (p *Parameter[T]) SetForTest(t testing.TB, value string) {
	t.Helper()
	p.mu.Lock()
	old, oldSet, oldSource := p.value, p.set, p.source
	p.mu.Unlock()
	if err := p.setString(value, "SetForTest"); err != nil {
		t.Fatalf("parameter %s: bad value %q: %v", p.name, value, err)
	}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.value, p.set, p.source = old, oldSet, oldSource
	})
}
