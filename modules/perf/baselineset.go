package perf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/results"
)

// DefaultBaselineDir is where the baseline evaluator looks for the
// baseline file of a machine class, relative to the test package's
// directory (go test runs a test binary there): the files are committed
// with the recipes, one per machine class.
const DefaultBaselineDir = "testdata/baselines"

// DefaultTolerances are the tolerances of metric families (a metric's
// name up to its first blank) that neither the baseline file nor
// MetricBaselines.Tolerance gives; other families get DefaultTolerance.
var DefaultTolerances = map[string]float64{
	"throughput":   0.1,
	"cpu":          0.2,
	"cpu_per_gbit": 0.2,
	"time":         0.2,
}

// MetricBaseline is a metric's stored reference in a baseline file.
type MetricBaseline struct {
	Value          float64 `json:"value"`
	Unit           string  `json:"unit"`
	HigherIsBetter bool    `json:"higher_is_better"`
	// Tolerance is the relative change accepted on either side (0.1);
	// 0 means the family's default. Recording keeps it.
	Tolerance float64   `json:"tolerance,omitempty"`
	Recorded  time.Time `json:"recorded"`
}

// BaselineFile is a baseline file of one machine class: metrics by
// "recipe|subject|metric" (t.Name(), the flow, the metric's name).
type BaselineFile struct {
	Class   string                    `json:"class"`
	Metrics map[string]MetricBaseline `json:"metrics"`
}

// MetricBaselines compares the metrics of measurements with the baselines
// of one machine class, both ways: a metric worse than its baseline by
// more than its tolerance fails the test, one better by more is reported
// as improved. Make it with LoadBaselines.
type MetricBaselines struct {
	// Class is the machine class (MachineClass of the measured hosts).
	Class string
	// File is the baseline file looked in (absolute).
	File string
	// Tolerance overrides DefaultTolerances per family ("throughput")
	// or per whole metric name ("cpu h1"); a file entry's own tolerance
	// wins over both.
	Tolerance map[string]float64
	// Record stores every checked metric's mean as its baseline (the
	// comparison with the previous one still shows); set by
	// -lnst.baseline-record (LNST_BASELINE_RECORD=1).
	Record bool

	mu      sync.Mutex
	file    BaselineFile
	missing bool // the file did not exist
}

// LoadBaselines reads the baseline file of the machine class of hosts:
// -lnst.baselines ($LNST_BASELINES) when it names a .json file, else
// CLASS.json in the directory it names, by default DefaultBaselineDir. A
// file that does not exist (or cannot be read: no such directory) is not
// an error: every check is then unchecked, with a note saying where the
// file was looked for. Only -lnst.baseline-record writes.
func LoadBaselines(t testing.TB, hosts ...*lnsttest.Host) *MetricBaselines {
	t.Helper()
	class := MachineClass(t, hosts...)
	b := &MetricBaselines{Class: class, File: BaselineFileFor(class), Record: recordRequested()}
	if err := b.load(); err != nil {
		t.Fatalf("perf.LoadBaselines: %v", err)
	}
	return b
}

// recordRequested is -lnst.baseline-record or LNST_BASELINE_RECORD.
func recordRequested() bool {
	record, _ := strconv.ParseBool(os.Getenv(EnvBaselineRecord))
	return record || *baselineRecordFlag
}

// BaselineFileFor is the baseline file of a machine class, absolute (see
// LoadBaselines).
func BaselineFileFor(class string) string {
	loc := *baselinesFlag
	if loc == "" {
		loc = os.Getenv(EnvBaselines)
	}
	if loc == "" {
		loc = DefaultBaselineDir
	}
	if !strings.HasSuffix(loc, ".json") {
		loc = filepath.Join(loc, class+".json")
	}
	if abs, err := filepath.Abs(loc); err == nil {
		loc = abs
	}
	return loc
}

// load reads b.File; a missing one leaves b empty and missing.
func (b *MetricBaselines) load() error {
	b.file = BaselineFile{Class: b.Class, Metrics: map[string]MetricBaseline{}}
	data, err := os.ReadFile(b.File)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		b.missing = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("read baselines %s: %w", b.File, err)
	}
	if err := json.Unmarshal(data, &b.file); err != nil {
		return fmt.Errorf("read baselines %s: %w", b.File, err)
	}
	if b.file.Metrics == nil {
		b.file.Metrics = map[string]MetricBaseline{}
	}
	return nil
}

// tolerance of metric m: the file entry's, else b.Tolerance by name or
// family, else DefaultTolerances, else DefaultTolerance.
func (b *MetricBaselines) tolerance(m Metric, stored MetricBaseline) float64 {
	if stored.Tolerance > 0 {
		return stored.Tolerance
	}
	for _, k := range []string{m.Name, family(m)} {
		if v, ok := b.Tolerance[k]; ok {
			return v
		}
	}
	if v, ok := DefaultTolerances[family(m)]; ok {
		return v
	}
	return DefaultTolerance
}

