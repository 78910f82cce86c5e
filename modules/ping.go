package modules

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Ping sends ICMP echo requests with iputils ping. The zero value of every
// field but Dst means the tool's default.
type Ping struct {
	// Dst is the IPv4 or IPv6 address to ping (an IPv6 link-local address
	// may carry a zone, "fe80::1%eth0"). Host names are refused.
	Dst string
	// Count is the number of requests to send; 0 means 3.
	Count int
	// Interval is the time between requests; 0 means ping's default (1s).
	// Unprivileged ping refuses intervals below 200ms.
	Interval time.Duration
	// Size is the ICMP payload size in bytes; 0 means ping's default (56).
	Size int
	// IPv6 forces ping -6. The family is also detected from Dst, so this is
	// only needed for clarity: an IPv4 Dst with IPv6 set is an error.
	IPv6 bool
	// Iface binds the requests to an interface or source address (ping -I).
	Iface string
	// Timeout is ping's deadline (ping -w, rounded up to whole seconds):
	// ping stops after it whether or not Count replies came. With a
	// Timeout, ping keeps sending until Count replies arrive or the
	// deadline passes, so Sent may exceed Count. 0 means no deadline.
	Timeout time.Duration
	// Flood sends as fast as replies come, or 100 a second, whichever
	// is faster (ping -f, root only), as LNST's PingFlood does.
	Flood bool
}

// DefaultPingCount is the number of requests Ping sends when Count is 0.
const DefaultPingCount = 3

// PingResult is what a Ping measured.
type PingResult struct {
	// Sent, Received and Lost count echo requests; Lost is Sent-Received.
	Sent, Received, Lost int
	// Errors counts ICMP errors received instead of replies (for instance
	// "Destination Host Unreachable"); Duplicates counts duplicate replies.
	Errors, Duplicates int
	// RTTMin, RTTAvg and RTTMax are the round-trip times of the replies;
	// all zero when there was no reply.
	RTTMin, RTTAvg, RTTMax time.Duration
}

// Verdict is how the RESULTS SUMMARY judges the ping: PASS when every
// packet got its reply, LOSS when some were lost, NO REPLY when all were.
func (r PingResult) Verdict() string {
	switch {
	case r.Sent > 0 && r.Received == 0:
		return "NO REPLY"
	case r.Lost > 0:
		return "LOSS"
	}
	return "PASS"
}

// String formats r on one line, as shown in the RESULTS SUMMARY:
// "sent 5 received 5 lost 0 rtt min/avg/max 0.040/0.052/0.071 ms".
func (r PingResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d received %d lost %d", r.Sent, r.Received, r.Lost)
	if r.Errors > 0 {
		fmt.Fprintf(&b, " errors %d", r.Errors)
	}
	if r.Duplicates > 0 {
		fmt.Fprintf(&b, " duplicates %d", r.Duplicates)
	}
	if r.Received > 0 {
		fmt.Fprintf(&b, " rtt min/avg/max %s/%s/%s ms", fmtMs(r.RTTMin), fmtMs(r.RTTAvg), fmtMs(r.RTTMax))
	}
	return b.String()
}

