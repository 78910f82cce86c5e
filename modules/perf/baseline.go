package perf

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
)

// Baseline is a stored reference figure of a measurement.
type Baseline struct {
	// Value is the measurement's mean when it was recorded, in Unit.
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Recorded is when it was recorded.
	Recorded time.Time `json:"recorded"`
}

// Baselines is the content of a baseline file: a JSON object from
// "recipe|match|flow" keys (BaselineKey) to their Baseline.
type Baselines map[string]Baseline

// ReadBaselines reads a baseline file. A file that does not exist holds
// no baselines; that is not an error.
func ReadBaselines(path string) (Baselines, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Baselines{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read baselines: %w", err)
	}
	b := Baselines{}
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("read baselines %s: %w", path, err)
	}
	return b, nil
}

// Write writes the baselines to path atomically, making its directory if
// needed.
func (b Baselines) Write(path string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("write baselines: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write baselines: %w", err)
	}
	f, err := os.CreateTemp(dir, ".baselines-*.json")
	if err != nil {
		return fmt.Errorf("write baselines: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write baselines: %w", err)
	}
	return nil
}

// BaselineKey is the key of a measurement in a baseline file:
// "recipe|match|flow".
func BaselineKey(recipe, match, flow string) string {
	return recipe + "|" + match + "|" + flow
}

// DefaultTolerance is the drop below the baseline CheckBaseline accepts.
const DefaultTolerance = 0.1

// EnvBaselines names the baseline file when BaselineOptions.File is ""
// (as the flag -lnst.baselines does); EnvBaselineRecord=1 (or the flag
// -lnst.baseline-record) makes CheckBaseline record instead of check.
const (
	EnvBaselines      = "LNST_BASELINES"
	EnvBaselineRecord = "LNST_BASELINE_RECORD"
)

// Flags of test binaries that import perf, as lnsttest's -lnst.* flags
// are: -lnst.baselines (EnvBaselines) and -lnst.baseline-record
// (EnvBaselineRecord).
var (
	baselinesFlag      = flag.String("lnst.baselines", "", "perf baselines: a directory of per-machine-class files CLASS.json (the evaluators' default: "+DefaultBaselineDir+" in the test package), or one .json file (CheckBaseline's default: lnst-go/baselines.json in the user cache directory) (env "+EnvBaselines+")")
	baselineRecordFlag = flag.Bool("lnst.baseline-record", false, "record perf measurements as the new baselines instead of checking against them (env "+EnvBaselineRecord+")")
)

// DefaultBaselineFile is -lnst.baselines ($LNST_BASELINES), or else
// baselines.json in the user's cache directory
// (~/.cache/lnst-go/baselines.json): baselines belong to a machine, not to
// the repository.
func DefaultBaselineFile() string {
	if f := *baselinesFlag; f != "" {
		return f
	}
	if f := os.Getenv(EnvBaselines); f != "" {
		return f
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "lnst-go", "baselines.json")
}

// BaselineOptions are how CheckBaseline finds and treats a baseline.
type BaselineOptions struct {
	// File is the baseline file; "" means DefaultBaselineFile().
	File string
	// Tolerance is the drop below the baseline accepted, as a fraction;
	// 0 means DefaultTolerance (10%).
	Tolerance float64
	// Key is the measurement's key in the file; "" means
	// BaselineKey(t.Name(), Match, m.Flow).
	Key string
	// Match names the machines measured, so that figures of different
	// machines are not compared; "" means the local lab the measured
	// hosts are in: "lab:vm" on the VM lab, "lab" otherwise (Host.Lab).
	// A recipe on a pool passes something stable that names its hosts.
	Match string
	// Record stores the mean as the baseline (replacing any) instead of
	// failing against it; LNST_BASELINE_RECORD=1 sets it too.
	Record bool
	// RecordMissing stores the mean as the baseline when there is none.
	RecordMissing bool
}

