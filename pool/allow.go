package pool

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Destructive kinds: what a recipe may do to a machine beyond what its
// agent undoes, and what a pool entry's allow: lets recipes do there.
const (
	// AllowReboot lets recipes reboot the machine (Host.Reboot).
	AllowReboot = "reboot"
	// AllowKernel lets recipes install and boot another kernel
	// (Host.InstallKernel, and the reboots it takes).
	AllowKernel = "kernel"
	// AllowReset lets recipes reset the machine out of band with its
	// power command (Host.HardReset).
	AllowReset = "reset"
)

// DestructiveKinds are the kinds allow: takes, in the order the pool file
// documents them.
var DestructiveKinds = []string{AllowReboot, AllowKernel, AllowReset}

// CheckDestructive reports a kind that is not one of DestructiveKinds.
func CheckDestructive(kind string) error {
	if !slices.Contains(DestructiveKinds, kind) {
		return fmt.Errorf("unknown destructive kind %q (known: %s)", kind, strings.Join(DestructiveKinds, ", "))
	}
	return nil
}

// Allows reports whether the pool entry of h lets recipes do kind to it
// (allow: [reboot, kernel, reset]).
func (h *Host) Allows(kind string) bool { return slices.Contains(h.Allow, kind) }

// Where names the pool entry of h for messages: "pool host m1
// (lab.yaml:3)", a provisioner's machine by its provisioner's entry.
func (h *Host) Where(file string) string {
	if h.Line > 0 {
		return fmt.Sprintf("pool host %s (%s:%d)", h.Name, file, h.Line)
	}
	return "pool host " + h.Name + " of " + file
}

// allow parses an allow field: a list of DestructiveKinds, each once.
func (ps *poolParser) allow(f field, what string) ([]string, error) {
	v := resolve(f.value)
	if isNull(v) {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, ps.errorf(v.Line, "%s: allow: want a list of %s, not %s", what, strings.Join(DestructiveKinds, ", "), kindName(v))
	}
	var out []string
	lines := map[string]int{}
	for _, n := range v.Content {
		n = resolve(n)
		if n.Kind != yaml.ScalarNode || isNull(n) {
			return nil, ps.errorf(n.Line, "%s: allow: want one of %s, not %s", what, strings.Join(DestructiveKinds, ", "), kindName(n))
		}
		if err := CheckDestructive(n.Value); err != nil {
			return nil, ps.errorf(n.Line, "%s: allow: %v", what, err)
		}
		if l, dup := lines[n.Value]; dup {
			return nil, ps.errorf(n.Line, "%s: allow: %q given twice (first at line %d)", what, n.Value, l)
		}
		lines[n.Value] = n.Line
		out = append(out, n.Value)
	}
	return out, nil
}

// checkAllow checks an Allow list built in Go, as allow does a parsed one.
func checkAllow(allow []string) error {
	seen := map[string]bool{}
	for _, k := range allow {
		if err := CheckDestructive(k); err != nil {
			return fmt.Errorf("allow: %w", err)
		}
		if seen[k] {
			return fmt.Errorf("allow: %q given twice", k)
		}
		seen[k] = true
	}
	return nil
}
