package perf

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// iperf3 command lines and output of a stream flow of MeasureFlows: the
// server reports its own intervals (-J) and the client fetches them
// (--get-server-output), so each interval has both the generator's and
// the receiver's figures.

// iperf3ServerArgv is the one-off server of a stream flow on port.
func iperf3ServerArgv(f Flow, port int, interval time.Duration) []string {
	argv := []string{"iperf3", "-s", "-1", "-J", "-p", strconv.Itoa(port), "-i", secondsArg(interval)}
	if f.ServerAddr != "" {
		argv = append(argv, "-B", f.ServerAddr)
	}
	if f.ServerCPU != "" {
		argv = append(argv, "-A", f.ServerCPU)
	}
	return argv
}

// iperf3ClientArgv is the client of a stream flow to port.
func iperf3ClientArgv(f Flow, port int, interval time.Duration) []string {
	argv := []string{"iperf3", "-c", f.ServerAddr, "-p", strconv.Itoa(port),
		"-t", strconv.Itoa(int(f.duration() / time.Second)), "-i", secondsArg(interval),
		"-P", strconv.Itoa(max(f.Streams, 1)), "--json", "--get-server-output"}
	switch f.kind() {
	case UDPStream:
		rate := f.Bitrate
		if rate == "" {
			rate = "0" // unlimited, as LNST's udp_stream
		}
		argv = append(argv, "-u", "-b", rate)
	case SCTPStream:
		argv = append(argv, "--sctp")
	}
	if f.kind() != UDPStream && f.Bitrate != "" {
		argv = append(argv, "-b", f.Bitrate)
	}
	if f.MsgSize > 0 {
		argv = append(argv, "-l", strconv.Itoa(f.MsgSize))
	}
	if f.Reverse {
		argv = append(argv, "-R")
	}
	if f.ClientCPU != "" {
		argv = append(argv, "-A", f.ClientCPU)
	}
	return argv
}

func secondsArg(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

type iperf3Interval struct {
	Sum struct {
		Start       float64 `json:"start"`
		End         float64 `json:"end"`
		Bytes       float64 `json:"bytes"`
		Packets     float64 `json:"packets"`
		LostPackets float64 `json:"lost_packets"`
	} `json:"sum"`
}

type iperf3Run struct {
	Start struct {
		TestStart struct {
			Protocol string  `json:"protocol"`
			BlkSize  float64 `json:"blksize"`
			Reverse  int     `json:"reverse"`
		} `json:"test_start"`
	} `json:"start"`
	Intervals []iperf3Interval `json:"intervals"`
	Error     string           `json:"error"`
}

type iperf3FlowOutput struct {
	iperf3Run
	Server *iperf3Run `json:"server_output_json"`
}

// parseIperf3Flow reads the client's --json --get-server-output output
// into samples, taking interval offsets from at (the time the client was
// started at): the generator's figures from the sending end's intervals,
// the receiver's from the other's. Packets are datagrams for UDP and
// writes of the block size for TCP and SCTP.
func parseIperf3Flow(out []byte, at time.Time) ([]sample, error) {
	var o iperf3FlowOutput
	if err := json.Unmarshal(out, &o); err != nil {
		return nil, fmt.Errorf("read iperf3 JSON output: %w", err)
	}
	if o.Error != "" {
		return nil, fmt.Errorf("iperf3: %s", o.Error)
	}
	if o.Server == nil {
		return nil, fmt.Errorf("iperf3 output has no server_output_json (server not run with -J?)")
	}
	if o.Server.Error != "" {
		return nil, fmt.Errorf("iperf3 server: %s", o.Server.Error)
	}
	gen, recv := o.Intervals, o.Server.Intervals
	if o.Start.TestStart.Reverse != 0 {
		gen, recv = recv, gen
	}
	udp := o.Start.TestStart.Protocol == "UDP"
	blk := o.Start.TestStart.BlkSize
	if blk <= 0 {
		blk = 1
	}
	at = at.Round(0)
	off := func(s float64) time.Time { return at.Add(time.Duration(math.Round(s * 1e9))) }
	var out2 []sample
	for i, g := range o.Intervals {
		s := sample{Start: off(g.Sum.Start), End: off(g.Sum.End)}
		if i < len(gen) {
			s.GenBytes = gen[i].Sum.Bytes
			s.GenPackets = gen[i].Sum.Bytes / blk
			if udp {
				s.GenPackets = gen[i].Sum.Packets
			}
		}
		if i < len(recv) {
			s.RecvBytes = recv[i].Sum.Bytes
			s.RecvPackets = recv[i].Sum.Bytes / blk
			if udp {
				s.RecvPackets = max(recv[i].Sum.Packets-recv[i].Sum.LostPackets, 0)
			}
		}
		out2 = append(out2, s)
	}
	if len(out2) == 0 {
		return nil, fmt.Errorf("iperf3 output has no interval")
	}
	return out2, nil
}