func fmtMs(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

// count returns the number of requests p sends.
func (p Ping) count() int {
	if p.Count == 0 {
		return DefaultPingCount
	}
	return p.Count
}

// argv validates p and returns the ping command line.
func (p Ping) argv() ([]string, error) {
	addr, err := netip.ParseAddr(p.Dst)
	if err != nil {
		return nil, fmt.Errorf("ping: Dst %q is not an IP address: %w", p.Dst, err)
	}
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	switch {
	case p.Count < 0:
		return nil, fmt.Errorf("ping: Count %d is negative", p.Count)
	case p.Interval < 0:
		return nil, fmt.Errorf("ping: Interval %v is negative", p.Interval)
	case p.Size < 0:
		return nil, fmt.Errorf("ping: Size %d is negative", p.Size)
	case p.Timeout < 0:
		return nil, fmt.Errorf("ping: Timeout %v is negative", p.Timeout)
	case p.IPv6 && addr.Is4():
		return nil, fmt.Errorf("ping: IPv6 is set but Dst %q is an IPv4 address", p.Dst)
	case strings.ContainsAny(p.Iface, " \t\n"):
		return nil, fmt.Errorf("ping: Iface %q contains white space", p.Iface)
	}
	argv := []string{"ping", "-c", strconv.Itoa(p.count())}
	if p.Interval > 0 {
		argv = append(argv, "-i", strconv.FormatFloat(p.Interval.Seconds(), 'f', -1, 64))
	}
	if p.Size > 0 {
		argv = append(argv, "-s", strconv.Itoa(p.Size))
	}
	if p.Flood {
		argv = append(argv, "-f")
	}
	if addr.Is6() {
		argv = append(argv, "-6")
	} else {
		argv = append(argv, "-4")
	}
	if p.Iface != "" {
		argv = append(argv, "-I", p.Iface)
	}
	if p.Timeout > 0 {
		secs := int64(math.Ceil(p.Timeout.Seconds()))
		argv = append(argv, "-w", strconv.FormatInt(secs, 10))
	}
	return append(argv, addr.String()), nil
}

// jobTimeout bounds the whole ping job: its deadline when it has one,
// otherwise the time to send every request plus ping's wait for the last
// reply (10s at most), with a margin.
func (p Ping) jobTimeout() time.Duration {
	const margin = 15 * time.Second
	if p.Timeout > 0 {
		return p.Timeout.Round(time.Second) + time.Second + margin
	}
	interval := p.Interval
	if interval == 0 {
		interval = time.Second
	}
	return time.Duration(p.count())*interval + 10*time.Second + margin
}

var (
	// "5 packets transmitted, 5 received, +1 duplicates, +2 errors, 0% packet loss, time 4005ms"
	pingStatsRE = regexp.MustCompile(`(?m)^(\d+) packets transmitted, (\d+) (?:packets )?received((?:, \+\d+ \w+)*), [\d.]+% packet loss`)
	pingExtraRE = regexp.MustCompile(`\+(\d+) (\w+)`)
	// "rtt min/avg/max/mdev = 0.040/0.052/0.071/0.012 ms" (older iputils: "round-trip").
	pingRTTRE = regexp.MustCompile(`(?m)^(?:rtt|round-trip) min/avg/max(?:/mdev)? = ([\d.]+)/([\d.]+)/([\d.]+)(?:/[\d.]+)? ms`)
)

// parsePing reads the statistics at the end of iputils ping output.
func parsePing(out string) (PingResult, error) {
	m := pingStatsRE.FindStringSubmatch(out)
	if m == nil {
		return PingResult{}, errors.New("no \"packets transmitted\" statistics line in ping output")
	}
	var r PingResult
	r.Sent, _ = strconv.Atoi(m[1])
	r.Received, _ = strconv.Atoi(m[2])
	r.Lost = r.Sent - r.Received
	if r.Lost < 0 {
		r.Lost = 0
	}
	for _, e := range pingExtraRE.FindAllStringSubmatch(m[3], -1) {
		n, _ := strconv.Atoi(e[1])
		switch e[2] {
		case "errors":
			r.Errors = n
		case "duplicates":
			r.Duplicates = n
		}
	}
	rtt := pingRTTRE.FindStringSubmatch(out)
	if rtt == nil {
		if r.Received > 0 {
			return r, fmt.Errorf("ping received %d replies but printed no rtt line", r.Received)
		}
		return r, nil
	}
	for i, d := range []*time.Duration{&r.RTTMin, &r.RTTAvg, &r.RTTMax} {
		ms, err := strconv.ParseFloat(rtt[i+1], 64)
		if err != nil {
			return r, fmt.Errorf("ping rtt %q: %w", rtt[i+1], err)
		}
		*d = time.Duration(math.Round(ms * float64(time.Millisecond)))
	}
	return r, nil
}
