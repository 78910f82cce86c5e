package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"golang.org/x/sys/unix"
)

// The tools MeasureFlows runs on the hosts are modules of the test
// binary (lnsttest.RegisterModule): on the lab it is this very binary, on
// a pool host the copy the controller ships. A recipe package that imports
// perf registers them.
const (
	modRRServer = "perf.rr-server"
	modRRClient = "perf.rr-client"
	modCPU      = "perf.cpu"
	modExecAt   = "perf.exec-at"
)

func init() {
	lnsttest.RegisterModule(modRRServer, rrServerModule)
	lnsttest.RegisterModule(modRRClient, rrClientModule)
	lnsttest.RegisterModule(modCPU, cpuModule)
	lnsttest.RegisterModule(modExecAt, execAtModule)
}

func rrServerModule(ctx context.Context, raw json.RawMessage) (any, error) {
	var c RRConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("rr server arguments: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	cpu, _ := parseCPU(c.CPU)
	if err := pinProcess(cpu); err != nil {
		return nil, err
	}
	l, pc, err := rrListen(c)
	if err != nil {
		return nil, fmt.Errorf("rr server: %w", err)
	}
	return rrServe(ctx, c, l, pc)
}

func rrClientModule(ctx context.Context, raw json.RawMessage) (any, error) {
	var c RRConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("rr client arguments: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	cpu, _ := parseCPU(c.CPU)
	if err := pinProcess(cpu); err != nil {
		return nil, err
	}
	return rrClient(ctx, c)
}

// cpuArgs asks for Count+1 samples of /proc/stat, at At and every Every
// after it.
type cpuArgs struct {
	At    time.Time     `json:"at"`
	Every time.Duration `json:"every"`
	Count int           `json:"count"`
}

// cpuRecord is one sample: the cpu lines of /proc/stat and when they
// were read.
type cpuRecord struct {
	At   time.Time `json:"at"`
	Stat string    `json:"stat"`
}

func cpuModule(ctx context.Context, raw json.RawMessage) (any, error) {
	var a cpuArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("cpu sampler arguments: %w", err)
	}
	if a.Every <= 0 || a.Count < 1 || a.Count > 100000 {
		return nil, fmt.Errorf("cpu sampler: Every %v, Count %d: want a positive interval and 1..100000 samples", a.Every, a.Count)
	}
	var out []cpuRecord
	for k := 0; k <= a.Count; k++ {
		select {
		case <-time.After(time.Until(a.At.Add(time.Duration(k) * a.Every))):
		case <-ctx.Done():
			return out, nil
		}
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return nil, err
		}
		out = append(out, cpuRecord{At: time.Now(), Stat: cpuLines(string(b))})
	}
	return out, nil
}

// execAtArgs runs Argv at At.
type execAtArgs struct {
	At   time.Time `json:"at"`
	Argv []string  `json:"argv"`
}

// execAtModule waits for At, then replaces itself with Argv: what Argv
// prints is the job's output.
func execAtModule(ctx context.Context, raw json.RawMessage) (any, error) {
	var a execAtArgs
	if err := json.Unmarshal(raw, &a); err != nil || len(a.Argv) == 0 {
		return nil, fmt.Errorf("exec-at arguments %s: want {at, argv}", raw)
	}
	path, err := exec.LookPath(a.Argv[0])
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(time.Until(a.At)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// When the tool really started (later than At if this process
	// started late): the job's stderr tells MeasureFlows.
	fmt.Fprintf(os.Stderr, "%s%d\n", execAtStarted, time.Now().UnixNano())
	return nil, unix.Exec(path, a.Argv, os.Environ())
}

// execAtStarted starts the line of stderr where exec-at says when it
// started its command, in Unix nanoseconds.
const execAtStarted = "lnst-exec-at started "

// execStart is when exec-at started its command according to its stderr,
// or at when the line is missing or earlier.
func execStart(stderr string, at time.Time) time.Time {
	for line := range strings.Lines(stderr) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), execAtStarted); ok {
			if n, err := strconv.ParseInt(rest, 10, 64); err == nil {
				if t := time.Unix(0, n); t.After(at) {
					return t
				}
			}
		}
	}
	return at
}
