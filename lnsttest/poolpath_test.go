package lnsttest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoadPoolRelative follows README's `go test ./recipes/...
// -lnst.pool=lab.yaml`: the test binary runs in the package's directory,
// and lab.yaml is in the module root.
func TestLoadPoolRelative(t *testing.T) {
	root := t.TempDir()
	pkg := filepath.Join(root, "recipes")
	require.NoError(t, os.MkdirAll(pkg, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/lab\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "lab.yaml"), []byte("hosts:\n  - {name: m1, agent: \"127.0.0.1:7000\", insecure: true}\n"), 0o644))
	t.Chdir(pkg)

	p, err := loadPool("lab.yaml")
	require.NoError(t, err, "lab.yaml in the module root, run from its recipes directory")
	assert.Equal(t, filepath.Join(root, "lab.yaml"), p.Path)
	require.Len(t, p.Hosts, 1)

	_, err = loadPool("nosuch.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(root, "nosuch.yaml"), "the error names the absolute path tried")
	assert.Contains(t, err.Error(), `the relative path "nosuch.yaml" is resolved against the module root `+root)

	_, err = loadPool(filepath.Join(pkg, "lab.yaml"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(pkg, "lab.yaml"))
	assert.NotContains(t, err.Error(), "resolved against", "an absolute path is taken as it is")

	// Outside any module: the working directory.
	alone := t.TempDir()
	t.Chdir(alone)
	abs, how := poolPath("lab.yaml", alone)
	assert.Equal(t, filepath.Join(alone, "lab.yaml"), abs)
	assert.Contains(t, how, "the working directory "+alone)
}
