package modules

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
)

// iperf3ListenTimeout is how long an iperf3 server is given to listen.
const iperf3ListenTimeout = 10 * time.Second

// Iperf3ServerJob is a running Iperf3Server.
type Iperf3ServerJob struct {
	host *lnsttest.Host
	job  *lnsttest.Job
	argv []string
	once sync.Once
}

// Start starts s on h in the background and returns once it listens. It
// fails the test when s is invalid or when the server exits or does not
// listen within 10s. The server is stopped at cleanup if it still runs.
func (s Iperf3Server) Start(t testing.TB, h *lnsttest.Host) *Iperf3ServerJob {
	t.Helper()
	argv, err := s.argv()
	if err != nil {
		t.Fatalf("host %s: %v", h.Name(), err)
	}
	// A listener already there would hide a server that fails to bind.
	ssArgv := s.listenArgv()
	busy := h.RunArgv(t, ssArgv, lnsttest.Desc("check iperf3 port is free"), lnsttest.Timeout(5*time.Second), lnsttest.Quiet())
	if out := strings.TrimSpace(busy.Result().Stdout); out != "" {
		t.Fatalf("host %s: cannot start %s: port %d already has a listener:\n%s",
			h.Name(), strings.Join(argv, " "), s.port(), out)
	}
	// iperf3 exits 1 when it is stopped with SIGTERM: that is how Stop ends it.
	job := h.StartArgv(t, argv,
		lnsttest.ExitCodes(0, 1),
		lnsttest.Desc("iperf3 server on port "+strconv.Itoa(s.port())),
	)
	sj := &Iperf3ServerJob{host: h, job: job, argv: argv}
	t.Cleanup(func() { sj.Stop(t) })
	sj.waitListening(t, ssArgv)
	return sj
}

// waitListening polls ss on the server's host until a socket listens on
// the server's port; it fails the test when the server exits first or
// iperf3ListenTimeout passes.
func (sj *Iperf3ServerJob) waitListening(t testing.TB, ssArgv []string) {
	t.Helper()
	what := fmt.Sprintf("host %s: %s to listen (%s shows it)", sj.host.Name(), strings.Join(sj.argv, " "), strings.Join(ssArgv, " "))
	lnsttest.WaitFor(t, what, iperf3ListenTimeout, func() bool {
		ss := sj.host.OutputArgv(t, ssArgv, lnsttest.Desc("wait for iperf3 server to listen"), lnsttest.Timeout(5*time.Second), lnsttest.Quiet())
		if strings.TrimSpace(ss) != "" {
			return true
		}
		select {
		case <-sj.job.Done():
			res := sj.job.Result()
			t.Fatalf("host %s: %s exited with code %d before listening\nstdout:\n%s\nstderr:\n%s",
				sj.host.Name(), strings.Join(sj.argv, " "), res.ExitCode, res.Stdout, res.Stderr)
		default:
		}
		return false
	})
}

// Job returns the server's background job.
func (sj *Iperf3ServerJob) Job() *lnsttest.Job { return sj.job }

// Stop stops the server if it still runs (SIGTERM) and reaps it. It is
// safe to call more than once; Start also calls it at cleanup.
func (sj *Iperf3ServerJob) Stop(t testing.TB) {
	t.Helper()
	sj.once.Do(func() {
		select {
		case <-sj.job.Done():
		default:
			sj.job.Kill(t, syscall.SIGTERM)
		}
		sj.job.Wait(t)
	})
}

// Run runs the iperf3 client c on h against a server already listening
// (see Iperf3Server) and returns what it measured. It fails the test when c
// is invalid, when iperf3 reports an error (server unreachable, refused...)
// or when its output cannot be read.
func (c Iperf3Client) Run(t testing.TB, h *lnsttest.Host) Iperf3Result {
	t.Helper()
	argv, err := c.argv()
	if err != nil {
		t.Fatalf("host %s: %v", h.Name(), err)
	}
	mode := "TCP"
	if c.UDP {
		mode = "UDP"
	}
	// iperf3 --json exits 1 with an "error" in its JSON: parse it and
	// report that rather than a bare exit code.
	job := h.RunArgv(t, argv,
		lnsttest.ExitCodes(0, 1),
		lnsttest.Desc("iperf3 "+mode+" to "+c.Server),
		lnsttest.Timeout(c.duration()+30*time.Second),
	)
	out := job.Result()
	res, err := parseIperf3([]byte(out.Stdout))
	if err == nil && out.ExitCode != 0 {
		err = fmt.Errorf("iperf3 exited with code %d and reported no error", out.ExitCode)
	}
	if err != nil {
		t.Fatalf("host %s: %s: %v\nstdout:\n%s\nstderr:\n%s",
			h.Name(), strings.Join(argv, " "), err, out.Stdout, out.Stderr)
	}
	job.SetSummary(res.String())
	return res
}
