package modules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The iperf3 samples in testdata were captured from iperf 3.12 over the
// loopback of a private network namespace; see testdata/README.

func TestParseIperf3TCP(t *testing.T) {
	// iperf3 -c 127.0.0.1 -t 2 -P 2 --json
	got, err := parseIperf3([]byte(readSample(t, "iperf3_tcp.json")))
	require.NoError(t, err)
	assert.Equal(t, Iperf3Result{
		BitsPerSecond:     24701030162.56143, // end.sum_received
		SentBitsPerSecond: 24708464960.74862, // end.sum_sent
		Retransmits:       12,
		Protocol:          "TCP",
		Streams:           2,
		Duration:          2 * time.Second,
		Intervals: []Iperf3Interval{
			{Start: 0, End: 1000023 * time.Microsecond, BitsPerSecond: 22941266485.268734},
			{Start: 1000023 * time.Microsecond, End: 2000057 * time.Microsecond, BitsPerSecond: 26475644499.31022},
		},
	}, got)
	assert.Equal(t, "TCP 24.70 Gbit/s, 12 retransmits, 2 streams, 2s", got.String())
}

func TestParseIperf3UDP(t *testing.T) {
	// iperf3 -c 127.0.0.1 -t 2 -u -b 100M --json
	got, err := parseIperf3([]byte(readSample(t, "iperf3_udp.json")))
	require.NoError(t, err)
	assert.Equal(t, Iperf3Result{
		BitsPerSecond:     99989537.9250218, // end.sum_received
		SentBitsPerSecond: 100003385.845944, // end.sum_sent
		Protocol:          "UDP",
		Streams:           1,
		Duration:          2 * time.Second,
		Intervals: []Iperf3Interval{
			{Start: 0, End: 1000086 * time.Microsecond, BitsPerSecond: 100130401.80220182},
			{Start: 1000086 * time.Microsecond, End: 2000091 * time.Microsecond, BitsPerSecond: 99876363.9400037},
		},
	}, got)
	assert.Equal(t, "UDP 99.99 Mbit/s, 0.00% lost, 1 stream, 2s", got.String())
}

func TestParseIperf3UDPLoss(t *testing.T) {
	// iperf3 -c 127.0.0.1 -t 1 -u -b 0 -P 2 --json: unlimited rate, the receiver drops
	got, err := parseIperf3([]byte(readSample(t, "iperf3_udp_loss.json")))
	require.NoError(t, err)
	assert.Equal(t, 17006083128.567987, got.BitsPerSecond)
	assert.Equal(t, 18524892625.358707, got.SentBitsPerSecond)
	assert.Equal(t, 8.173974540311175, got.LostPercent)
	assert.Equal(t, 2, got.Streams)
	assert.Len(t, got.Intervals, 1)
	assert.Equal(t, "UDP 17.01 Gbit/s, 8.17% lost, 2 streams, 1s", got.String())
}

