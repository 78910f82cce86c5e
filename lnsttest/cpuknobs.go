package lnsttest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/cpulist"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Host CPU knobs, as LNST's DisableIdleStates and DisableTurboboost
// mixins set them before a measurement: each a journaled sysfs write,
// set back when the test ends, and recorded in the test's results (name
// "cpu knobs on <host>") so that a measurement says how the host was.

const cpuSys = "/sys/devices/system/cpu"

// trySysfs reads a sysfs value; ok is false when the host has no such
// file.
func (h *Host) trySysfs(t testing.TB, path string) (string, bool) {
	t.Helper()
	r, err := h.client.ReadValue(rpcCtx(t), &pb.ValueRef{Host: h.id, Kind: "sysfs", Key: path})
	if status.Code(err) == codes.Aborted && strings.Contains(err.Error(), "no such file") {
		return "", false
	}
	if err != nil {
		t.Fatalf("%s: read sysfs %s: %v", h.name, path, err)
	}
	return r.Value, true
}

// cpus lists the host's online CPUs.
func (h *Host) cpus(t testing.TB) []int {
	t.Helper()
	v, ok := h.trySysfs(t, cpuSys+"/online")
	if !ok {
		n := h.NumCPU(t)
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out, err := cpulist.Parse(v)
	if err != nil {
		t.Fatalf("%s: online CPUs: %v", h.name, err)
	}
	return out
}

// DisableIdleStates disables every cpuidle state deeper than the first
// (state1 and on: C1E, C6, ...; state0 is polling) of every online CPU,
// so that a CPU wakes fast, and enables them again when the test ends.
// A host without cpuidle states (a VM here) skips the test, naming it.
// It returns how many states it disabled.
func (h *Host) DisableIdleStates(t testing.TB) int {
	t.Helper()
	n := 0
	for _, c := range h.cpus(t) {
		for s := 1; ; s++ {
			p := fmt.Sprintf("%s/cpu%d/cpuidle/state%d/disable", cpuSys, c, s)
			v, ok := h.trySysfs(t, p)
			if !ok {
				break
			}
			if v != "1" {
				h.WriteSysfs(t, p, "1")
			}
			n++
		}
	}
	if n == 0 {
		t.Skipf("%s: no cpuidle state beyond state0 (%s/cpu*/cpuidle): the host's idle states cannot be disabled", h.name, cpuSys)
	}
	Record(t, "cpu knobs on "+h.name, fmt.Sprintf("%d cpuidle states disabled", n))
	return n
}

// DisableTurbo turns turbo boost off (intel_pstate/no_turbo = 1, or
// cpufreq/boost = 0 with other drivers) and back on when the test ends.
// A host with neither skips the test, naming them.
func (h *Host) DisableTurbo(t testing.TB) {
	t.Helper()
	if _, ok := h.trySysfs(t, cpuSys+"/intel_pstate/no_turbo"); ok {
		h.WriteSysfs(t, cpuSys+"/intel_pstate/no_turbo", "1")
		Record(t, "cpu knobs on "+h.name, "intel_pstate no_turbo=1")
		return
	}
	if _, ok := h.trySysfs(t, cpuSys+"/cpufreq/boost"); ok {
		h.WriteSysfs(t, cpuSys+"/cpufreq/boost", "0")
		Record(t, "cpu knobs on "+h.name, "cpufreq boost=0")
		return
	}
	t.Skipf("%s: neither %s/intel_pstate/no_turbo nor %s/cpufreq/boost: turbo cannot be turned off here", h.name, cpuSys, cpuSys)
}

// SetCPUGovernor sets the cpufreq governor ("performance", "powersave",
// ...) of every online CPU and sets the old ones back when the test
// ends. A host without cpufreq skips the test; a governor a CPU does not
// offer fails it, naming those it offers.
func (h *Host) SetCPUGovernor(t testing.TB, governor string) {
	t.Helper()
	cpus := h.cpus(t)
	for _, c := range cpus {
		dir := fmt.Sprintf("%s/cpu%d/cpufreq", cpuSys, c)
		avail, ok := h.trySysfs(t, dir+"/scaling_available_governors")
		if !ok {
			t.Skipf("%s: CPU %d has no cpufreq (%s): its governor cannot be set", h.name, c, dir)
		}
		if !slices.Contains(strings.Fields(avail), governor) {
			t.Fatalf("%s: CPU %d has no cpufreq governor %q (it offers %s)", h.name, c, governor, avail)
		}
		h.WriteSysfs(t, dir+"/scaling_governor", governor)
	}
	Record(t, "cpu knobs on "+h.name, fmt.Sprintf("cpufreq governor %s on %d CPUs", governor, len(cpus)))
}
