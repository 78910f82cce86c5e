package modules

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSockperf(t *testing.T) {
	out, err := os.ReadFile("testdata/sockperf_pingpong.txt") // sockperf 3.7, --tcp --full-rtt, colours and all
	require.NoError(t, err)
	r, err := parseSockperf(string(out))
	require.NoError(t, err)
	us := func(f float64) time.Duration { return time.Duration(f * float64(time.Microsecond)) }
	assert.Equal(t, SockperfResult{Observations: 12227, Avg: us(45.086), Min: us(13.459), P50: us(13.810), P90: us(15.973),
		P99: us(878.683), Max: us(42232.463), SentMessages: 12227, ReceivedMessages: 12227}, r)
	_, err = parseSockperf("sockperf: Test ended\n")
	assert.ErrorContains(t, err, "observations")
	_, err = parseSockperf("Total 5 observations\n")
	assert.ErrorContains(t, err, "percentiles")
}

func TestSockperfArgv(t *testing.T) {
	a, err := SockperfPingPong{Server: "198.18.0.2", TCP: true, MsgSize: 64, Duration: 2 * time.Second}.argv()
	require.NoError(t, err)
	assert.Equal(t, "sockperf ping-pong -i 198.18.0.2 -p 11111 -t 2 --full-rtt -m 64 --tcp", strings.Join(a, " "))
	a, err = SockperfServer{Bind: "198.18.0.2", Port: 2000}.argv()
	require.NoError(t, err)
	assert.Equal(t, "sockperf server -i 198.18.0.2 -p 2000", strings.Join(a, " "))
	_, err = SockperfPingPong{Server: "host.example"}.argv()
	assert.ErrorContains(t, err, `Server "host.example" is not an IP address`)
	_, err = SockperfPingPong{Server: "198.18.0.2", Duration: 1500 * time.Millisecond}.argv()
	assert.ErrorContains(t, err, "whole number of seconds")
	_, err = SockperfServer{Bind: "198.18.0.2", Port: -1}.argv()
	assert.ErrorContains(t, err, "Port -1")
}
