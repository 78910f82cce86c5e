package perf

// FlowKind is what a flow measures, named as neper and LNST name them.
type FlowKind string

// Flow kinds. The stream kinds run iperf3; the request/response kinds run
// the RR tool built into the test binary.
const (
	TCPStream  FlowKind = "tcp_stream"
	UDPStream  FlowKind = "udp_stream"
	SCTPStream FlowKind = "sctp_stream"
	TCPRR      FlowKind = "tcp_rr"
	UDPRR      FlowKind = "udp_rr"
	TCPCRR     FlowKind = "tcp_crr"
)

// rr reports whether k is a request/response kind.
func (k FlowKind) rr() bool { return k == TCPRR || k == UDPRR || k == TCPCRR }

// kind is the flow's Kind, its default from UDP.
func (f Flow) kind() FlowKind {
	switch {
	case f.Kind != "":
		return f.Kind
	case f.UDP:
		return UDPStream
	}
	return TCPStream
}
