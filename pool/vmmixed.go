package pool

import (
	"context"
	"fmt"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// joinNamespaceHost makes topology host h (the hi-th) of a mixed VM lab
// instance a namespace host of the lab agent, each of its interfaces one
// end of a veth pair whose other end is a port of its network's bridge in
// the switch host vmm, beside the guests' taps: guests and namespace
// hosts share the networks. Everything is journaled in the instance's
// group, undone with it.
func (l *Lab) joinNamespaceHost(ctx context.Context, in *Instance, vmm string, hi int, h TopoHost, bridges map[string]string) error {
	name := in.Hosts[h.Name]
	if _, err := l.client.CreateHost(ctx, &pb.CreateHostRequest{Name: name, Group: in.group}); err != nil {
		return fmt.Errorf("VM lab: create namespace host %s: %w", h.Name, err)
	}
	up := true
	for k, i := range h.Ifaces {
		port, peer := fmt.Sprintf("v%d.%d.%d", in.id, hi, k), fmt.Sprintf("m%d.%d.%d", in.id, hi, k)
		fail := func(err error) error {
			return fmt.Errorf("VM lab: namespace host %s interface %s: %w", h.Name, i.Name, err)
		}
		if err := l.createLink(ctx, vmm, in.group, devices.Veth{Name: port, PeerName: peer}); err != nil {
			return fail(err)
		}
		br := bridges[i.Net]
		if _, err := l.client.SetLink(ctx, &pb.SetLinkRequest{Host: vmm, Group: in.group, Name: port, Up: &up, Master: &br}); err != nil {
			return fail(err)
		}
		if _, err := l.client.SetLinkNetns(ctx, &pb.SetLinkNetnsRequest{Host: vmm, Group: in.group, Name: peer, Target: name}); err != nil {
			return fail(err)
		}
		if _, err := l.client.RenameLink(ctx, &pb.RenameLinkRequest{Host: name, Group: in.group, Name: peer, NewName: in.Ifname(h.Name, i.Name)}); err != nil {
			return fail(err)
		}
	}
	return nil
}
