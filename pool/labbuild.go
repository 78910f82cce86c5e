package pool

import (
	"context"
	"fmt"
	"sync"

	"github.com/lnst-go/lnst/devices/tc"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc"
)

// labBuildParallel is how many hosts of a topology the lab builds at
// once. Each host is a few calls to the agent (its namespace, then a veth
// pair per interface), each a few netlink requests and a wait for the
// link-local address; in flight together they overlap the round trips and
// the agent's per-host threads, where one after another a 200-host lab
// paid each in turn.
const labBuildParallel = 8

// buildHosts makes the namespace hosts of t and connects their interfaces
// to the instance's networks, labBuildParallel hosts at a time; the first
// error stops the hosts not yet started (the caller destroys the group).
func (l *Lab) buildHosts(ctx context.Context, in *Instance, t Topology) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
			cancel()
		}
	}
	build := func(h TopoHost) {
		name := fmt.Sprintf("%s.%d", h.Name, in.id)
		if _, err := l.client.CreateHost(ctx, &pb.CreateHostRequest{Name: name, Group: in.group}); err != nil {
			fail(fmt.Errorf("lab: create host %s: %w", h.Name, err))
			return
		}
		mu.Lock()
		in.Hosts[h.Name] = name
		mu.Unlock()
		for _, i := range h.Ifaces {
			req := &pb.ConnectRequest{Host: name, Ifname: in.Ifname(h.Name, i.Name), Network: fmt.Sprintf("%d/%s", in.id, i.Net), Group: in.group}
			if i.Impair != nil {
				var err error
				if req.ImpairKind, req.ImpairSpec, err = tc.MarshalQdisc(i.Impair); err != nil {
					fail(fmt.Errorf("lab: host %s interface %s: impairment: %w", h.Name, i.Name, err))
					return
				}
			}
			if _, err := l.client.Connect(ctx, req); err != nil {
				fail(fmt.Errorf("lab: give host %s interface %s on network %s: %w", h.Name, i.Name, i.Net, err))
				return
			}
		}
	}
	// For the fresh snapshot (snapFresh) of three hosts or more, the
	// first host is made before all the others and the last after them
	// all; otherwise all are made alike.
	hosts, mid := t.Hosts, t.Hosts
	ordered := l.snapFresh && len(hosts) >= 3
	if ordered {
		build(hosts[0])
		mid = hosts[1 : len(hosts)-1]
	}
	sem := make(chan struct{}, labBuildParallel)
	for _, h := range mid {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			build(h)
		})
	}
	wg.Wait()
	if ordered && ctx.Err() == nil {
		build(hosts[len(hosts)-1])
	}
	if first == nil && ctx.Err() == nil && l.snapFresh {
		l.snapFreshHosts(ctx, in, hosts)
	}
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// snapFreshHosts takes the snapshots of an instance's hosts, just built,
// for Instance.FreshSnapshot, in one call that tells the agent they are
// fresh, hosts[0] made first and the last made last (SnapshotRequest's
// fresh). A failed call is not the build's failure: the hosts have no
// snapshot then, and their user takes one itself.
func (l *Lab) snapFreshHosts(ctx context.Context, in *Instance, hosts []TopoHost) {
	req := &pb.SnapshotRequest{Fresh: true}
	for _, h := range hosts {
		req.Hosts = append(req.Hosts, in.Hosts[h.Name])
	}
	// A host's snapshot is ~50 KB: 200 hosts are more than gRPC's
	// default 4 MiB.
	r, err := l.client.SnapshotHosts(ctx, req, grpc.MaxCallRecvMsgSize(labSnapMaxBytes))
	if err != nil || len(r.Hosts) != len(hosts) {
		return
	}
	in.snapMu.Lock()
	defer in.snapMu.Unlock()
	in.snaps = map[string]*pb.SnapshotHost{}
	for k, h := range hosts {
		if r.Hosts[k].Host == req.Hosts[k] {
			in.snaps[h.Name] = r.Hosts[k]
		}
	}
}

// labSnapMaxBytes bounds the reply of snapFreshHosts.
const labSnapMaxBytes = 256 << 20
