// Package debpkg fetches Debian packages with apt: which file a package's
// candidate version is (Candidates), downloading it into a directory with
// the hash apt expects (Download), under a lock (Lock) shared by the
// callers of one cache. The VM image builder and kernel-package handling
// both use it.
package debpkg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// File is one package as apt-get download --print-uris names it.
type File struct {
	Pkg    string
	File   string // file name, e.g. libc6_2.36-9+deb12u10_amd64.deb
	SHA256 string // hex
}

// Command runs name args in dir with the C locale and a noninteractive
// debconf frontend, and returns its stdout; the error names
// the command and ends with the tail of its stderr.
func Command(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
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

// Candidates asks apt which file (and hash) each package's candidate is.
func Candidates(ctx context.Context, pkgs []string) (map[string]File, error) {
	out, err := Command(ctx, "", "apt-get", append([]string{"download", "--print-uris"}, pkgs...)...)
	if err != nil {
		return nil, fmt.Errorf("resolve package versions: %w", err)
	}
	return parseCandidates(string(out), pkgs)
}

// parseCandidates parses lines "'URI' FILE SIZE SHA256:HEX".
func parseCandidates(out string, pkgs []string) (map[string]File, error) {
	debs := map[string]File{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		pkg, _, _ := strings.Cut(f[1], "_")
		debs[pkg] = File{Pkg: pkg, File: f[1], SHA256: strings.TrimPrefix(f[3], "SHA256:")}
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

// Download fetches into dir the debs not already there with the right
// hash; the caller holds the cache lock.
func Download(ctx context.Context, dir string, debs []File, log io.Writer) error {
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
	fmt.Fprintf(log, "fetching %d packages\n", len(missing))
	if _, err := Command(ctx, dir, "apt-get", append([]string{"download", "-q"}, missing...)...); err != nil {
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

// Lock takes an exclusive flock on path, waiting for ctx; the returned
// function releases it.
func Lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cache lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
