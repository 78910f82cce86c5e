package perf

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"

	"github.com/stretchr/testify/assert"
)

func TestStandardSetFlows(t *testing.T) {
	var names []string
	flows := StandardSet{Addr: "198.18.0.2"}.Flows()
	for _, f := range flows {
		names = append(names, f.Name)
		assert.Equal(t, time.Second, f.Duration, f.Name)
		assert.Equal(t, "198.18.0.2", f.ServerAddr)
	}
	assert.Equal(t, []string{"tcp_stream_1400", "tcp_stream_1400_rev", "tcp_stream_16000", "tcp_stream_16000_rev",
		"udp_stream_1400", "udp_stream_1400_rev", "udp_stream_16000", "udp_stream_16000_rev", "tcp_rr", "tcp_crr"}, names)
	assert.Equal(t, "200M", flows[4].Bitrate)
	assert.True(t, flows[5].Reverse)
	assert.Equal(t, 16000, flows[6].MsgSize)
	assert.NoError(t, validateSet("std", Options{Iterations: 1, Confidence: 0.95, Interval: time.Second}, withHosts(flows)))

	flows = StandardSet{Addr: "198.18.0.2", NoUDP: true, SCTP: true, MsgSizes: []int{64}, Duration: 3 * time.Second}.Flows()
	names = nil
	for _, f := range flows {
		names = append(names, f.Name)
	}
	assert.Equal(t, []string{"tcp_stream_64", "tcp_stream_64_rev", "sctp_stream_64", "sctp_stream_64_rev", "tcp_rr", "tcp_crr"}, names)
}

// withHosts gives flows a client and a server handle (unconnected: for
// validateSet, which only looks that they are there).
func withHosts(flows []Flow) []Flow {
	h := &lnsttest.Host{}
	for i := range flows {
		flows[i].Client, flows[i].Server = h, h
	}
	return flows
}

func TestValidateSetErrors(t *testing.T) {
	opts := Options{Iterations: 1, Confidence: 0.95, Interval: time.Second}
	ok := withHosts([]Flow{{Name: "a", ServerAddr: "198.18.0.2"}})[0]
	for _, c := range []struct {
		name  string
		opts  Options
		flows []Flow
		want  string
	}{
		{"", opts, []Flow{ok}, "no name"},
		{"s", opts, nil, `set "s" has no flow`},
		{"s", Options{Iterations: 1, Confidence: 0.95, Interval: time.Millisecond}, []Flow{ok}, "Options.Interval 1ms"},
		{"s", opts, []Flow{ok, ok}, `two flows named "a"`},
		{"s", opts, []Flow{func() Flow { f := ok; f.Kind = "tcp_bogus"; return f }()}, `Kind "tcp_bogus"`},
		{"s", opts, []Flow{func() Flow { f := ok; f.Duration = 1500 * time.Millisecond; return f }()}, "whole number of seconds"},
		{"s", opts, []Flow{func() Flow { f := ok; f.Processes = 17; return f }()}, "Processes 17"},
		{"s", opts, []Flow{func() Flow { f := ok; f.ClientCPU = "x"; return f }()}, `CPU "x"`},
		{"s", opts, []Flow{func() Flow { f := ok; f.Kind, f.MsgSize = UDPRR, 70000; return f }()}, "MsgSize 70000"},
		{"s", opts, []Flow{func() Flow { f := ok; f.Kind, f.MsgSize = TCPRR, 16<<20+1; return f }()}, "MsgSize 16777217"},
	} {
		assert.ErrorContains(t, validateSet(c.name, c.opts, c.flows), c.want)
	}
}