// CheckBaseline compares the mean of m with its stored baseline and fails
// the test (without stopping it) when it is more than Tolerance below,
// saying by how many percent. With no baseline stored it logs that and
// passes, unless it records one (RecordMissing). Under Record it stores
// the mean and does not fail. The comparison is set as m.Baseline, so it
// shows in m's record.
func CheckBaseline(t testing.TB, m *results.Measurement, opts BaselineOptions) {
	t.Helper()
	if opts.File == "" {
		opts.File = DefaultBaselineFile()
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = DefaultTolerance
	}
	if opts.Match == "" {
		opts.Match = labMatch(m)
	}
	if opts.Key == "" {
		opts.Key = BaselineKey(t.Name(), opts.Match, m.Flow)
	}
	if record, _ := strconv.ParseBool(os.Getenv(EnvBaselineRecord)); record || *baselineRecordFlag {
		opts.Record = true
	}
	if opts.Tolerance < 0 || opts.Tolerance >= 1 {
		t.Errorf("perf.CheckBaseline %q: Tolerance %v is not a fraction in [0, 1)", m.Flow, opts.Tolerance)
		return
	}
	unlock, err := lockFile(opts.File)
	switch {
	case err != nil && opts.Record:
		t.Errorf("perf.CheckBaseline %q: %v", m.Flow, err)
		return
	case err != nil:
		// No writable place for the file (a CI account without a home):
		// the measurement stands; say where the baseline was looked for.
		t.Logf("perf %s: baseline not checked: no baseline file could be read or made at %s (%v); -lnst.baselines names another",
			m.Flow, opts.File, err)
		return
	}
	defer unlock()
	bs, err := ReadBaselines(opts.File)
	if err != nil {
		t.Errorf("perf.CheckBaseline %q: %v", m.Flow, err)
		return
	}
	old, ok := bs[opts.Key]
	if ok && old.Unit != m.Unit {
		t.Errorf("perf %s: baseline %q in %s is in %s, the measurement in %s: record it again (%s=1)",
			m.Flow, opts.Key, opts.File, old.Unit, m.Unit, EnvBaselineRecord)
		return
	}
	if ok {
		m.Baseline = compare(m.Mean, old.Value, opts)
	}
	if opts.Record || (!ok && opts.RecordMissing) {
		bs[opts.Key] = Baseline{Value: m.Mean, Unit: m.Unit, Recorded: time.Now().UTC()}
		if err := bs.Write(opts.File); err != nil {
			t.Errorf("perf.CheckBaseline %q: %v", m.Flow, err)
			return
		}
		if m.Baseline == nil {
			m.Baseline = compare(m.Mean, m.Mean, opts)
		}
		m.Baseline.Recorded = true
		t.Logf("perf %s: recorded baseline %s as %q in %s", m.Flow, results.FormatValue(m.Mean, m.Unit), opts.Key, opts.File)
		return
	}
	if !ok {
		t.Logf("perf %s: no baseline %q in %s: not checked (%s=1 records one)", m.Flow, opts.Key, opts.File, EnvBaselineRecord)
		return
	}
	c := m.Baseline
	if !c.Pass {
		t.Errorf("perf %s: mean %s is %.1f%% below the baseline %s (tolerance %.0f%%; key %q in %s)",
			m.Flow, results.FormatValue(m.Mean, m.Unit), -c.Delta, results.FormatValue(c.Baseline, m.Unit),
			100*c.Tolerance, c.Key, opts.File)
		return
	}
	t.Logf("perf %s: mean %s is %+.1f%% from the baseline %s (tolerance %.0f%%)",
		m.Flow, results.FormatValue(m.Mean, m.Unit), c.Delta, results.FormatValue(c.Baseline, m.Unit), 100*c.Tolerance)
}

// compare checks mean against baseline.
func compare(mean, baseline float64, opts BaselineOptions) *results.BaselineCheck {
	c := &results.BaselineCheck{Key: opts.Key, Baseline: baseline, Tolerance: opts.Tolerance,
		Pass: mean >= baseline*(1-opts.Tolerance)}
	if baseline != 0 {
		c.Delta = 100 * (mean - baseline) / baseline
	}
	return c
}

// lockFile takes an exclusive lock on path+".lock", so that test binaries
// running at once (go test ./...) do not lose each other's baselines.
func lockFile(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock baselines: %w", err)
	}
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock baselines: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock baselines %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// ZeroThroughput fails the test (without stopping it) when m has no
// iteration or an iteration measured nothing: a flow that did not flow.
func ZeroThroughput(t testing.TB, m *results.Measurement) {
	t.Helper()
	if len(m.Iterations) == 0 {
		t.Errorf("perf %s: no iteration measured", m.Flow)
		return
	}
	var zero []string
	for i, v := range m.Iterations {
		if v <= 0 {
			zero = append(zero, fmt.Sprint(i+1))
		}
	}
	if len(zero) > 0 {
		t.Errorf("perf %s: no throughput in %s %s of %d (%v)", m.Flow, plural(len(zero), "iteration", "iterations"),
			strings.Join(zero, ", "), len(m.Iterations), m.Iterations)
	}
}

// measuredLab maps each measurement Measure returned to the lab kind of
// its hosts (lnsttest.Host.Lab), for CheckBaseline's default Match.
var measuredLab sync.Map

// labMatch is the default Match of m: "lab:vm" when Measure measured it on
// VM lab hosts, "lab" otherwise (a measurement made elsewhere, too).
func labMatch(m *results.Measurement) string {
	if lab, _ := measuredLab.Load(m); lab == "vm" {
		return "lab:vm"
	}
	return "lab"
}
