package modules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// DefaultIperf3Port is the port an iperf3 server listens on when Port is 0.
const DefaultIperf3Port = 5201

// DefaultIperf3Duration is how long an iperf3 client sends when Duration is 0.
const DefaultIperf3Duration = 10 * time.Second

// Iperf3Server is a one-off iperf3 server ("iperf3 -s -1"): it serves a
// single client test and exits.
type Iperf3Server struct {
	// Bind is the address to listen on (iperf3 -B); "" means every address.
	Bind string
	// Port is the port to listen on; 0 means DefaultIperf3Port.
	Port int
	// Affinity pins the server to a CPU (iperf3 -A); -1 or "" leaves it
	// free. It is a string so that 0 (CPU 0) and unset differ: "0", "3".
	Affinity string
}

func (s Iperf3Server) port() int {
	if s.Port == 0 {
		return DefaultIperf3Port
	}
	return s.Port
}

// argv validates s and returns the iperf3 server command line.
func (s Iperf3Server) argv() ([]string, error) {
	if s.Port < 0 || s.Port > 65535 {
		return nil, fmt.Errorf("iperf3 server: Port %d is not in 1..65535", s.Port)
	}
	if strings.ContainsAny(s.Bind, " \t\n") {
		return nil, fmt.Errorf("iperf3 server: Bind %q contains white space", s.Bind)
	}
	if !validAffinity(s.Affinity) {
		return nil, fmt.Errorf("iperf3 server: Affinity %q is not a CPU number (\"3\")", s.Affinity)
	}
	argv := []string{"iperf3", "-s", "-1", "-p", strconv.Itoa(s.port())}
	if s.Bind != "" {
		argv = append(argv, "-B", s.Bind)
	}
	if s.Affinity != "" {
		argv = append(argv, "-A", s.Affinity)
	}
	return argv, nil
}

// listenArgv returns the ss command that lists a TCP listener on the
// server's port, one line per socket and no header.
func (s Iperf3Server) listenArgv() []string {
	return []string{"ss", "-Hltn", "sport", "=", ":" + strconv.Itoa(s.port())}
}

// Iperf3Client runs an iperf3 test against an Iperf3Server.
type Iperf3Client struct {
	// Server is the address (or name) of the server.
	Server string
	// Port is the server's port; 0 means DefaultIperf3Port.
	Port int
	// Duration is how long to send, in whole seconds; 0 means
	// DefaultIperf3Duration.
	Duration time.Duration
	// Parallel is the number of parallel streams; 0 means 1.
	Parallel int
	// UDP selects UDP instead of TCP.
	UDP bool
	// Bitrate is the target rate per stream, as iperf3 -b takes it: "100M",
	// "1G", "0" for unlimited. "" means iperf3's default (1 Mbit/s for UDP,
	// unlimited for TCP).
	Bitrate string
	// Reverse makes the server send and the client receive (iperf3 -R).
	Reverse bool
	// Bind is the local address to send from (iperf3 -B); "" means any.
	Bind string
	// Affinity pins the client to a CPU, or the client and the server to
	// two ("2,3"), as iperf3 -A takes it; "" leaves them free.
	Affinity string
}

func (c Iperf3Client) duration() time.Duration {
	if c.Duration == 0 {
		return DefaultIperf3Duration
	}
	return c.Duration
}

// argv validates c and returns the iperf3 client command line.
func (c Iperf3Client) argv() ([]string, error) {
	switch {
	case c.Server == "" || strings.ContainsAny(c.Server, " \t\n"):
		return nil, fmt.Errorf("iperf3 client: Server %q is not an address", c.Server)
	case c.Port < 0 || c.Port > 65535:
		return nil, fmt.Errorf("iperf3 client: Port %d is not in 1..65535", c.Port)
	case c.Duration < 0 || c.Duration%time.Second != 0:
		return nil, fmt.Errorf("iperf3 client: Duration %v is not a whole, positive number of seconds", c.Duration)
	case c.Parallel < 0:
		return nil, fmt.Errorf("iperf3 client: Parallel %d is negative", c.Parallel)
	case c.Bitrate != "" && !validBitrate(c.Bitrate):
		return nil, fmt.Errorf("iperf3 client: Bitrate %q is not a rate such as \"100M\"", c.Bitrate)
	case strings.ContainsAny(c.Bind, " \t\n"):
		return nil, fmt.Errorf("iperf3 client: Bind %q contains white space", c.Bind)
	}
	if !validAffinity(c.Affinity) {
		return nil, fmt.Errorf("iperf3 client: Affinity %q is not a CPU number or two (\"3\", \"2,3\")", c.Affinity)
	}
	port := c.Port
	if port == 0 {
		port = DefaultIperf3Port
	}
	parallel := max(c.Parallel, 1)
	argv := []string{"iperf3", "-c", c.Server, "-p", strconv.Itoa(port),
		"-t", strconv.Itoa(int(c.duration() / time.Second)), "-P", strconv.Itoa(parallel)}
	if c.UDP {
		argv = append(argv, "-u")
	}
	if c.Bitrate != "" {
		argv = append(argv, "-b", c.Bitrate)
	}
	if c.Reverse {
		argv = append(argv, "-R")
	}
	if c.Bind != "" {
		argv = append(argv, "-B", c.Bind)
	}
	if c.Affinity != "" {
		argv = append(argv, "-A", c.Affinity)
	}
	return append(argv, "--json"), nil
}

// validAffinity reports whether a is "" or an iperf3 -A value: "N" or
// "N,M", CPU numbers.
func validAffinity(a string) bool {
	if a == "" {
		return true
	}
	parts := strings.Split(a, ",")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if n, err := strconv.Atoi(p); err != nil || n < 0 {
			return false
		}
	}
	return true
}

