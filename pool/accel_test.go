package pool

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lnst-go/lnst/pool/vmimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countProbe counts the calls of probe.
func countProbe(n *atomic.Int32, probe func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		n.Add(1)
		return probe(ctx)
	}
}

// TestAccelAutoHere: auto runs the real probe once, caches its verdict
// with the stamp, logs its choice once however often it is asked, and
// falls back to TCG with the probe's reason when KVM does not work (on
// the development machine: QEMU aborts on "failed to set MSR 0x10a").
func TestAccelAutoHere(t *testing.T) {
	var n atomic.Int32
	var log bytes.Buffer
	cache := filepath.Join(t.TempDir(), "kvm-probe.json")
	c := &AccelChooser{Probe: countProbe(&n, ProbeKVM), CacheFile: cache, Log: &log}
	start := time.Now()
	a, err := c.Choose(context.Background(), AccelAuto)
	require.NoError(t, err)
	t.Logf("auto chose %s in %v: %s", a, time.Since(start), strings.TrimSpace(log.String()))
	probeErr := ProbeKVM(context.Background())
	if probeErr != nil {
		assert.Equal(t, AccelTCG, a)
		assert.Contains(t, log.String(), "using TCG")
		assert.Contains(t, c.Reason(), "KVM")
	} else {
		assert.Equal(t, AccelKVM, a)
	}
	for range 3 {
		b, err := c.Choose(context.Background(), AccelAuto)
		require.NoError(t, err)
		assert.Equal(t, a, b)
	}
	assert.Equal(t, int32(1), n.Load(), "probes")
	assert.Equal(t, 1, strings.Count(log.String(), "VM lab:"), "log lines: %q", log.String())
	b, err := os.ReadFile(cache)
	require.NoError(t, err, "the verdict is cached")
	assert.Contains(t, string(b), accelStamp())

	// Another run on this machine takes the cached verdict.
	c2 := &AccelChooser{Probe: countProbe(&n, ProbeKVM), CacheFile: cache, Log: &log}
	b2, err := c2.Choose(context.Background(), AccelAuto)
	require.NoError(t, err)
	assert.Equal(t, a, b2)
	assert.Equal(t, int32(1), n.Load(), "probes after a second run")
	assert.Contains(t, log.String(), "verdict of")

	// After a kernel or QEMU upgrade, the probe runs again.
	c3 := &AccelChooser{Probe: countProbe(&n, ProbeKVM), CacheFile: cache, Stamp: func() string { return "kernel 9.9; QEMU 99" }}
	_, err = c3.Choose(context.Background(), AccelAuto)
	require.NoError(t, err)
	assert.Equal(t, int32(2), n.Load(), "probes after an upgrade")
}

// TestAccelFakeProbeOK: with a probe that succeeds auto picks KVM, and
// the VM lab's guests get -accel kvm -cpu host and the vCPUs asked.
func TestAccelFakeProbeOK(t *testing.T) {
	var log bytes.Buffer
	c := &AccelChooser{Probe: func(context.Context) error { return nil }, CacheFile: "-", Stamp: func() string { return "s" }, Log: &log}
	a, err := c.Choose(context.Background(), AccelAuto)
	require.NoError(t, err)
	assert.Equal(t, AccelKVM, a)
	assert.Contains(t, log.String(), "using KVM")
	a, err = c.Choose(context.Background(), AccelKVM)
	require.NoError(t, err)
	assert.Equal(t, AccelKVM, a)

	args := strings.Join(qemuArgs(&vmimage.Image{Kernel: "k", Initrd: "i"}, a, 256, 4), " ")
	assert.Contains(t, args, "-accel kvm -cpu host -m 256 -smp 4")
	args = strings.Join(qemuArgs(&vmimage.Image{Kernel: "k", Initrd: "i"}, AccelTCG, 256, 1), " ")
	assert.Contains(t, args, "-accel tcg,tb-size=32 -cpu max", "TCG with its translation cache capped (an idle guest's RSS)")
}

// TestAccelFakeProbeFails: a failing probe makes auto fall back to TCG
// with the probe's reason, and kvm fail with it; tcg never probes.
func TestAccelFakeProbeFails(t *testing.T) {
	var n atomic.Int32
	var log bytes.Buffer
	probe := countProbe(&n, func(context.Context) error { return errors.New("KVM: guest did not reach hlt in 2s") })
	c := &AccelChooser{Probe: probe, CacheFile: "-", Stamp: func() string { return "s" }, Log: &log}
	a, err := c.Choose(context.Background(), AccelTCG)
	require.NoError(t, err)
	assert.Equal(t, AccelTCG, a)
	assert.Zero(t, n.Load(), "tcg probes")
	a, err = c.Choose(context.Background(), AccelAuto)
	require.NoError(t, err)
	assert.Equal(t, AccelTCG, a)
	assert.Equal(t, "VM lab: KVM: guest did not reach hlt in 2s (probed now); using TCG\n", log.String())
	_, err = c.Choose(context.Background(), AccelKVM)
	assert.ErrorContains(t, err, "KVM does not work here: KVM: guest did not reach hlt in 2s")
}

// TestAccelKVMHangs: where the guest hangs, kvm fails with the reason
// within the probe's bound: the real vCPU runs a loop that never reaches
// its hlt (the bounded KVM_RUN is interrupted), and a probe that ignores
// its deadline is abandoned at AccelProbeBound.
func TestAccelKVMHangs(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skipf("no /dev/kvm for the hanging vCPU: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("/dev/kvm is root's here: run as root")
	}
	loop := []byte{0xeb, 0xfe} // jmp $
	c := &AccelChooser{Probe: func(ctx context.Context) error { return probeKVMDevice(ctx, loop, kvmHltBound) }, CacheFile: "-", Stamp: func() string { return "s" }}
	start := time.Now()
	_, err := c.Choose(context.Background(), AccelKVM)
	t.Logf("kvm failed in %v: %v", time.Since(start), err)
	assert.ErrorContains(t, err, "KVM: guest did not reach hlt in 2s")

	// The real probe, forced: on this machine QEMU aborts (or hangs).
	if ProbeKVMDevice(context.Background()) == nil {
		start = time.Now()
		_, err = (&AccelChooser{CacheFile: "-"}).Choose(context.Background(), AccelKVM)
		t.Logf("-lnst.vm.accel=kvm with the real probe: %v after %v", err, time.Since(start))
		if ProbeKVMQEMU(context.Background()) != nil {
			assert.ErrorContains(t, err, "KVM does not work here: KVM: QEMU")
			assert.NotContains(t, err.Error(), "\n", "one line")
		}
	}

	if testing.Short() {
		t.Log("-short: not waiting out a probe that ignores its deadline")
		return
	}
	block := make(chan struct{})
	defer close(block)
	c = &AccelChooser{Probe: func(context.Context) error { <-block; return nil }, CacheFile: "-", Stamp: func() string { return "s" }}
	start = time.Now()
	_, err = c.Choose(context.Background(), AccelKVM)
	t.Logf("a deaf probe failed in %v: %v", time.Since(start), err)
	assert.ErrorContains(t, err, "the probe did not finish in 8s")
}