// Check compares each metric of s with its baseline, records a verdict
// per metric and returns them; a regression beyond the tolerance fails
// the test (without stopping it). Under Record it stores the means as the
// new baselines in b.File.
func (b *MetricBaselines) Check(t testing.TB, s Subject) []results.Evaluation {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []results.Evaluation
	for _, m := range s.Metrics {
		key := t.Name() + "|" + s.Name + "|" + m.Name
		stored, ok := b.file.Metrics[key]
		e := results.Evaluation{Evaluator: "baseline", Subject: s.Name, Metric: m.Name, Unit: m.Unit,
			HigherIsBetter: m.HigherIsBetter, Value: m.Mean(), Tolerance: b.tolerance(m, stored)}
		switch {
		case ok && stored.Unit != m.Unit:
			e.Verdict = results.EvalFail
			e.Note = fmt.Sprintf("baseline %q in %s is in %s, the metric in %s: record it again (%s=1)",
				key, b.File, stored.Unit, m.Unit, EnvBaselineRecord)
		case ok:
			e.Reference = stored.Value
			e.Verdict, e.Delta = judge(e.Value, stored.Value, e.Tolerance, m.HigherIsBetter)
			e.Note = fmt.Sprintf("key %q in %s", key, b.File)
		case b.missing:
			e.Verdict = results.EvalUnchecked
			e.Note = fmt.Sprintf("no baseline file for machine class %s: looked for %s (-lnst.baseline-record writes it)", b.Class, b.File)
		default:
			e.Verdict = results.EvalUnchecked
			e.Note = fmt.Sprintf("no baseline %q in %s (-lnst.baseline-record records it)", key, b.File)
		}
		if b.Record && len(m.Samples) > 0 {
			b.file.Metrics[key] = MetricBaseline{Value: m.Mean(), Unit: m.Unit, HigherIsBetter: m.HigherIsBetter,
				Tolerance: stored.Tolerance, Recorded: time.Now().UTC().Truncate(time.Second)}
			if e.Verdict == results.EvalFail {
				e.Verdict = results.EvalUnchecked
			}
			e.Note = "recorded as the new baseline; " + e.Note
		}
		record(t, e)
		out = append(out, e)
	}
	if b.Record {
		if err := b.write(); err != nil {
			t.Errorf("perf baselines: %v", err)
		}
	}
	return out
}

// judge compares value with baseline at tolerance tol in the metric's
// direction: fail when worse by more than tol, improved when better by
// more, pass otherwise; delta in percent.
func judge(value, baseline, tol float64, higherIsBetter bool) (verdict string, delta float64) {
	if baseline == 0 {
		if value == 0 {
			return results.EvalPass, 0
		}
		better := (value > 0) == higherIsBetter
		if better {
			return results.EvalImproved, 0
		}
		return results.EvalFail, 0
	}
	rel := (value - baseline) / math.Abs(baseline)
	gain := rel
	if !higherIsBetter {
		gain = -rel
	}
	switch {
	case gain < -tol:
		return results.EvalFail, 100 * rel
	case gain > tol:
		return results.EvalImproved, 100 * rel
	}
	return results.EvalPass, 100 * rel
}

// write merges b's entries into b.File under its lock (another binary may
// have recorded meanwhile) and writes it.
func (b *MetricBaselines) write() error {
	unlock, err := lockDir(filepath.Dir(b.File))
	if err != nil {
		return err
	}
	defer unlock()
	mine := b.file.Metrics
	if err := b.load(); err != nil {
		return err
	}
	for k, v := range mine {
		b.file.Metrics[k] = v
	}
	b.missing = false
	data, err := json.MarshalIndent(b.file, "", "  ")
	if err != nil {
		return fmt.Errorf("write baselines: %w", err)
	}
	tmp := b.File + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write baselines: %w", err)
	}
	if err := os.Rename(tmp, b.File); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write baselines: %w", err)
	}
	return nil
}

// lockDir takes an exclusive lock on dir (made if needed), so that test
// binaries recording at once (go test ./...) do not lose each other's
// baselines; unlike lockFile it leaves no file next to the committed ones.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock baselines: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock baselines: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock baselines %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// MachineClass names the class of machine hosts are: the CPU model and
// kernel release of each ("amd-epyc_6.18.44"), distinct classes joined by
// "+". Figures are comparable within a class, so it picks the baseline
// file.
func MachineClass(t testing.TB, hosts ...*lnsttest.Host) string {
	t.Helper()
	var classes []string
	for _, h := range hosts {
		out := h.OutputArgv(t, []string{"sh", "-c", "uname -r; uname -m; cat /proc/cpuinfo"},
			lnsttest.Quiet(), lnsttest.Desc("machine class"), lnsttest.Timeout(10*time.Second))
		c := classOf(out)
		if !contains(classes, c) {
			classes = append(classes, c)
		}
	}
	sort.Strings(classes)
	return strings.Join(classes, "+")
}

// classOf makes the class from "uname -r; uname -m; cat /proc/cpuinfo":
// the first "model name" (x86) or "CPU part" (arm), else the machine
// architecture, and the kernel release, as a file-name-safe slug.
func classOf(out string) string {
	lines := strings.Split(out, "\n")
	if len(lines) < 2 {
		return "unknown"
	}
	kernel, arch := strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
	model := ""
	for _, key := range []string{"model name", "cpu model", "CPU part", "Hardware"} {
		for _, l := range lines[2:] {
			k, v, ok := strings.Cut(l, ":")
			if ok && strings.TrimSpace(k) == key && strings.TrimSpace(v) != "" {
				model = strings.TrimSpace(v)
				break
			}
		}
		if model != "" {
			break
		}
	}
	if model == "" {
		model = arch
	}
	return slug(model) + "_" + slug(kernel)
}

var nonSlug = regexp.MustCompile(`[^a-z0-9.]+`)

func slug(s string) string {
	s = strings.ToLower(strings.NewReplacer("(r)", "", "(tm)", "").Replace(strings.ToLower(s)))
	s = strings.Trim(nonSlug.ReplaceAllString(s, "-"), "-.")
	if s == "" {
		return "unknown"
	}
	return s
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
