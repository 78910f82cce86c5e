package modules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
)

// Iperf3ClientJob is an iperf3 client running in the background (see
// Iperf3Client.Start).
type Iperf3ClientJob struct {
	c    Iperf3Client
	h    *lnsttest.Host
	argv []string
	job  *lnsttest.Job
}

// Start starts the iperf3 client c on h in the background, so that
// several flows run at once; Wait returns what it measured. A client
// still running when the test ends is killed.
func (c Iperf3Client) Start(t testing.TB, h *lnsttest.Host) *Iperf3ClientJob {
	t.Helper()
	argv, err := c.argv()
	if err != nil {
		t.Fatalf("host %s: %v", h.Name(), err)
	}
	mode := "TCP"
	if c.UDP {
		mode = "UDP"
	}
	job := h.StartArgv(t, argv,
		lnsttest.ExitCodes(0, 1),
		lnsttest.Desc(fmt.Sprintf("iperf3 %s to %s port %d", mode, c.Server, c.port())),
		lnsttest.Timeout(c.duration()+30*time.Second),
	)
	return &Iperf3ClientJob{c: c, h: h, argv: argv, job: job}
}

// port is the server port the client connects to.
func (c Iperf3Client) port() int {
	if c.Port == 0 {
		return DefaultIperf3Port
	}
	return c.Port
}

// Wait waits for the client to end and returns what it measured; it
// fails the test as Run does.
func (j *Iperf3ClientJob) Wait(t testing.TB) Iperf3Result {
	t.Helper()
	out := j.job.Wait(t)
	res, err := parseIperf3([]byte(out.Stdout))
	if err == nil && out.ExitCode != 0 {
		err = fmt.Errorf("iperf3 exited with code %d and reported no error", out.ExitCode)
	}
	if err != nil {
		t.Fatalf("host %s: %s: %v\nstdout:\n%s\nstderr:\n%s",
			j.h.Name(), strings.Join(j.argv, " "), err, out.Stdout, out.Stderr)
	}
	j.job.SetSummary(res.String())
	return res
}
