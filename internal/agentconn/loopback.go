package agentconn

import (
	"net"
	"net/netip"
	"strings"
)

// LoopbackAddr reports whether the agent address addr (unix:///PATH or
// HOST:PORT) is one only this machine reaches: a unix socket, or TCP on
// "localhost", an address in 127.0.0.0/8 or ::1. Plain TCP without TLS
// (insecure) is for such addresses only, unless asked for by a loudly
// named option: anyone who reaches an agent runs commands as its user.
func LoopbackAddr(addr string) bool {
	network, address, err := ParseAddr(addr)
	if err != nil {
		return false
	}
	if network == "unix" {
		return true
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}
