package modules

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
)

// DefaultSockperfPort is the port a sockperf server listens on when Port
// is 0.
const DefaultSockperfPort = 11111

// SockperfServer is a sockperf server ("sockperf server"): it answers the
// ping-pong messages of SockperfPingPong clients until stopped.
type SockperfServer struct {
	// Bind is the address to listen on (sockperf -i), required.
	Bind string
	// Port is the port; 0 means DefaultSockperfPort.
	Port int
	// TCP selects TCP; sockperf's default is UDP.
	TCP bool
}

// SockperfPingPong is a sockperf ping-pong client ("sockperf ping-pong"):
// it sends a message, waits for the server's answer, and so on for
// Duration, and reports the round-trip latency percentiles.
type SockperfPingPong struct {
	// Server is the server's address; Port its port (0:
	// DefaultSockperfPort).
	Server string
	Port   int
	// TCP selects TCP; sockperf's default is UDP.
	TCP bool
	// MsgSize is the message size in bytes; 0 is sockperf's default
	// (14, its minimum).
	MsgSize int
	// Duration is how long to run, in whole seconds; 0 means 1s.
	Duration time.Duration
}

// SockperfResult is what a ping-pong measured: round-trip times
// (sockperf --full-rtt), over its valid period (after sockperf's own
// warm-up).
type SockperfResult struct {
	Observations                   int
	Avg, Min, P50, P90, P99, Max   time.Duration
	SentMessages, ReceivedMessages int
}

// String formats r: "rtt p50 14.0µs p90 15.2µs p99 40.1µs max 2.1ms, 70123 observations".
func (r SockperfResult) String() string {
	return fmt.Sprintf("rtt p50 %v p90 %v p99 %v max %v, %d observations", r.P50, r.P90, r.P99, r.Max, r.Observations)
}

func sockperfPort(p int) int {
	if p == 0 {
		return DefaultSockperfPort
	}
	return p
}

func checkSockperfAddr(what, addr string, port int) error {
	if _, err := netip.ParseAddr(addr); err != nil {
		return fmt.Errorf("sockperf: %s %q is not an IP address", what, addr)
	}
	if port < 0 || port > 65535 {
		return fmt.Errorf("sockperf: Port %d is not in 1..65535", port)
	}
	return nil
}

// argv validates s and returns its command line.
func (s SockperfServer) argv() ([]string, error) {
	if err := checkSockperfAddr("Bind", s.Bind, s.Port); err != nil {
		return nil, err
	}
	argv := []string{"sockperf", "server", "-i", s.Bind, "-p", strconv.Itoa(sockperfPort(s.Port))}
	if s.TCP {
		argv = append(argv, "--tcp")
	}
	return argv, nil
}

// argv validates c and returns its command line.
func (c SockperfPingPong) argv() ([]string, error) {
	if err := checkSockperfAddr("Server", c.Server, c.Port); err != nil {
		return nil, err
	}
	switch {
	case c.Duration < 0 || c.Duration%time.Second != 0:
		return nil, fmt.Errorf("sockperf: Duration %v is not a whole number of seconds", c.Duration)
	case c.MsgSize < 0:
		return nil, fmt.Errorf("sockperf: MsgSize %d is negative", c.MsgSize)
	}
	secs := max(int(c.Duration/time.Second), 1)
	argv := []string{"sockperf", "ping-pong", "-i", c.Server, "-p", strconv.Itoa(sockperfPort(c.Port)),
		"-t", strconv.Itoa(secs), "--full-rtt"}
	if c.MsgSize > 0 {
		argv = append(argv, "-m", strconv.Itoa(c.MsgSize))
	}
	if c.TCP {
		argv = append(argv, "--tcp")
	}
	return argv, nil
}

// SockperfServerJob is a running SockperfServer.
type SockperfServerJob struct {
	job *lnsttest.Job
}

