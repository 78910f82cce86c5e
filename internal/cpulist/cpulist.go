// Package cpulist reads and writes the kernel's CPU lists ("0-3,8", as in
// /sys/devices/system/cpu/online and /proc/irq/N/smp_affinity_list) and
// CPU masks ("ff,00000001", as in rps_cpus and xps_cpus).
package cpulist

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// maxCPU bounds a CPU number, so that "0-4000000000" is refused rather
// than allocated.
const maxCPU = 1 << 16

// Parse reads a CPU list: comma-separated CPUs and ranges ("0-3,8",
// "1"); "" is no CPU. It returns the CPUs sorted, each once.
func Parse(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := cpuNum(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = cpuNum(hi); err != nil {
				return nil, fmt.Errorf("CPU list %q: %w", s, err)
			}
			if b < a {
				return nil, fmt.Errorf("CPU list %q: range %s runs backwards", s, part)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

func cpuNum(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%q is not a CPU number", s)
	}
	if n >= maxCPU {
		return 0, fmt.Errorf("CPU %d is above %d", n, maxCPU-1)
	}
	return n, nil
}

// Format writes CPUs as a list with ranges ("0-3,8"); "" for none.
func Format(cpus []int) string {
	c := slices.Clone(cpus)
	slices.Sort(c)
	c = slices.Compact(c)
	var parts []string
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", c[i], c[j]))
		} else {
			parts = append(parts, strconv.Itoa(c[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// Mask writes CPUs as the kernel's hex mask: 32-bit words, most
// significant first, comma-separated ("1", "ff", "1,00000000"); "0" for
// none.
func Mask(cpus []int) string {
	if len(cpus) == 0 {
		return "0"
	}
	words := make([]uint32, slices.Max(cpus)/32+1)
	for _, c := range cpus {
		words[c/32] |= 1 << (c % 32)
	}
	var b strings.Builder
	for i := len(words) - 1; i >= 0; i-- {
		if i == len(words)-1 {
			fmt.Fprintf(&b, "%x", words[i])
		} else {
			fmt.Fprintf(&b, ",%08x", words[i])
		}
	}
	return b.String()
}

// ParseMask reads a hex CPU mask as Mask writes it (and as the kernel
// writes it, with leading zero words).
func ParseMask(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	words := strings.Split(s, ",")
	var cpus []int
	for i, w := range words {
		v, err := strconv.ParseUint(w, 16, 32)
		if err != nil || w == "" {
			return nil, fmt.Errorf("CPU mask %q: word %q is not 32-bit hex", s, w)
		}
		base := (len(words) - 1 - i) * 32
		for x := uint32(v); x != 0; x &= x - 1 {
			cpus = append(cpus, base+bits.TrailingZeros32(x))
		}
	}
	slices.Sort(cpus)
	return cpus, nil
}
