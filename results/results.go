package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// SchemaVersion is the value of Run.Schema for files of this version of
// the schema.
const SchemaVersion = "lnst-go/results/v1"

// FileName is the name of the file Write writes in its directory.
const FileName = "results.json"

// Verdicts of a recipe (Recipe.Verdict) and of a job (Job.Verdict; a job
// is never skipped).
const (
	Pass = "pass"
	Fail = "fail"
	Skip = "skip"
)

// KindMeasurement is the Record.Kind of a record whose Value is a
// Measurement.
const KindMeasurement = "measurement"

// Run is one run of a recipe test binary: the whole of results.json.
type Run struct {
	// Schema is SchemaVersion.
	Schema string `json:"schema"`
	// Start and End are when the run started and ended.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Args are the test binary's command-line arguments (os.Args[1:]).
	Args []string `json:"args"`
	// Pool is where the hosts came from: "lab:netns" for the local lab,
	// else the pool file's path.
	Pool string `json:"pool"`
	// Hosts are the machines the run used.
	Hosts []HostInfo `json:"hosts"`
	// Recipes are the recipes (tests and subtests) that ran, in the order
	// they ended.
	Recipes []Recipe `json:"recipes"`
	// ID names the run: its events file (EventsName) and every file it
	// writes in the results directory carry it. "" in files written
	// before runs had ids.
	ID string `json:"id,omitempty"`
	// State is how far the run had got when the file was written: one of
	// the State* constants; "" in files written before runs had states.
	State string `json:"state,omitempty"`
	// Running are the recipes still running when the file was written
	// (StateDeadline, StateInterrupted), with their running jobs.
	Running []RunningRecipe `json:"running,omitempty"`
}

// States of a run (Run.State).
const (
	// StateRunning: written after a recipe ended, the run goes on.
	StateRunning = "running"
	// StateEnded: written by the run at its end.
	StateEnded = "ended"
	// StateInterrupted: written when SIGINT or SIGTERM ended the run.
	StateInterrupted = "interrupted"
	// StateDeadline: written shortly before the test binary's deadline
	// (-test.timeout) fired.
	StateDeadline = "deadline"
	// StateDied: rebuilt from the events file of a run that died (SIGKILL,
	// a power loss) before its end.
	StateDied = "died"
)

// RunningRecipe is a recipe that had not ended when the file was written.
type RunningRecipe struct {
	// Name is the test's full name.
	Name string `json:"name"`
	// Match describes the hosts the recipe got, as Recipe.Match.
	Match string `json:"match"`
	// Start is when the recipe started.
	Start time.Time `json:"start"`
	// Jobs are the recipe's jobs that were running.
	Jobs []RunningJob `json:"jobs"`
}

// RunningJob is a job that had not ended when the file was written.
type RunningJob struct {
	// Host is the host's name in the recipe ("h1").
	Host string `json:"host"`
	// ID is the job's number on its host; 0 for a job run in the
	// foreground (Host.Run) until its agent tells its number (at its
	// start; an older agent at its end).
	ID int `json:"id"`
	// Command is the job's command line; Desc its description.
	Command string `json:"command"`
	Desc    string `json:"desc"`
	// Start is when the job was started.
	Start time.Time `json:"start"`
	// Output is the last lines the job printed, when they were fetched
	// (at the deadline, for a background job).
	Output string `json:"output,omitempty"`
}

// HostInfo describes a machine a run used.
type HostInfo struct {
	// Name is the host's name in the pool ("h1.1" in the lab).
	Name string `json:"name"`
	// Kernel is the kernel release (uname -r).
	Kernel string `json:"kernel"`
	// Arch is the machine architecture (uname -m).
	Arch string `json:"arch"`
	// AgentVersion is the version of the agent that served the host.
	AgentVersion string `json:"agent_version"`
	// System is what -lnst.sysinfo read of the machine once per run.
	System *System `json:"system,omitempty"`
}

// Recipe is one recipe (a test or subtest) and what it did.
type Recipe struct {
	// Name is the test's full name, as t.Name() gives it ("TestPerfTCP",
	// "TestBond/lab").
	Name string `json:"name"`
	// Match describes the hosts the recipe got, as Match.String() gives
	// it ("h1=lab:h1.1 h2=lab:h2.1"); "" when Require was not called or
	// skipped the recipe.
	Match string `json:"match"`
	// Verdict is Pass, Fail or Skip.
	Verdict string `json:"verdict"`
	// Start is when the recipe started; Duration is how long it ran.
	Start    time.Time `json:"start"`
	Duration Duration  `json:"duration"`
	// Jobs are the jobs shown in the recipe's RESULTS SUMMARY, in the
	// order they started.
	Jobs []Job `json:"jobs"`
	// Records are the values the recipe and its modules recorded with
	// lnsttest.Record, in order.
	Records []Record `json:"records"`
	// Consoles are the serial consoles of the recipe's VM hosts, kept
	// when it failed.
	Consoles []Console `json:"consoles,omitempty"`
	// Captures are the packet captures of -lnst.capture kept for the
	// recipe.
	Captures []Capture `json:"captures,omitempty"`
	// KernelLog are the kernel splats logged during the recipe (see
	// KernelSplat), AgentLogs the agent logs of its pool and VM hosts
	// kept when it failed, Sysinfo its hosts' counter deltas.
	KernelLog []KernelSplat  `json:"kernel_log,omitempty"`
	AgentLogs []Console      `json:"agent_logs,omitempty"`
	Sysinfo   []SysinfoDelta `json:"sysinfo,omitempty"`
	// Profiles are the -lnst.profile recordings of the recipe's
	// measured windows.
	Profiles []Profile `json:"profiles,omitempty"`
}

