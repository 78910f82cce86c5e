package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/pool/vmimage"
)

// libvirtBenchEnv names the libvirt URI BenchmarkLibvirtTwoHosts
// reserves its guests on ("qemu:///system"); unset, it skips. Its accel
// is LNST_LIBVIRT_ACCEL ("" is tcg, the VM lab's here).
const libvirtBenchEnv = "LNST_LIBVIRT_URI"

// libvirtBenchRounds is how many rounds of each side
// BenchmarkLibvirtTwoHosts runs per iteration, interleaved: a round boots
// four TCG guests, minutes on two cores.
const libvirtBenchRounds = 1

// BenchmarkLibvirtTwoHosts compares, round by round after one untimed
// warm-up round of each side (which also uploads the kernel to the storage
// pool):
//
//   - libvirt2: two machines reserved together from a LibvirtProvisioner
//     (two test NICs' networks and the management network made, each
//     guest's initramfs written and uploaded, both guests booted until
//     their agents answer over TLS), then both released (domains,
//     volumes and networks gone).
//   - vmlab2: the VM lab's two guests of benchTopo: Lab.Acquire,
//     Lab.WaitUsable, Lab.Destroy.
//
// It prints the median per-round ratio with its spread,
//
//	RATIO libvirt2/vmlab2 <x> (min, max, n)
//
// and each libvirt guest's QEMU resident set once booted and idle
// (libvirt_idle_rss_mib <domain> <MiB>).
func BenchmarkLibvirtTwoHosts(b *testing.B) {
	uri := os.Getenv(libvirtBenchEnv)
	if uri == "" {
		b.Skipf("%s is not set: it names the libvirt hypervisor to boot guests on (qemu:///system)", libvirtBenchEnv)
	}
	img := vmImage(b)
	lab, err := StartVMLab(LabOptions{AgentLogLevel: "warn"}, VMOptions{Image: img})
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Close()
	accel := os.Getenv("LNST_LIBVIRT_ACCEL")
	if accel == "" {
		accel = "tcg"
	}
	prov := NewLibvirtProvisioner(ExecSpec{Name: "bench", Libvirt: &LibvirtSpec{URI: uri, Max: 2, Accel: accel},
		Ifaces: []Iface{{Name: "eth0", Net: "n1"}}}, testWriter{b})
	prov.image = func(context.Context) (*vmimage.Image, error) { return img, nil }
	ctx := context.Background()

	var mem []guestMem
	libvirtOnce := func(measure bool) time.Duration {
		start := time.Now()
		ms := make([]*Machine, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range ms {
			wg.Go(func() { ms[i], errs[i] = prov.Reserve(ctx, Request{}) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				for _, m := range ms {
					if m != nil {
						prov.Release(ctx, m)
					}
				}
				b.Fatalf("reserve %d: %v", i, err)
			}
		}
		if measure {
			time.Sleep(vmIdleSettle)
			mem = libvirtQemuMemory(libvirtPrefix + prov.run.ID + "-bench-")
		}
		up := time.Since(start)
		// Released together, as the scheduler releases a run's machines
		// (and as the VM lab destroys its guests).
		for i, m := range ms {
			wg.Go(func() { errs[i] = prov.Release(ctx, m) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		b.Logf("libvirt2: reserved in %.1fs, released in %.1fs", up.Seconds(), (time.Since(start) - up).Seconds())
		return time.Since(start)
	}
	vmlabOnce := func() time.Duration {
		start := time.Now()
		in, err := lab.Acquire(ctx, benchTopo)
		if err != nil {
			b.Fatal(err)
		}
		if err := lab.WaitUsable(ctx, in); err != nil {
			b.Fatal(err)
		}
		up := time.Since(start)
		if err := lab.Destroy(in); err != nil {
			b.Fatal(err)
		}
		b.Logf("vmlab2: up in %.1fs, destroyed in %.1fs", up.Seconds(), (time.Since(start) - up).Seconds())
		return time.Since(start)
	}
	libvirtOnce(true)
	vmlabOnce()
	var lv, vm []time.Duration
	round := 0
	for b.Loop() {
		for range libvirtBenchRounds {
			if round%2 == 0 {
				lv = append(lv, libvirtOnce(false))
				vm = append(vm, vmlabOnce())
			} else {
				vm = append(vm, vmlabOnce())
				lv = append(lv, libvirtOnce(false))
			}
			round++
		}
	}
	for name, d := range map[string][]time.Duration{"libvirt2": lv, "vmlab2": vm} {
		med, _, _ := benchratio.Durations(d)
		b.ReportMetric(med.Seconds(), name+"-s")
	}
	for _, m := range mem {
		fmt.Printf("libvirt_idle_rss_mib %s %.0f\n", m.guest, float64(m.rss)/(1<<20))
	}
	if len(mem) != 2 {
		b.Errorf("memory read of %d QEMU processes, want 2", len(mem))
	}
	benchratio.Print("libvirt2/vmlab2", benchratio.Ratios(lv, vm))
}

// libvirtQemuMemory reads the memory of each QEMU process of a libvirt
// domain whose name starts with prefix (on this machine).
func libvirtQemuMemory(prefix string) []guestMem {
	return qemuProcessMemory(func(args []string) (string, bool) {
		name := libvirtGuestName(args)
		return name, strings.HasPrefix(name, prefix)
	})
}

// libvirtGuestName is the domain name in the arguments of a libvirt QEMU
// ("guest=lnst-...,debug-threads=on"), "?" if none.
func libvirtGuestName(args []string) string {
	for _, arg := range args {
		if name, ok := strings.CutPrefix(arg, "guest="); ok {
			name, _, _ = strings.Cut(name, ",")
			return name
		}
	}
	return "?"
}
