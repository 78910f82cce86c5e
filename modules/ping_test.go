package modules

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The samples in testdata were captured from iputils ping 20221126 inside
// private network namespaces (unshare -n); see testdata/README.
func readSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return string(b)
}

func TestParsePing(t *testing.T) {
	tests := []struct {
		sample string
		want   PingResult
		str    string
	}{{
		sample: "ping_ok.txt", // ping -c 3 -i 0.2 127.0.0.1
		want: PingResult{Sent: 3, Received: 3,
			RTTMin: 34 * time.Microsecond, RTTAvg: 190 * time.Microsecond, RTTMax: 473 * time.Microsecond},
		str: "sent 3 received 3 lost 0 rtt min/avg/max 0.034/0.190/0.473 ms",
	}, {
		sample: "ping6_ok.txt", // ping -6 -c 3 -i 0.2 ::1
		want: PingResult{Sent: 3, Received: 3,
			RTTMin: 28 * time.Microsecond, RTTAvg: 36 * time.Microsecond, RTTMax: 41 * time.Microsecond},
		str: "sent 3 received 3 lost 0 rtt min/avg/max 0.028/0.036/0.041 ms",
	}, {
		sample: "ping_lost.txt", // ping -c 2 -w 2 198.18.5.5, a neighbour that never answers
		want:   PingResult{Sent: 2, Received: 0, Lost: 2},
		str:    "sent 2 received 0 lost 2",
	}, {
		sample: "ping_errors.txt", // ping -c 4 -i 0.5 -w 4 198.18.5.5, no neighbour: host unreachable
		want:   PingResult{Sent: 6, Received: 0, Lost: 6, Errors: 6},
		str:    "sent 6 received 0 lost 6 errors 6",
	}}
	for _, tt := range tests {
		t.Run(tt.sample, func(t *testing.T) {
			got, err := parsePing(readSample(t, tt.sample))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.str, got.String())
		})
	}
}

func TestParsePingPartialLossAndDuplicates(t *testing.T) {
	out := "PING 198.18.1.2 (198.18.1.2) 56(84) bytes of data.\n" +
		"\n--- 198.18.1.2 ping statistics ---\n" +
		"5 packets transmitted, 3 received, +1 duplicates, 40% packet loss, time 4005ms\n" +
		"rtt min/avg/max/mdev = 0.040/0.052/0.071/0.012 ms\n"
	got, err := parsePing(out)
	require.NoError(t, err)
	assert.Equal(t, PingResult{Sent: 5, Received: 3, Lost: 2, Duplicates: 1,
		RTTMin: 40 * time.Microsecond, RTTAvg: 52 * time.Microsecond, RTTMax: 71 * time.Microsecond}, got)
	assert.Equal(t, "sent 5 received 3 lost 2 duplicates 1 rtt min/avg/max 0.040/0.052/0.071 ms", got.String())
}

func TestParsePingGarbage(t *testing.T) {
	for _, out := range []string{
		"",
		"ping: connect: Network is unreachable\n",
		"hello\nrtt min/avg/max/mdev = 0.040/0.052/0.071/0.012 ms\n",
	} {
		_, err := parsePing(out)
		assert.ErrorContains(t, err, "packets transmitted", "output %q", out)
	}
}

func TestParsePingRepliesWithoutRTT(t *testing.T) {
	_, err := parsePing("3 packets transmitted, 3 received, 0% packet loss, time 408ms\n")
	assert.ErrorContains(t, err, "no rtt line")
}

func TestPingArgv(t *testing.T) {
	tests := []struct {
		name string
		p    Ping
		want []string
	}{
		{"defaults", Ping{Dst: "198.18.1.2"}, []string{"ping", "-c", "3", "-4", "198.18.1.2"}},
		{"all options", Ping{Dst: "198.18.1.2", Count: 5, Interval: 200 * time.Millisecond, Size: 1400,
			Iface: "eth0", Timeout: 2500 * time.Millisecond},
			[]string{"ping", "-c", "5", "-i", "0.2", "-s", "1400", "-4", "-I", "eth0", "-w", "3", "198.18.1.2"}},
		{"flood", Ping{Dst: "198.18.1.2", Count: 1000, Flood: true}, []string{"ping", "-c", "1000", "-f", "-4", "198.18.1.2"}},
		{"ipv6 detected", Ping{Dst: "2001:db8::2", Count: 1}, []string{"ping", "-c", "1", "-6", "2001:db8::2"}},
		{"ipv6 explicit", Ping{Dst: "2001:db8::2", IPv6: true, Interval: 2 * time.Second},
			[]string{"ping", "-c", "3", "-i", "2", "-6", "2001:db8::2"}},
		{"link-local zone", Ping{Dst: "fe80::1%eth0"}, []string{"ping", "-c", "3", "-6", "fe80::1%eth0"}},
		{"v4-mapped", Ping{Dst: "::ffff:198.18.1.2"}, []string{"ping", "-c", "3", "-4", "198.18.1.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.argv()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPingArgvInvalid(t *testing.T) {
	tests := []struct {
		p    Ping
		want string
	}{
		{Ping{}, `Dst "" is not an IP address`},
		{Ping{Dst: "h2.example"}, `Dst "h2.example" is not an IP address`},
		{Ping{Dst: "198.18.1.0/24"}, `Dst "198.18.1.0/24" is not an IP address`},
		{Ping{Dst: "198.18.1.2", Count: -1}, "Count -1 is negative"},
		{Ping{Dst: "198.18.1.2", Interval: -time.Second}, "Interval -1s is negative"},
		{Ping{Dst: "198.18.1.2", Size: -8}, "Size -8 is negative"},
		{Ping{Dst: "198.18.1.2", Timeout: -time.Second}, "Timeout -1s is negative"},
		{Ping{Dst: "198.18.1.2", IPv6: true}, `IPv6 is set but Dst "198.18.1.2" is an IPv4 address`},
		{Ping{Dst: "198.18.1.2", Iface: "eth0 -f"}, `Iface "eth0 -f" contains white space`},
	}
	for _, tt := range tests {
		_, err := tt.p.argv()
		assert.ErrorContains(t, err, tt.want, "%+v", tt.p)
	}
}

func TestPingJobTimeout(t *testing.T) {
	assert.Equal(t, 28*time.Second, Ping{Dst: "198.18.1.2"}.jobTimeout())
	assert.Equal(t, 26*time.Second, Ping{Dst: "198.18.1.2", Count: 5, Interval: 200 * time.Millisecond}.jobTimeout())
	assert.Equal(t, 18*time.Second, Ping{Dst: "198.18.1.2", Count: 100, Timeout: 2 * time.Second}.jobTimeout())
}

func TestPingVerdict(t *testing.T) {
	assert.Equal(t, "PASS", PingResult{Sent: 3, Received: 3}.Verdict())
	assert.Equal(t, "LOSS", PingResult{Sent: 3, Received: 1, Lost: 2}.Verdict())
	assert.Equal(t, "NO REPLY", PingResult{Sent: 3, Lost: 3}.Verdict())
}