// Profile is a system-wide profile (perf record -a -g) of one host over
// one measured window of a flow set (-lnst.profile=perf).
type Profile struct {
	// Host is the host that recorded ("h1"); Hosts all the recipe's
	// hosts that share its kernel (namespace lab hosts share this
	// machine's), which the recording covers as well.
	Host  string   `json:"host"`
	Hosts []string `json:"hosts"`
	// Window names what was recorded: the flow set and the measured
	// iteration ("perf enrt 198.18.1.2 iteration 1/1").
	Window string `json:"window"`
	// Start and Duration are the recording's span: from the set's
	// aligned start to the end of its flows.
	Start    time.Time `json:"start"`
	Duration Duration  `json:"duration"`
	// Data is the perf.data file, Report the perf report --stdio
	// summary, relative to the results directory; "" when Error says
	// why there is none.
	Data   string `json:"data,omitempty"`
	Report string `json:"report,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Capture is a pcapng file of the packets of one interface during a
// recipe (-lnst.capture).
type Capture struct {
	// Host is the host's name in the recipe ("h1"); Iface the device's
	// real name there.
	Host  string `json:"host"`
	Iface string `json:"iface"`
	// File is the pcapng file, relative to the results directory.
	File string `json:"file"`
	// Packets is how many packets the file holds.
	Packets int64 `json:"packets"`
	// Lost: the capture dropped packets or reached its size bound.
	Lost bool `json:"lost"`
}

// Console is the end of a VM host's serial console.
type Console struct {
	// Host is the host's name in the recipe ("h1").
	Host string `json:"host"`
	// File holds the console's last lines, relative to the results
	// directory.
	File string `json:"file"`
}

// Job is a command a recipe ran on a host.
type Job struct {
	// Host is the host's name in the recipe ("h1").
	Host string `json:"host"`
	// ID is the job's number, unique on its host.
	ID int `json:"id"`
	// Command is the job's command line.
	Command string `json:"command"`
	// Desc is the job's description (lnsttest.Desc), "" if none.
	Desc string `json:"desc"`
	// Start is when the job started; Duration is how long it ran.
	Start    time.Time `json:"start"`
	Duration Duration  `json:"duration"`
	// ExitCode is the job's exit code, -1 when a signal ended it.
	ExitCode int `json:"exit_code"`
	// Signal is the number of the signal that ended the job, 0 if it
	// exited.
	Signal int `json:"signal"`
	// Killed is set when the job was killed (by the recipe or at
	// cleanup); TimedOut when it ran past its timeout and was killed.
	Killed   bool `json:"killed"`
	TimedOut bool `json:"timed_out"`
	// Verdict is Pass or Fail, as in the RESULTS SUMMARY.
	Verdict string `json:"verdict"`
	// StdoutFile and StderrFile are the paths, relative to the directory
	// of results.json, of the files holding the job's output; "" when
	// the job printed nothing there.
	StdoutFile string `json:"stdout_file"`
	StderrFile string `json:"stderr_file"`
	// Summary is the job's one-line result in the RESULTS SUMMARY: the
	// module's formatted result, or its failure.
	Summary string `json:"summary"`
}

// Record is a named value a recipe or module recorded.
type Record struct {
	// Name is the record's name ("perf tcp").
	Name string `json:"name"`
	// Kind says what Value holds: KindMeasurement for a Measurement,
	// KindEvaluation for an Evaluation, KindFlowSet for a FlowSet, "" for
	// any other value.
	Kind string `json:"kind"`
	// Value is the recorded value as JSON; null when it could not be
	// marshalled (Text still shows it).
	Value json.RawMessage `json:"value"`
	// Text is the value as the RESULTS SUMMARY prints it (%v).
	Text string `json:"text"`
}

// NewRecord makes the Record of a value recorded under name: Value is its
// JSON (null if it has none), Text its %v, and Kind KindMeasurement for a
// Measurement or *Measurement, KindEvaluation for an Evaluation or
// *Evaluation.
func NewRecord(name string, value any) Record {
	r := Record{Name: name, Text: fmt.Sprint(value), Value: json.RawMessage("null")}
	switch value.(type) {
	case Measurement, *Measurement:
		r.Kind = KindMeasurement
	case Evaluation, *Evaluation:
		r.Kind = KindEvaluation
	case FlowSet, *FlowSet:
		r.Kind = KindFlowSet
	}
	if b, err := json.Marshal(value); err == nil {
		r.Value = b
	}
	return r
}

// UnmarshalJSON reads a Record, its Value compacted (a file written with
// indentation reads back as NewRecord made it).
func (r *Record) UnmarshalJSON(b []byte) error {
	type plain Record // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var buf bytes.Buffer
	if len(p.Value) > 0 {
		if err := json.Compact(&buf, p.Value); err != nil {
			return err
		}
		p.Value = buf.Bytes()
	}
	*r = Record(p)
	return nil
}

// Measurement decodes the record's Value as a Measurement; ok is false
// when the record is not one.
func (r Record) Measurement() (m Measurement, ok bool) {
	if r.Kind != KindMeasurement {
		return Measurement{}, false
	}
	if err := json.Unmarshal(r.Value, &m); err != nil {
		return Measurement{}, false
	}
	return m, true
}

// Duration is a time.Duration that is a JSON number of seconds.
type Duration time.Duration

// MarshalJSON writes d as a number of seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(d).Seconds(), 'f', -1, 64), nil
}

// UnmarshalJSON reads a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s float64
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a number of seconds, got %s", b)
	}
	*d = Duration(math.Round(s * float64(time.Second)))
	return nil
}

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }
