package vmimage

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/lnst-go/lnst/internal/debpkg"
)

// kernelPackage resolves the meta package (linux-image-cloud-amd64) to the
// concrete linux-image-<release> package it depends on.
func kernelPackage(ctx context.Context, meta string) (pkg, release string, err error) {
	out, err := debpkg.Command(ctx, "", "apt-cache", "depends", meta)
	if err != nil {
		return "", "", fmt.Errorf("resolve kernel package %s: %w", meta, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], strings.TrimPrefix(f[1], "linux-image-"), nil
		}
	}
	return "", "", fmt.Errorf("resolve kernel package %s: no linux-image-* dependency in apt-cache depends output (run apt-get update?)", meta)
}

// libraryPackages returns the library packages the tools depend on,
// recursively: names starting with "lib" (plus zlib1g), no virtual
// packages, no Perl.
func libraryPackages(ctx context.Context, tools []string) ([]string, error) {
	args := append([]string{"depends", "--recurse", "--no-recommends", "--no-suggests",
		"--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"}, tools...)
	out, err := debpkg.Command(ctx, "", "apt-cache", args...)
	if err != nil {
		return nil, fmt.Errorf("list library packages: %w", err)
	}
	return filterLibraries(string(out)), nil
}

// skipLibraries are alternatives of other library packages that would
// overwrite their files: libelogind0 ships its own libsystemd.so.0.
var skipLibraries = map[string]bool{"libelogind0": true}

// filterLibraries picks the library packages from apt-cache depends
// --recurse output: its package lines are the unindented ones.
func filterLibraries(out string) []string {
	seen := map[string]bool{}
	var libs []string
	for _, l := range strings.Split(out, "\n") {
		if l == "" || l[0] == ' ' || l[0] == '<' || strings.Contains(l, ":") {
			continue
		}
		name := strings.TrimSpace(l)
		lib := strings.HasPrefix(name, "lib") || name == "zlib1g"
		perl := strings.HasPrefix(name, "libperl") || strings.HasSuffix(name, "-perl")
		if lib && !perl && !skipLibraries[name] && !seen[name] {
			seen[name] = true
			libs = append(libs, name)
		}
	}
	sort.Strings(libs)
	return libs
}

// unpack extracts each deb (dpkg-deb -x) into dest(deb), a few at a time.
func unpack(ctx context.Context, debDir string, debs []debpkg.File, dest func(debpkg.File) string) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 8)
	)
	for _, d := range debs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			dir := dest(d)
			err := os.MkdirAll(dir, 0o755)
			if err == nil {
				_, err = debpkg.Command(ctx, "", "dpkg-deb", "-x", filepath.Join(debDir, d.File), dir)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("unpack package %s: %w", d.Pkg, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// busyboxApplets lists the applets of the busybox binary at path, as
// paths relative to / ("usr/bin/awk", "sbin/modprobe").
func busyboxApplets(ctx context.Context, path string) ([]string, error) {
	out, err := debpkg.Command(ctx, "", path, "--list-full")
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	var apps []string
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); l != "" {
			apps = append(apps, l)
		}
	}
	return apps, nil
}
