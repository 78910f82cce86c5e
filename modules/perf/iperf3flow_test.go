package perf

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseIperf3Flow reads a UDP client's output with the server's
// (iperf3 3.12, -J server, --get-server-output client).
func TestParseIperf3Flow(t *testing.T) {
	out, err := os.ReadFile("testdata/iperf3_udp_server_output.json")
	require.NoError(t, err)
	s, err := parseIperf3Flow(out, t0)
	require.NoError(t, err)
	require.Len(t, s, 2)
	assert.Equal(t, t0, s[0].Start)
	assert.Equal(t, t0.Add(500091*time.Microsecond), s[0].End)
	assert.Equal(t, sample{Start: s[1].Start, End: s[1].End, GenBytes: 625000, RecvBytes: 625000, GenPackets: 625, RecvPackets: 625}, s[1])

	// Reversed, the server generates: its intervals give the generator's
	// figures. Lost datagrams are not received.
	var doc map[string]any
	require.NoError(t, json.Unmarshal(out, &doc))
	doc["start"].(map[string]any)["test_start"].(map[string]any)["reverse"] = 1
	doc["intervals"].([]any)[1].(map[string]any)["sum"].(map[string]any)["lost_packets"] = 5 // the client receives
	rev, err := json.Marshal(doc)
	require.NoError(t, err)
	s, err = parseIperf3Flow([]byte(rev), t0)
	require.NoError(t, err)
	assert.Equal(t, 625.0, s[1].GenPackets)
	assert.Equal(t, 620.0, s[1].RecvPackets)

	_, err = parseIperf3Flow([]byte(`{"error": "unable to connect to server"}`), t0)
	assert.ErrorContains(t, err, "unable to connect")
	_, err = parseIperf3Flow([]byte(`{"intervals": []}`), t0)
	assert.ErrorContains(t, err, "no server_output_json")
}

func TestIperf3FlowArgv(t *testing.T) {
	f := Flow{Name: "u", ServerAddr: "198.18.0.2", Kind: UDPStream, Duration: 2 * time.Second, MsgSize: 1400, Reverse: true, ClientCPU: "1", ServerCPU: "0"}
	assert.Equal(t, "iperf3 -c 198.18.0.2 -p 5300 -t 2 -i 0.5 -P 1 --json --get-server-output -u -b 0 -l 1400 -R -A 1",
		strings.Join(iperf3ClientArgv(f, 5300, 500*time.Millisecond), " "))
	assert.Equal(t, "iperf3 -s -1 -J -p 5300 -i 0.5 -B 198.18.0.2 -A 0", strings.Join(iperf3ServerArgv(f, 5300, 500*time.Millisecond), " "))
	f = Flow{ServerAddr: "198.18.0.2", Kind: SCTPStream, Streams: 4}
	assert.Equal(t, "iperf3 -c 198.18.0.2 -p 1 -t 10 -i 1 -P 4 --json --get-server-output --sctp", strings.Join(iperf3ClientArgv(f, 1, time.Second), " "))
}

func TestExecStart(t *testing.T) {
	late := t0.Add(40 * time.Millisecond)
	stderr := "some warning\n" + execAtStarted + strconv.FormatInt(late.UnixNano(), 10) + "\n"
	assert.True(t, late.Equal(execStart(stderr, t0)), "a late start counts")
	early := t0.Add(-time.Millisecond)
	assert.Equal(t, t0, execStart(execAtStarted+strconv.FormatInt(early.UnixNano(), 10)+"\n", t0), "never before the start time")
	assert.Equal(t, t0, execStart("", t0))
	assert.Equal(t, t0, execStart(execAtStarted+"x\n", t0))
}
