package perf

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/results"
)

// windowHook is told when an iteration's measured window starts (the
// aligned start time, before any flow client starts) and when it ends
// (every flow has finished).
type windowHook interface {
	begin(t testing.TB, at time.Time)
	end(t testing.TB)
}

// profiler records -lnst.profile=perf over each measured iteration of a
// flow set: perf record -a -g on one host per kernel among the set's
// hosts (namespace lab hosts share this machine's kernel: one recording
// covers them all), started by exec-at at the aligned start and stopped
// with SIGINT when the flows have finished. It fetches perf.data and a
// perf report --stdio summary into the -lnst.results directory and lists
// them in results.json (lnsttest.AddProfile).
type profiler struct {
	set       string
	label     string // of the iteration being recorded
	iteration int
	recs      []*perfRecorder
}

// perfRecorder is the recording of one kernel.
type perfRecorder struct {
	h     *lnsttest.Host
	hosts []string
	dir   string
	err   string // why this kernel is not recorded
	job   *lnsttest.Job
	at    time.Time
}

// perfReportArgv is the summary kept next to perf.data: the symbols
// over 0.5% of the samples, flat (the call graphs are in perf.data).
func perfReportArgv(data string) []string {
	return []string{"perf", "report", "--stdio", "--no-children", "--sort", "comm,dso,symbol",
		"--percent-limit", "0.5", "-g", "none", "-i", data}
}

// perfRecordArgv records every CPU with call graphs into data.
func perfRecordArgv(data string) []string {
	return []string{"perf", "record", "-a", "-g", "-o", data}
}

// newProfiler is the profiler of set on hosts, or nil when
// -lnst.profile does not ask for one for t (lnsttest.ProfileTool). A
// host without perf is noted in results.json and the log, not failed:
// a profile is evidence, not what the recipe tests.
func newProfiler(t testing.TB, set string, hosts map[string]*lnsttest.Host) *profiler {
	t.Helper()
	if lnsttest.ProfileTool(t) != "perf" {
		return nil
	}
	p := &profiler{set: set}
	byKernel := map[string]*perfRecorder{}
	for _, n := range slices.Sorted(mapKeys(hosts)) {
		h := hosts[n]
		out := h.Output(t, "cat /proc/sys/kernel/random/boot_id; command -v perf || echo NOPERF",
			lnsttest.Quiet(), lnsttest.Desc("profile: kernel id and perf"))
		boot, tool, _ := strings.Cut(strings.TrimSpace(out), "\n")
		if r := byKernel[boot]; r != nil {
			r.hosts = append(r.hosts, n)
			continue
		}
		r := &perfRecorder{h: h, hosts: []string{n}}
		byKernel[boot] = r
		p.recs = append(p.recs, r)
		if strings.TrimSpace(tool) == "NOPERF" {
			r.err = fmt.Sprintf("host %s has no perf on its PATH (Debian package linux-perf)", n)
			t.Logf("perf %s: -lnst.profile=perf: %s: not profiled", set, r.err)
			continue
		}
		r.dir = h.TempDir(t)
	}
	return p
}

func (p *profiler) begin(t testing.TB, at time.Time) {
	t.Helper()
	for _, r := range p.recs {
		r.job, r.at = nil, at
		if r.err != "" {
			continue
		}
		r.job = r.h.StartModule(t, modExecAt, execAtArgs{At: at, Argv: perfRecordArgv(path.Join(r.dir, "perf.data"))},
			lnsttest.Desc("profile: perf record -a -g of "+p.label))
	}
}

func (p *profiler) end(t testing.TB) {
	t.Helper()
	for _, r := range p.recs {
		rec := results.Profile{Host: r.h.Name(), Hosts: r.hosts, Window: "perf " + p.set + " " + p.label, Start: r.at,
			Duration: results.Duration(time.Since(r.at)), Error: r.err}
		if r.job != nil {
			r.job.Kill(t, syscall.SIGINT)
			<-r.job.Done()
			rec.Data, rec.Report, rec.Error = r.fetch(t, p.set, p.iteration)
			if rec.Error != "" {
				t.Logf("perf %s: -lnst.profile=perf: host %s: %s", p.set, r.h.Name(), rec.Error)
			}
		}
		lnsttest.AddProfile(t, rec)
	}
}

// fetch copies the iteration's perf.data and its report into the
// results directory and removes perf.data from the host.
func (r *perfRecorder) fetch(t testing.TB, set string, iteration int) (data, report, problem string) {
	t.Helper()
	res := r.job.Result()
	remote := path.Join(r.dir, "perf.data")
	defer r.h.RunArgv(t, []string{"rm", "-f", remote}, lnsttest.Quiet(), lnsttest.Desc("profile: remove perf.data"))
	if !strings.Contains(res.Stderr, "perf record: Captured and wrote") {
		return "", "", fmt.Sprintf("perf record (job %d) wrote no perf.data: exit %d, signal %d: %s",
			r.job.ID(), res.ExitCode, res.Signal, lastLines(res.Stderr, 5))
	}
	base := fmt.Sprintf("%s-%s-%d", r.h.Name(), set, iteration)
	local, rel, ok := lnsttest.ResultPath(t, base+".perf.data")
	if !ok {
		return "", "", "no -lnst.results directory to keep perf.data in"
	}
	r.h.GetFile(t, remote, local)
	rep := r.h.RunArgv(t, perfReportArgv(remote), lnsttest.Quiet(), lnsttest.ExitCodes(0, 1, 255),
		lnsttest.Timeout(5*time.Minute), lnsttest.Desc("profile: perf report --stdio"))
	out := rep.Result()
	if out.ExitCode != 0 {
		return rel, "", fmt.Sprintf("perf report (job %d) exited with code %d: %s", rep.ID(), out.ExitCode, lastLines(out.Stderr, 5))
	}
	rpath, rrel, ok := lnsttest.ResultPath(t, base+".perf-report.txt")
	if !ok {
		return rel, "", "no -lnst.results directory to keep the report in"
	}
	if err := os.WriteFile(rpath, []byte(out.Stdout), 0o600); err != nil {
		t.Errorf("perf: -lnst.profile: %v", err)
		return rel, "", err.Error()
	}
	return rel, rrel, ""
}

// lastLines is the last n lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
