package perf

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lnst-go/lnst/results"
)

// cpuLine is one cpu line of /proc/stat, in jiffies.
type cpuLine struct {
	Name                                                  string
	User, Nice, System, Idle, IOWait, Irq, Softirq, Steal uint64
}

func (c cpuLine) total() uint64 {
	return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.Irq + c.Softirq + c.Steal
}

// cpuSample is the cpu lines of /proc/stat at a time: the total ("cpu")
// first, then each CPU in the file's order.
type cpuSample struct {
	At    time.Time
	Lines []cpuLine
}

// cpuLines keeps the cpu lines of a /proc/stat text: the rest (intr
// alone is kilobytes on a large machine) need not travel.
func cpuLines(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, "cpu") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// parseCPULines reads every cpu line of /proc/stat: user nice system idle
// iowait irq softirq steal [guest guest_nice]. Guest time is already in
// user and nice, so it is left out.
func parseCPULines(s string) ([]cpuLine, error) {
	var out []cpuLine
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("/proc/stat: short cpu line %q", sc.Text())
		}
		var v [8]uint64
		for i, s := range f[1:min(len(f), 9)] {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat: cpu line %q: %w", sc.Text(), err)
			}
			v[i] = n
		}
		out = append(out, cpuLine{Name: f[0], User: v[0], Nice: v[1], System: v[2], Idle: v[3],
			IOWait: v[4], Irq: v[5], Softirq: v[6], Steal: v[7]})
	}
	if len(out) == 0 || out[0].Name != "cpu" {
		return nil, fmt.Errorf("/proc/stat: no cpu line first")
	}
	return out, nil
}

// share is how a CPU spent the time between two samples, in percent;
// all zero when no time passed. A counter that went backwards (iowait
// may) counts as 0.
func share(a, b cpuLine) results.CPUShare {
	d := func(x, y uint64) float64 {
		if y < x {
			return 0
		}
		return float64(y - x)
	}
	s := results.CPUShare{CPU: b.Name}
	user, nice, sys := d(a.User, b.User), d(a.Nice, b.Nice), d(a.System, b.System)
	idle, iow, irq, soft, steal := d(a.Idle, b.Idle), d(a.IOWait, b.IOWait), d(a.Irq, b.Irq), d(a.Softirq, b.Softirq), d(a.Steal, b.Steal)
	total := user + nice + sys + idle + iow + irq + soft + steal
	if total == 0 {
		return s
	}
	pct := func(x float64) float64 { return min(max(100*x/total, 0), 100) }
	s.Busy = pct(total - idle - iow)
	s.User = pct(user + nice)
	s.System = pct(sys)
	s.Irq = pct(irq)
	s.Softirq = pct(soft)
	return s
}

// hostCPU is a host's CPU use over the window [from, to] (offsets from
// at): between the samples nearest to its ends, total and per CPU, and
// the busy share of each sampling interval. It fails with fewer than two
// samples or when the samples list different CPUs.
func hostCPU(samples []cpuSample, at time.Time, from, to float64) (results.HostCPU, error) {
	if len(samples) < 2 {
		return results.HostCPU{}, fmt.Errorf("%d CPU samples: want at least 2", len(samples))
	}
	off := func(s cpuSample) float64 { return s.At.Sub(at).Seconds() }
	nearest := func(x float64) int {
		best := 0
		for i, s := range samples {
			if abs(off(s)-x) < abs(off(samples[best])-x) {
				best = i
			}
		}
		return best
	}
	i, j := nearest(from), nearest(to)
	if j <= i {
		i, j = 0, len(samples)-1
	}
	a, b := samples[i], samples[j]
	if len(a.Lines) != len(b.Lines) {
		return results.HostCPU{}, fmt.Errorf("CPU samples list %d and %d CPUs", len(a.Lines), len(b.Lines))
	}
	h := results.HostCPU{Total: share(a.Lines[0], b.Lines[0]), PerCPU: []results.CPUShare{}, Intervals: []results.Interval{}}
	for k := 1; k < len(a.Lines); k++ {
		h.PerCPU = append(h.PerCPU, share(a.Lines[k], b.Lines[k]))
	}
	for k := 1; k < len(samples); k++ {
		h.Intervals = append(h.Intervals, results.Interval{Start: off(samples[k-1]), End: off(samples[k]),
			Metrics: map[string]float64{"busy": share(samples[k-1].Lines[0], samples[k].Lines[0]).Busy}})
	}
	return h, nil
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
