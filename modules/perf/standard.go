package perf

import (
	"fmt"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
)

// DefaultMsgSizes are the message sizes of a StandardSet's streams when
// MsgSizes is nil: one under a 1500-byte MTU, one that TSO and GRO (or IP
// fragmentation, for UDP) must cut up.
var DefaultMsgSizes = []int{1400, 16000}

// StandardSet is the measurement set of an ENRT recipe, as LNST's
// BaseEnrtRecipe runs it: TCP and UDP streams at each message size in both
// directions, tcp_rr and tcp_crr, and SCTP streams where the kernel has
// them, all between Client and the server address Addr on Server.
type StandardSet struct {
	Client, Server *lnsttest.Host
	Addr           string
	// Duration is each flow's duration; 0 means 1s (the short default of
	// make recipes).
	Duration time.Duration
	// MsgSizes are the stream message sizes; nil means DefaultMsgSizes.
	MsgSizes []int
	// NoUDP leaves the UDP streams out; SCTP adds sctp_stream flows.
	NoUDP, SCTP bool
	// UDPBitrate caps each UDP stream (iperf3 -b); "" means 200M, so
	// that unlimited UDP does not starve the other flows sharing the
	// hosts' CPUs; "0" is unlimited.
	UDPBitrate string
}

// emulated reports whether the set's client or server is emulated.
func (s StandardSet) emulated() bool {
	return s.Client != nil && s.Client.Emulated() || s.Server != nil && s.Server.Emulated()
}

// Flows returns the set's flows, named kind_size (_rev for the reverse
// direction): "tcp_stream_1400", "udp_stream_16000_rev", "tcp_rr",
// "tcp_crr".
func (s StandardSet) Flows() []Flow {
	dur := s.Duration
	if dur == 0 {
		dur = time.Second
	}
	sizes := s.MsgSizes
	if sizes == nil {
		sizes = DefaultMsgSizes
	}
	kinds := []FlowKind{TCPStream}
	if !s.NoUDP {
		kinds = append(kinds, UDPStream)
	}
	if s.SCTP {
		kinds = append(kinds, SCTPStream)
	}
	base := Flow{Client: s.Client, Server: s.Server, ServerAddr: s.Addr, Duration: dur}
	var out []Flow
	for _, k := range kinds {
		for _, size := range sizes {
			for _, rev := range []bool{false, true} {
				f := base
				f.Kind, f.MsgSize, f.Reverse = k, size, rev
				f.Name = fmt.Sprintf("%s_%d", k, size)
				if rev {
					f.Name += "_rev"
				}
				if k == UDPStream {
					f.Bitrate = s.UDPBitrate
					if f.Bitrate == "" {
						f.Bitrate = "200M"
					}
				}
				out = append(out, f)
			}
		}
	}
	for _, k := range []FlowKind{TCPRR, TCPCRR} {
		f := base
		f.Kind, f.Name = k, string(k)
		out = append(out, f)
	}
	return out
}
