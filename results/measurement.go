package results

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// UnitBitsPerSecond is the Unit of throughput measurements.
const UnitBitsPerSecond = "bit/s"

// Measurement is a perf figure measured several times: its iterations and
// their statistics, the CPU load of the hosts while it ran, and how it
// compares with its baseline.
type Measurement struct {
	// Flow is the name of what was measured ("tcp", "udp 4 streams").
	Flow string `json:"flow"`
	// Protocol is "TCP" or "UDP".
	Protocol string `json:"protocol"`
	// Streams is the number of parallel streams of each iteration.
	Streams int `json:"streams"`
	// Duration is how long each iteration sent.
	Duration Duration `json:"duration"`
	// Unit is the unit of Iterations, Mean, StdDev and CI: "bit/s".
	Unit string `json:"unit"`
	// Iterations are the figures of the measured iterations, in order.
	Iterations []float64 `json:"iterations"`
	// Warmup are the figures of the warm-up iterations run first; they
	// are excluded from the statistics.
	Warmup []float64 `json:"warmup"`
	// Mean is the mean of Iterations; StdDev their sample standard
	// deviation (n-1), 0 for a single iteration.
	Mean   float64 `json:"mean"`
	StdDev float64 `json:"std_dev"`
	// CILow and CIHigh bound the Student t confidence interval of the
	// mean at level Confidence (0.95); with a single iteration both are
	// the Mean.
	CILow      float64 `json:"ci_low"`
	CIHigh     float64 `json:"ci_high"`
	Confidence float64 `json:"confidence"`
	// CPU is the CPU utilisation of each host (by its name in the
	// recipe) during the measured iterations. Hosts of the local lab
	// share one kernel, so they show the same machine-wide figure.
	CPU map[string]CPUStats `json:"cpu"`
	// Baseline is the comparison with the stored baseline; nil when it
	// was not checked or no baseline was stored.
	Baseline *BaselineCheck `json:"baseline"`
}

// CPUStats is the CPU utilisation of a host during a Measurement, in
// percent of all its CPUs (0 to 100).
type CPUStats struct {
	// Mean is the mean of Iterations.
	Mean float64 `json:"mean"`
	// Iterations are the utilisation during each measured iteration.
	Iterations []float64 `json:"iterations"`
}

// BaselineCheck is how a Measurement's Mean compared with its stored
// baseline.
type BaselineCheck struct {
	// Key is the baseline's key in the baseline file
	// ("recipe|match|flow").
	Key string `json:"key"`
	// Baseline is the stored value, in the Measurement's Unit.
	Baseline float64 `json:"baseline"`
	// Tolerance is the drop allowed below Baseline, as a fraction (0.1).
	Tolerance float64 `json:"tolerance"`
	// Delta is (Mean - Baseline) / Baseline, in percent.
	Delta float64 `json:"delta"`
	// Pass is false when Mean < Baseline * (1 - Tolerance).
	Pass bool `json:"pass"`
	// Recorded is set when this run stored its Mean as the new baseline
	// (the comparison is then with the previous one, if any).
	Recorded bool `json:"recorded"`
}

// String formats m on one line, as the RESULTS SUMMARY shows it:
// "TCP 9.41 Gbit/s ± 0.12 (95% CI 9.30–9.52), 3 runs; cpu h1 34% h2 29%".
func (m Measurement) String() string {
	var b strings.Builder
	scale, unit := ScaleUnit(m.Mean, m.Unit)
	num := func(v float64) string { return strconv.FormatFloat(v/scale, 'f', 2, 64) }
	if m.Protocol != "" {
		b.WriteString(m.Protocol + " ")
	}
	fmt.Fprintf(&b, "%s %s ± %s (%s CI %s–%s), %d %s",
		num(m.Mean), unit, num(m.StdDev), percent(m.Confidence*100), num(m.CILow), num(m.CIHigh),
		len(m.Iterations), plural(len(m.Iterations), "run", "runs"))
	if len(m.CPU) > 0 {
		b.WriteString("; cpu")
		for _, h := range sortedKeys(m.CPU) {
			fmt.Fprintf(&b, " %s %s", h, percent(m.CPU[h].Mean))
		}
	}
	if c := m.Baseline; c != nil {
		verdict := "ok"
		switch {
		case c.Recorded:
			verdict = "recorded"
		case !c.Pass:
			verdict = "BELOW"
		}
		fmt.Fprintf(&b, "; baseline %s %s (%+.1f%%, %s)", num(c.Baseline), unit, c.Delta, verdict)
	}
	return b.String()
}

// FormatValue formats v, in unit, with a decimal prefix: "9.41 Gbit/s".
func FormatValue(v float64, unit string) string {
	scale, u := ScaleUnit(v, unit)
	return strconv.FormatFloat(v/scale, 'f', 2, 64) + " " + u
}

// ScaleUnit returns the decimal scale (1, 1e3, 1e6...) that puts v
// between 1 and 1000, and unit with the matching prefix ("Gbit/s"). A
// unit other than "bit/s" is not scaled.
func ScaleUnit(v float64, unit string) (float64, string) {
	if unit != UnitBitsPerSecond {
		return 1, unit
	}
	prefixes := []string{"", "K", "M", "G", "T"}
	scale, i := 1.0, 0
	for math.Abs(v)/scale >= 1000 && i < len(prefixes)-1 {
		scale *= 1000
		i++
	}
	return scale, prefixes[i] + unit
}

// percent formats p (0 to 100) without needless decimals: "95%", "34%",
// "99.9%".
func percent(p float64) string {
	if math.Abs(p-math.Round(p)) < 0.05 {
		return strconv.FormatFloat(math.Round(p), 'f', 0, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MarshalJSON writes m with empty lists and maps, never null, where it
// has none (Warmup, CPU); Baseline is null when it was not checked.
func (m Measurement) MarshalJSON() ([]byte, error) {
	type plain Measurement // without this method
	p := plain(m)
	p.Iterations = orEmpty(p.Iterations)
	p.Warmup = orEmpty(p.Warmup)
	cpu := make(map[string]CPUStats, len(p.CPU))
	for h, c := range p.CPU {
		c.Iterations = orEmpty(c.Iterations)
		cpu[h] = c
	}
	p.CPU = cpu
	return json.Marshal(p)
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