// validBitrate reports whether s reads as an iperf3 -b value:
// a number, an optional K/M/G/T suffix and an optional "/burst".
func validBitrate(s string) bool {
	rate, burst, hasBurst := strings.Cut(s, "/")
	if hasBurst {
		if _, err := strconv.ParseUint(burst, 10, 32); err != nil {
			return false
		}
	}
	if n := len(rate); n > 0 && strings.ContainsRune("kKmMgGtT", rune(rate[n-1])) {
		rate = rate[:n-1]
	}
	f, err := strconv.ParseFloat(rate, 64)
	return err == nil && f >= 0 && !strings.ContainsAny(rate, "eEnN+-")
}

// Iperf3Result is what an iperf3 client test measured.
type Iperf3Result struct {
	// BitsPerSecond is the throughput seen by the receiver over the whole
	// test (end.sum_received; for UDP from an iperf3 too old to report it,
	// end.sum).
	BitsPerSecond float64
	// SentBitsPerSecond is the throughput the sender sent (end.sum_sent).
	SentBitsPerSecond float64
	// Retransmits is the number of TCP retransmits of the sender.
	Retransmits int
	// LostPercent is the share of UDP datagrams lost, 0 to 100.
	LostPercent float64
	// Protocol is "TCP" or "UDP".
	Protocol string
	// Streams is the number of parallel streams.
	Streams int
	// Duration is the test's configured duration.
	Duration time.Duration
	// Reverse is true when the server sent and the client received.
	Reverse bool
	// Intervals are the per-interval totals over every stream.
	Intervals []Iperf3Interval
}

// Iperf3Interval is the total throughput of every stream over one
// reporting interval, its Start and End counted from the test's start.
type Iperf3Interval struct {
	Start, End    time.Duration
	BitsPerSecond float64
}

// String formats r on one line, as shown in the RESULTS SUMMARY:
// "TCP 9.41 Gbit/s, 12 retransmits, 4 streams, 5s".
func (r Iperf3Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Protocol, FormatBitrate(r.BitsPerSecond))
	if r.Protocol == "UDP" {
		fmt.Fprintf(&b, ", %.2f%% lost", r.LostPercent)
	} else {
		fmt.Fprintf(&b, ", %d retransmits", r.Retransmits)
	}
	streams := "streams"
	if r.Streams == 1 {
		streams = "stream"
	}
	fmt.Fprintf(&b, ", %d %s, %v", r.Streams, streams, r.Duration)
	if r.Reverse {
		b.WriteString(", reverse")
	}
	return b.String()
}

// FormatBitrate formats a rate in bits per second with a decimal unit,
// as "9.41 Gbit/s".
func FormatBitrate(bps float64) string {
	units := []string{"bit/s", "Kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"}
	i := 0
	for math.Abs(bps) >= 1000 && i < len(units)-1 {
		bps /= 1000
		i++
	}
	return strconv.FormatFloat(bps, 'f', 2, 64) + " " + units[i]
}

type iperf3Output struct {
	Start struct {
		TestStart struct {
			Protocol   string  `json:"protocol"`
			NumStreams int     `json:"num_streams"`
			Duration   float64 `json:"duration"`
			Reverse    int     `json:"reverse"`
		} `json:"test_start"`
	} `json:"start"`
	Intervals []struct {
		Sum iperf3Sum `json:"sum"`
	} `json:"intervals"`
	End struct {
		Sum         *iperf3Sum `json:"sum"`
		SumSent     *iperf3Sum `json:"sum_sent"`
		SumReceived *iperf3Sum `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

type iperf3Sum struct {
	Start         float64 `json:"start"`
	End           float64 `json:"end"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Retransmits   int     `json:"retransmits"`
	LostPercent   float64 `json:"lost_percent"`
}

// parseIperf3 reads the output of iperf3 --json. The "error" iperf3
// reports on failure is returned as an error.
func parseIperf3(jsonOut []byte) (Iperf3Result, error) {
	var out iperf3Output
	if err := json.Unmarshal(jsonOut, &out); err != nil {
		return Iperf3Result{}, fmt.Errorf("read iperf3 JSON output: %w", err)
	}
	if out.Error != "" {
		return Iperf3Result{}, fmt.Errorf("iperf3: %s", out.Error)
	}
	ts := out.Start.TestStart
	r := Iperf3Result{
		Protocol: ts.Protocol,
		Streams:  ts.NumStreams,
		Duration: seconds(ts.Duration),
		Reverse:  ts.Reverse != 0,
	}
	end := out.End
	received, sent := end.SumReceived, end.SumSent
	if received == nil {
		received = end.Sum // older iperf3 reports only end.sum for UDP
	}
	if sent == nil {
		sent = end.Sum
	}
	if received == nil || sent == nil {
		return Iperf3Result{}, errors.New("iperf3 JSON output has no end summary (end.sum_received, end.sum_sent)")
	}
	r.BitsPerSecond = received.BitsPerSecond
	r.SentBitsPerSecond = sent.BitsPerSecond
	r.Retransmits = sent.Retransmits
	if r.Protocol == "UDP" {
		r.LostPercent = received.LostPercent
	}
	for _, iv := range out.Intervals {
		r.Intervals = append(r.Intervals, Iperf3Interval{
			Start:         seconds(iv.Sum.Start),
			End:           seconds(iv.Sum.End),
			BitsPerSecond: iv.Sum.BitsPerSecond,
		})
	}
	return r, nil
}

func seconds(s float64) time.Duration {
	return time.Duration(math.Round(s * float64(time.Second)))
}
