package vmimage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// debFile is one package as apt-get download --print-uris names it.
type debFile struct {
	Pkg    string
	File   string // file name, e.g. libc6_2.36-9+deb12u10_amd64.deb
	SHA256 string // hex
}

// command runs name args in dir and returns its stdout; the error names
// the command and ends with the tail of its stderr.
func command(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		line := name + " " + strings.Join(args, " ")
		if len(line) > 200 {
			line = line[:200] + "..."
		}
		return out, fmt.Errorf("%s: %w: %s", line, err, tail(stderr.String(), 800))
	}
	return out, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// kernelPackage resolves the meta package (linux-image-cloud-amd64) to the
// concrete linux-image-<release> package it depends on.
func kernelPackage(ctx context.Context, meta string) (pkg, release string, err error) {
	out, err := command(ctx, "", "apt-cache", "depends", meta)
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
	out, err := command(ctx, "", "apt-cache", args...)
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

// printURIs asks apt which file (and hash) each package's candidate is.
func printURIs(ctx context.Context, pkgs []string) (map[string]debFile, error) {
	out, err := command(ctx, "", "apt-get", append([]string{"download", "--print-uris"}, pkgs...)...)
	if err != nil {
		return nil, fmt.Errorf("resolve package versions: %w", err)
	}
	return parsePrintURIs(string(out), pkgs)
}

// parsePrintURIs parses lines "'URI' FILE SIZE SHA256:HEX".
func parsePrintURIs(out string, pkgs []string) (map[string]debFile, error) {
	debs := map[string]debFile{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		pkg, _, _ := strings.Cut(f[1], "_")
		debs[pkg] = debFile{Pkg: pkg, File: f[1], SHA256: strings.TrimPrefix(f[3], "SHA256:")}
	}
	for _, p := range pkgs {
		if _, ok := debs[p]; !ok {
			return nil, fmt.Errorf("resolve package versions: apt-get download --print-uris gave no file for package %s", p)
		}
	}
	return debs, nil
}

// fileSHA256 returns the hex sha256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// download fetches into dir the debs not already there with the right
// hash; the caller holds the cache lock.
func download(ctx context.Context, dir string, debs []debFile, log io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var missing []string
	for _, d := range debs {
		if sum, err := fileSHA256(filepath.Join(dir, d.File)); err == nil && strings.EqualFold(sum, d.SHA256) {
			continue
		}
		os.Remove(filepath.Join(dir, d.File))
		missing = append(missing, d.Pkg)
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Fprintf(log, "vmimage: fetching %d packages\n", len(missing))
	if _, err := command(ctx, dir, "apt-get", append([]string{"download", "-q"}, missing...)...); err != nil {
		return fmt.Errorf("download packages: %w", err)
	}
	for _, d := range debs {
		sum, err := fileSHA256(filepath.Join(dir, d.File))
		if err != nil {
			return fmt.Errorf("download package %s: %w", d.Pkg, err)
		}
		if !strings.EqualFold(sum, d.SHA256) {
			os.Remove(filepath.Join(dir, d.File))
			return fmt.Errorf("download package %s: %s has sha256 %s, apt expects %s", d.Pkg, d.File, sum, d.SHA256)
		}
	}
	return nil
}

// unpack extracts each deb (dpkg-deb -x) into dest(deb), a few at a time.
func unpack(ctx context.Context, debDir string, debs []debFile, dest func(debFile) string) error {
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
				_, err = command(ctx, "", "dpkg-deb", "-x", filepath.Join(debDir, d.File), dir)
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
	out, err := command(ctx, "", path, "--list-full")
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
