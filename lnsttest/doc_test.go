package lnsttest

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/agent"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocFlags: doc.go lists every registered -lnst.* flag, with its
// environment variable, and no other.
func TestDocFlags(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	listed := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^//\t-(lnst\.\S+)\s+\[(\S+)\]`).FindAllStringSubmatch(string(src), -1) {
		assert.NotContains(t, listed, m[1], "doc.go lists -%s twice", m[1])
		listed[m[1]] = m[2]
	}
	assert.Equal(t, lnstFlags, listed, "doc.go's flag list (- registered, + listed)")

	// README's Flags table has a row for each, with its variable (and
	// the flags of modules/perf, which this binary does not register).
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `-(lnst\\.[^`]+)` \\| `([^`]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = strings.Replace(m[2], "<NAME>", "*", 1)
	}
	for name, env := range lnstFlags {
		assert.Equal(t, env, rows[name], "README's Flags table row of -%s", name)
	}
}

// TestKernelDocNames: Kernel's doc comment lists every name Kernel
// accepts (the agent's KernelFeatures), and no other.
func TestKernelDocNames(t *testing.T) {
	src, err := os.ReadFile("require.go")
	require.NoError(t, err)
	s := string(src)
	end := strings.Index(s, "\nfunc Kernel(")
	require.Positive(t, end, "require.go has func Kernel")
	start := strings.LastIndex(s[:end], "\n\n")
	var names []string
	for _, l := range strings.Split(s[start:end], "\n") {
		l, ok := strings.CutPrefix(l, "//\t")
		if !ok {
			continue
		}
		if _, rest, ok := strings.Cut(l, ":"); ok {
			l = rest
		}
		for _, n := range strings.Split(l, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	assert.Equal(t, agent.KernelFeatures(), names, "the names in Kernel's doc comment (- agent.KernelFeatures, + listed)")
}