// Start starts s on h and returns once it listens (its socket shows in
// ss); the server is stopped at cleanup if Stop was not called.
func (s SockperfServer) Start(t testing.TB, h *lnsttest.Host) *SockperfServerJob {
	t.Helper()
	argv, err := s.argv()
	if err != nil {
		t.Fatalf("host %s: %v", h.Name(), err)
	}
	// sockperf exits with a signal's code when stopped: Stop's SIGTERM.
	j := h.StartArgv(t, argv, lnsttest.Desc("sockperf server on port "+strconv.Itoa(sockperfPort(s.Port))))
	flag := "-Hlun"
	if s.TCP {
		flag = "-Hltn"
	}
	ss := []string{"ss", flag, "sport", "=", ":" + strconv.Itoa(sockperfPort(s.Port))}
	lnsttest.WaitFor(t, fmt.Sprintf("host %s: %s to listen", h.Name(), strings.Join(argv, " ")), 10*time.Second, func() bool {
		select {
		case <-j.Done():
			r := j.Result()
			t.Fatalf("host %s: %s exited with code %d before listening\n%s%s", h.Name(), strings.Join(argv, " "), r.ExitCode, r.Stdout, r.Stderr)
		default:
		}
		return strings.TrimSpace(h.OutputArgv(t, ss, lnsttest.Quiet(), lnsttest.Timeout(5*time.Second))) != ""
	})
	sj := &SockperfServerJob{job: j}
	t.Cleanup(func() { sj.Stop(t) })
	return sj
}

// Stop stops the server (SIGTERM) and reaps it; safe to call again.
func (sj *SockperfServerJob) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-sj.job.Done():
		return
	default:
	}
	sj.job.Kill(t, syscall.SIGTERM)
	<-sj.job.Done()
}

// Run runs the ping-pong client on h against a listening SockperfServer
// and returns what it measured; it fails the test when c is invalid,
// sockperf fails or its output cannot be read.
func (c SockperfPingPong) Run(t testing.TB, h *lnsttest.Host) SockperfResult {
	t.Helper()
	argv, err := c.argv()
	if err != nil {
		t.Fatalf("host %s: %v", h.Name(), err)
	}
	j := h.RunArgv(t, argv, lnsttest.Desc("sockperf ping-pong to "+c.Server), lnsttest.Timeout(c.Duration+30*time.Second))
	res, err := parseSockperf(j.Result().Stdout + j.Result().Stderr)
	if err != nil {
		t.Fatalf("host %s: %s: %v\n%s", h.Name(), strings.Join(argv, " "), err, j.Result().Stdout)
	}
	j.SetSummary(res.String())
	return res
}

var (
	ansiRE     = regexp.MustCompile("\x1b\\[[0-9;]*m")
	sockValid  = regexp.MustCompile(`\[Valid Duration\].*SentMessages=(\d+); ReceivedMessages=(\d+)`)
	sockAvg    = regexp.MustCompile(`avg-(?:latency|rtt)=([0-9.]+)`)
	sockTotal  = regexp.MustCompile(`Total (\d+) observations`)
	sockPctile = regexp.MustCompile(`---> (?:percentile ([0-9.]+)|<(MAX|MIN)> observation) = *([0-9.]+)`)
)

// parseSockperf reads the statistics of sockperf ping-pong's output, in
// microseconds there.
func parseSockperf(out string) (SockperfResult, error) {
	out = ansiRE.ReplaceAllString(out, "")
	var r SockperfResult
	us := func(s string) time.Duration {
		f, _ := strconv.ParseFloat(s, 64)
		return time.Duration(f * float64(time.Microsecond))
	}
	m := sockTotal.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("sockperf output has no \"Total N observations\" line")
	}
	r.Observations, _ = strconv.Atoi(m[1])
	if m := sockValid.FindStringSubmatch(out); m != nil {
		r.SentMessages, _ = strconv.Atoi(m[1])
		r.ReceivedMessages, _ = strconv.Atoi(m[2])
	}
	if m := sockAvg.FindStringSubmatch(out); m != nil {
		r.Avg = us(m[1])
	}
	found := 0
	for _, m := range sockPctile.FindAllStringSubmatch(out, -1) {
		v := us(m[3])
		switch {
		case m[2] == "MAX":
			r.Max = v
		case m[2] == "MIN":
			r.Min = v
		case m[1] == "50.000":
			r.P50 = v
		case m[1] == "90.000":
			r.P90 = v
		case m[1] == "99.000":
			r.P99 = v
		default:
			continue
		}
		found++
	}
	if found < 5 {
		return r, fmt.Errorf("sockperf output lacks the percentiles (50, 90, 99, MIN, MAX)")
	}
	return r, nil
}
