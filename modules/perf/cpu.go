package perf

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// cpuTimes are the aggregate CPU times of a host, in jiffies, from the
// "cpu" line of /proc/stat.
type cpuTimes struct {
	idle, total uint64
}

// parseProcStat reads the "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal [guest guest_nice]. Idle time is idle+iowait;
// guest time is already counted in user and nice, so it is left out of
// the total.
func parseProcStat(s string) (cpuTimes, error) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 5 {
			return cpuTimes{}, fmt.Errorf("/proc/stat: short cpu line %q", sc.Text())
		}
		var v []uint64
		for _, s := range f[1:min(len(f), 9)] {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("/proc/stat: cpu line %q: %w", sc.Text(), err)
			}
			v = append(v, n)
		}
		var c cpuTimes
		for _, n := range v {
			c.total += n
		}
		c.idle = v[3]
		if len(v) > 4 {
			c.idle += v[4]
		}
		return c, nil
	}
	return cpuTimes{}, fmt.Errorf("/proc/stat: no cpu line")
}

// utilisation is the share of CPU time not idle between two samples, in
// percent (0 to 100); 0 when no time passed.
func utilisation(before, after cpuTimes) float64 {
	if after.total <= before.total {
		return 0
	}
	total := float64(after.total - before.total)
	idle := 0.0
	if after.idle > before.idle { // iowait may go backwards
		idle = float64(after.idle - before.idle)
	}
	return min(max(100*(1-idle/total), 0), 100)
}
