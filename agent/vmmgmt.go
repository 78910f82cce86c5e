package agent

import (
	"fmt"
	"net"
	"strconv"

	"github.com/lnst-go/lnst/internal/launch"
	"github.com/lnst-go/lnst/internal/mtls"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// mgmtListener brings up a guest's management NIC (named already by
// setupGuest) with its address and listens on it: TCP at the address and
// port of m, the agent's server credentials requiring a client certificate
// of m's CA (the libvirt provisioner makes that CA per run and puts the
// files in the guest's initramfs). Only the management address is
// listened on: the test NICs carry the recipes' traffic alone.
func mgmtListener(m launch.VMMgmt) (net.Listener, grpc.ServerOption, error) {
	tc, err := mtls.ServerTLS(m.CA, m.Cert, m.Key)
	if err != nil {
		return nil, nil, err
	}
	addr, err := netlink.ParseAddr(m.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("address %q: %w", m.Addr, err)
	}
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, nil, fmt.Errorf("open netlink: %w", err)
	}
	defer nl.Close()
	link, err := nl.LinkByName(m.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("NIC %s: %w", m.Name, err)
	}
	// No duplicate address detection to wait for: the address is IPv4
	// and the network is the provisioner's own.
	if err := nl.AddrAdd(link, addr); err != nil {
		return nil, nil, fmt.Errorf("NIC %s: add %s: %w", m.Name, m.Addr, err)
	}
	if err := nl.LinkSetUp(link); err != nil {
		return nil, nil, fmt.Errorf("NIC %s: set up: %w", m.Name, err)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(addr.IP.String(), strconv.Itoa(m.Port)))
	if err != nil {
		return nil, nil, err
	}
	return lis, grpc.Creds(credentials.NewTLS(tc)), nil
}

// upLinks sets up the links named by the values of ifaces.
func upLinks(ifaces map[string]string) error {
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	defer nl.Close()
	for _, name := range ifaces {
		link, err := nl.LinkByName(name)
		if err == nil {
			err = nl.LinkSetUp(link)
		}
		if err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
	}
	return nil
}
