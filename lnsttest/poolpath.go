package lnsttest

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/lnst-go/lnst/pool"
)

// poolPath resolves the -lnst.pool path. go test runs a test binary in its
// package's directory (recipes/), not where go test was started, and sets
// PWD to that directory too, so neither tells where the user was: a
// relative path is resolved against the module root instead, the nearest
// directory above the working directory holding a go.mod, which is where
// README's `go test ./recipes/... -lnst.pool=lab.yaml` runs. A test binary
// run outside any module resolves it against its working directory. how
// says what the path was resolved against, "" for an absolute path.
func poolPath(path, wd string) (abs, how string) {
	if filepath.IsAbs(path) {
		return path, ""
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if st, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !st.IsDir() {
			return filepath.Join(dir, path), "the module root " + dir + ", the directory of the go.mod above the test's package directory, not go test's working directory"
		}
		if filepath.Dir(dir) == dir {
			return filepath.Join(wd, path), "the working directory " + wd + ", which has no go.mod above it"
		}
	}
}

// loadPool loads the pool file of -lnst.pool, a relative path resolved as
// poolPath says; an error names the absolute path it tried, and for a
// relative one what it was resolved against.
func loadPool(path string) (*pool.Pool, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("%s: find the working directory to resolve it against: %w", path, err)
	}
	abs, how := poolPath(path, wd)
	p, err := pool.Load(abs)
	if err != nil && how != "" {
		return nil, fmt.Errorf("%w (the relative path %q is resolved against %s)", err, path, how)
	}
	return p, err
}