func TestParseIperf3OldUDP(t *testing.T) {
	// Older iperf3 reports UDP totals only in end.sum.
	out := `{"start":{"test_start":{"protocol":"UDP","num_streams":1,"duration":5,"reverse":1}},
		"intervals":[],"end":{"sum":{"start":0,"end":5,"bits_per_second":1e6,"lost_percent":2.5}}}`
	got, err := parseIperf3([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, Iperf3Result{BitsPerSecond: 1e6, SentBitsPerSecond: 1e6, LostPercent: 2.5,
		Protocol: "UDP", Streams: 1, Duration: 5 * time.Second, Reverse: true}, got)
	assert.Equal(t, "UDP 1.00 Mbit/s, 2.50% lost, 1 stream, 5s, reverse", got.String())
}

func TestParseIperf3Errors(t *testing.T) {
	// iperf3 -c 127.0.0.1 -t 1 --json with no server
	_, err := parseIperf3([]byte(readSample(t, "iperf3_error.json")))
	assert.EqualError(t, err, "iperf3: unable to connect to server: Connection refused")

	_, err = parseIperf3([]byte("iperf3: error - unable to connect to server\n"))
	assert.ErrorContains(t, err, "read iperf3 JSON output")

	_, err = parseIperf3([]byte(`{"start":{},"intervals":[],"end":{}}`))
	assert.ErrorContains(t, err, "no end summary")
}

func TestIperf3ServerArgv(t *testing.T) {
	got, err := Iperf3Server{}.argv()
	require.NoError(t, err)
	assert.Equal(t, []string{"iperf3", "-s", "-1", "-p", "5201"}, got)
	assert.Equal(t, []string{"ss", "-Hltn", "sport", "=", ":5201"}, Iperf3Server{}.listenArgv())

	got, err = Iperf3Server{Bind: "198.18.1.2", Port: 5301}.argv()
	require.NoError(t, err)
	assert.Equal(t, []string{"iperf3", "-s", "-1", "-p", "5301", "-B", "198.18.1.2"}, got)
	assert.Equal(t, []string{"ss", "-Hltn", "sport", "=", ":5301"}, Iperf3Server{Port: 5301}.listenArgv())

	_, err = Iperf3Server{Port: 70000}.argv()
	assert.ErrorContains(t, err, "Port 70000 is not in 1..65535")
}

func TestIperf3ClientArgv(t *testing.T) {
	got, err := Iperf3Client{Server: "198.18.1.2"}.argv()
	require.NoError(t, err)
	assert.Equal(t, []string{"iperf3", "-c", "198.18.1.2", "-p", "5201", "-t", "10", "-P", "1", "--json"}, got)

	got, err = Iperf3Client{Server: "2001:db8::2", Port: 5301, Duration: 5 * time.Second, Parallel: 4,
		UDP: true, Bitrate: "100M", Reverse: true, Bind: "2001:db8::1"}.argv()
	require.NoError(t, err)
	assert.Equal(t, []string{"iperf3", "-c", "2001:db8::2", "-p", "5301", "-t", "5", "-P", "4",
		"-u", "-b", "100M", "-R", "-B", "2001:db8::1", "--json"}, got)

	for _, rate := range []string{"0", "100M", "1.5G", "10k", "100M/100"} {
		_, err := Iperf3Client{Server: "198.18.1.2", Bitrate: rate}.argv()
		assert.NoError(t, err, rate)
	}
}

func TestIperf3ClientArgvInvalid(t *testing.T) {
	tests := []struct {
		c    Iperf3Client
		want string
	}{
		{Iperf3Client{}, `Server "" is not an address`},
		{Iperf3Client{Server: "198.18.1.2", Port: -1}, "Port -1 is not in 1..65535"},
		{Iperf3Client{Server: "198.18.1.2", Duration: 1500 * time.Millisecond}, "Duration 1.5s is not a whole, positive number of seconds"},
		{Iperf3Client{Server: "198.18.1.2", Duration: -time.Second}, "Duration -1s is not"},
		{Iperf3Client{Server: "198.18.1.2", Parallel: -2}, "Parallel -2 is negative"},
		{Iperf3Client{Server: "198.18.1.2", Bitrate: "fast"}, `Bitrate "fast" is not a rate`},
		{Iperf3Client{Server: "198.18.1.2", Bitrate: "Inf"}, `Bitrate "Inf" is not a rate`},
		{Iperf3Client{Server: "198.18.1.2", Bitrate: "100M/x"}, `Bitrate "100M/x" is not a rate`},
		{Iperf3Client{Server: "198.18.1.2", Bind: "a b"}, `Bind "a b" contains white space`},
	}
	for _, tt := range tests {
		_, err := tt.c.argv()
		assert.ErrorContains(t, err, tt.want, "%+v", tt.c)
	}
}

func TestFormatBitrate(t *testing.T) {
	assert.Equal(t, "0.00 bit/s", FormatBitrate(0))
	assert.Equal(t, "999.00 bit/s", FormatBitrate(999))
	assert.Equal(t, "9.41 Gbit/s", FormatBitrate(9.41e9))
	assert.Equal(t, "1.20 Tbit/s", FormatBitrate(1.2e12))
	assert.Equal(t, "1200.00 Tbit/s", FormatBitrate(1.2e15))
}

func TestIperf3Affinity(t *testing.T) {
	got, err := Iperf3Server{Affinity: "0"}.argv()
	require.NoError(t, err)
	assert.Equal(t, []string{"iperf3", "-s", "-1", "-p", "5201", "-A", "0"}, got)
	got, err = Iperf3Client{Server: "198.18.1.2", Affinity: "1,0"}.argv()
	require.NoError(t, err)
	assert.Equal(t, []string{"iperf3", "-c", "198.18.1.2", "-p", "5201", "-t", "10", "-P", "1", "-A", "1,0", "--json"}, got)
	for _, bad := range []string{"x", "-1", "1,2,3", "1,"} {
		_, err := Iperf3Client{Server: "198.18.1.2", Affinity: bad}.argv()
		assert.ErrorContains(t, err, "Affinity", bad)
		_, err = Iperf3Server{Affinity: bad}.argv()
		assert.ErrorContains(t, err, "Affinity", bad)
	}
}
