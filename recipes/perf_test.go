package recipes

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules/perf"
	"github.com/lnst-go/lnst/results"
)

// shapeRate is perf.shape: a tbf rate limit on the sender's eth0 during
// TestPerfTCP, to see a regression caught (by the baseline evaluator and
// by lnst results compare).
var shapeRate = lnsttest.NewParam("perf.shape", "",
	"tc tbf rate (\"200mbit\") put on h1's eth0 for TestPerfTCP, removed after: a deliberate regression; \"\" for none")

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

	if rate := shapeRate.Get(); rate != "" {
		eth0 := h1.Iface("eth0")
		dev := eth0.Name()
		// A qdisc on a device with no transmit queue gives it one (0 ->
		// 1000) and deleting the qdisc leaves it: rewriting the length it
		// has journals it, so the agent puts it back after the qdisc goes.
		eth0.WriteSysfs(t, "tx_queue_len", eth0.ReadSysfs(t, "tx_queue_len"))
		h1.RunArgv(t, []string{"tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "50ms"})
		t.Cleanup(func() { h1.RunArgv(t, []string{"tc", "qdisc", "del", "dev", dev, "root"}) })
	}

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
