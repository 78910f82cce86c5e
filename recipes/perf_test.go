package recipes

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/modules/perf"
	"github.com/lnst-go/lnst/results"
)

// TestPerfTCP measures TCP throughput from h1 to h2 (after a warm-up;
// 3 iterations of 2 s, or perf.profile=full's 5 of 60 s) and evaluates
// it: every iteration carried something, the measurement took no longer
// than it should, and throughput, each host's CPU, CPU-seconds per Gbit
// and the time taken are within their tolerance of this machine class's
// committed baselines (testdata/baselines/CLASS.json; a machine class
// with no file gets its measurements and a note saying where the file was
// looked for; -lnst.baseline-record writes it).
func TestPerfTCP(t *testing.T) {
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.3.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.3.2/24")

	prof := perf.CurrentProfile(2*time.Second, 3)
	runs := time.Duration(prof.Iterations+1) * prof.Duration
	var res *results.Measurement
	took := perf.TimeTaken(t, "tcp", 2*runs+30*time.Second, func() {
		res = perf.Measure(t, perf.Flow{
			Name: "tcp", Client: h1, Server: h2, ServerAddr: "198.18.3.2", Duration: prof.Duration,
		}, perf.Options{Iterations: prof.Iterations})
	})
	s := perf.SubjectOf(res)
	perf.NonZero(t, s)
	perCPU := perf.CPUPerThroughput(t, res, 0, h1, h2)
	// The lab's hosts share this machine's CPUs with whatever else runs;
	// this class's committed file has wide tolerances for that. Real
	// machines keep the defaults (perf.DefaultTolerances).
	perf.LoadBaselines(t, h1, h2).Check(t, s.With(perCPU...).With(took))
}
