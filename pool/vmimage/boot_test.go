package vmimage

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/cpio"
)

// runScript is /lnst/run of TestBuildAndBoot: module loading by name and
// by the kernel's autoload, the Debian tools, and reaping of orphans.
const runScript = `#!/bin/sh
set -e
modprobe bonding
ip link add b0 type bond
ip link add d0 type dummy
ip link add v0 link d0 type vlan id 5
ip link add vx0 type vxlan id 42 dstport 4789 local 127.0.0.1
ip link add t0 type team 2>/dev/null || echo "team via ip link failed"
ping -c1 127.0.0.1
iperf3 --version
ethtool -i d0
tcpdump --version
teamd --version
ip -br link
cat /proc/sys/kernel/modprobe
lsmod | sort
(sleep 0.2 &)
sleep 1
if grep -q '^State:.*Z' /proc/[0-9]*/status; then echo ZOMBIE; fi
echo LNST-OK
exit 3
`

func TestBuildAndBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("requires a full build and qemu boot; skipped under -short")
	}
	if err := Check(); err != nil {
		t.Skipf("requires qemu-system-x86_64, apt-get and dpkg-deb: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cache := os.Getenv("LNST_VMIMAGE_TEST_CACHE") // to reuse downloads while developing
	if cache == "" {
		cache = filepath.Join(t.TempDir(), "cache")
	}
	var log bytes.Buffer
	start := time.Now()
	img, err := Build(ctx, Options{Cache: cache, Log: io.MultiWriter(&log, testWriter{t})})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build: %v", time.Since(start))
	for _, p := range []string{img.Kernel, img.Initrd} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.HasPrefix(img.Release, "6.") {
		t.Errorf("release %q", img.Release)
	}

	log.Reset()
	start = time.Now()
	img2, err := Build(ctx, Options{Cache: cache, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cached build: %v", time.Since(start))
	if *img2 != *img || !strings.Contains(log.String(), "vmimage: cached") {
		t.Errorf("second Build was not a cache hit: %+v, log:\n%s", img2, log.String())
	}

	initrd := filepath.Join(t.TempDir(), "initrd")
	if err := copyFile(img.Initrd, initrd); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(initrd, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := cpio.Write(f, []cpio.File{{Path: "/lnst/run", Mode: 0o755, Data: []byte(runScript)}}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out, dur := boot(t, img.Kernel, initrd)
	t.Logf("boot to poweroff: %v\n%s", dur, out)
	for _, want := range []string{"lnst-vm: init done", "LNST-OK", "lnst-vm: agent exited 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q", want)
		}
	}
	for _, bad := range []string{"ZOMBIE", "team via ip link failed", "not found"} {
		if strings.Contains(out, bad) {
			t.Errorf("console output has %q", bad)
		}
	}
}

// TestBareBoot boots the base image alone: boot, init, poweroff.
func TestBareBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("requires a full build and qemu boot; skipped under -short")
	}
	if err := Check(); err != nil {
		t.Skipf("requires qemu-system-x86_64, apt-get and dpkg-deb: %v", err)
	}
	cache := os.Getenv("LNST_VMIMAGE_TEST_CACHE")
	if cache == "" {
		cache = filepath.Join(t.TempDir(), "cache")
	}
	img, err := Build(context.Background(), Options{Cache: cache, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	out, dur := boot(t, img.Kernel, img.Initrd)
	t.Logf("bare boot to poweroff: %v\n%s", dur, out)
	if !strings.Contains(out, "lnst-vm: init done") || strings.Contains(out, "agent exited") {
		t.Errorf("unexpected console output")
	}
}

// boot runs qemu under TCG until the guest powers off.
func boot(t *testing.T, kernel, initrd string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-m", "512",
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	dur := time.Since(start)
	if err != nil {
		t.Fatalf("qemu: %v after %v\n%s", err, dur, out)
	}
	return string(out), dur
}

// testWriter writes progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
