package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lnst-go/lnst/agent"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The agents of a pool's hosts: their connections, and this session's
// lease on each, which one session at a time holds (across controllers)
// and which heartbeats keep. The scheduler (pool.Scheduler) claims a pool
// file's host through Claim as it leases it; a provisioned machine's
// lease is taken on first use (client).

// client returns the agent of a pool host, connecting on first use, with
// this process's lease on it.
func (sp *staticPool) client(name string) (pb.AgentClient, *pb.HelloReply, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	c, hello, err := sp.clientLocked(name)
	if err == nil && !sp.agentHeld[name] {
		err = sp.takeAgentLocked(name)
	}
	if err != nil {
		return nil, nil, err
	}
	return c, hello, nil
}

// clientLocked returns the agent of a pool host, connecting on first use.
// Called with sp.mu held.
func (sp *staticPool) clientLocked(name string) (pb.AgentClient, *pb.HelloReply, error) {
	if c, ok := sp.clients[name]; ok {
		return c, sp.hellos[name], nil
	}
	h, err := sp.sched.MachineHost(name)
	if err != nil {
		return nil, nil, fmt.Errorf("pool host %s: %w", name, err)
	}
	// A pool file's machine is up, or the recipe cannot run; a
	// provisioned one's agent may be starting.
	dial := h.Dial
	if sp.sched.IsSlot(name) {
		dial = h.DialStarting
	}
	conn, err := dial(context.Background(), 0)
	if err != nil {
		return nil, nil, fmt.Errorf("pool host %s: %w", name, err)
	}
	c := pb.NewAgentClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), agentCallTimeout)
	hello, err := c.Hello(ctx, &pb.HelloRequest{})
	cancel()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("pool host %s: agent %s: %w", name, h.Agent, err)
	}
	sp.conns[name], sp.clients[name], sp.hellos[name] = conn, c, hello
	return c, hello, nil
}

// agentCallTimeout bounds the calls that take and give back an agent's
// lease, made while the scheduler's lock is held.
const agentCallTimeout = 10 * time.Second

// agentIdle is how long this process keeps the lease of an agent no
// recipe of it uses (pool.SchedulerOptions.ClaimIdle): the next recipe
// here takes the host without asking again (and finds the test binary
// shipped there), while other controllers wait at most this long beyond
// the recipe's end.
const agentIdle = 2 * time.Second

// heldError is an agent's refusal of our lease: another controller holds
// the machine. It is a pool.ErrBusy to the scheduler.
type heldError struct {
	host string
	err  error
}

func (e *heldError) Error() string { return fmt.Sprintf("pool host %s is busy: %v", e.host, e.err) }
func (e *heldError) Unwrap() error { return e.err }

// Is makes a heldError a pool.ErrBusy: the recipe waits for the host.
func (e *heldError) Is(target error) bool { return target == pool.ErrBusy }

// Claim takes this session's lease on the agent of a pool file's host
// as the scheduler leases it (pool.Claims); a *heldError if another
// controller holds it.
func (sp *staticPool) Claim(name string) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.agentHeld[name] {
		return nil
	}
	return sp.takeAgentLocked(name)
}

// Unclaim gives back this session's lease on a host's agent
// (pool.Claims): no recipe of this process used the host for agentIdle,
// or its provisioned machine goes back.
func (sp *staticPool) Unclaim(name string) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.releaseAgentLocked(name)
}

// Forget closes the connection to a provisioned machine that left its
// slot (pool.Claims).
func (sp *staticPool) Forget(name string) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.forgetLocked(name)
}

// takeAgentLocked takes this session's lease on a pool host's agent and
// keeps it with heartbeats; a *heldError if another controller holds it.
// Called with sp.mu held.
func (sp *staticPool) takeAgentLocked(name string) error {
	c, _, err := sp.clientLocked(name)
	if err != nil {
		return err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	if err := sp.heartbeat(c, stop, done); err != nil {
		if agent.IsLeaseHeld(err) {
			return &heldError{host: name, err: err}
		}
		return fmt.Errorf("pool host %s: agent %s: %w", name, sp.host(name).Agent, err)
	}
	sp.stops[name], sp.beatDone[name], sp.agentHeld[name] = stop, done, true
	return nil
}

// releaseAgentLocked gives back this session's lease on a pool host's
// agent, so that other controllers may use the machine: first the test
// binary shipped there goes (the session may not change the machine
// while it does not hold the lease). Called with sp.mu held.
func (sp *staticPool) releaseAgentLocked(name string) {
	if !sp.agentHeld[name] {
		return
	}
	close(sp.stops[name])
	<-sp.beatDone[name]
	delete(sp.stops, name)
	delete(sp.beatDone, name)
	delete(sp.agentHeld, name)
	c := sp.clients[name]
	if sp.shipped != nil {
		sp.shipped.removeFrom(c, sp.session)
	}
	ctx, cancel := context.WithTimeout(context.Background(), agentCallTimeout)
	c.Release(ctx, &pb.HeartbeatRequest{Session: sp.session})
	cancel()
}

// forgetLocked ends the heartbeats to a pool host's agent and closes the
// connection: its machine was released. Called with sp.mu held.
func (sp *staticPool) forgetLocked(name string) {
	if stop := sp.stops[name]; stop != nil {
		close(stop)
	}
	if conn := sp.conns[name]; conn != nil {
		conn.Close()
	}
	if c := sp.clients[name]; c != nil && sp.shipped != nil {
		sp.shipped.forget(c)
	}
	delete(sp.stops, name)
	delete(sp.beatDone, name)
	delete(sp.agentHeld, name)
	delete(sp.conns, name)
	delete(sp.clients, name)
	delete(sp.hellos, name)
}

// forget drops the test binary shipped through c from those removed at
// the end: its machine was released.
func (sb *shippedBinaries) forget(c pb.AgentClient) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	delete(sb.hosts, c)
}

// heartbeat takes this session's lease on an agent and keeps it, sending a
// heartbeat every third of the agent's lease TTL until close (or until
// stop is closed; done is closed when they end). Should this process die,
// the agent restores the session's changes itself once the lease expires.
func (sp *staticPool) heartbeat(c pb.AgentClient, stop <-chan struct{}, done chan<- struct{}) error {
	req := &pb.HeartbeatRequest{Session: sp.session}
	ctx, cancel := context.WithTimeout(context.Background(), agentCallTimeout)
	r, err := c.Heartbeat(ctx, req)
	cancel()
	if err != nil {
		return fmt.Errorf("take a lease: %w", err)
	}
	sp.setInstance(c, r.Instance)
	every := max(r.Ttl.AsDuration()/3, 50*time.Millisecond)
	sp.beats.Add(1)
	go func() {
		defer sp.beats.Done()
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-sp.stop:
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c.Release(ctx, req)
				cancel()
				return
			case <-tick.C:
				ctx, cancel := context.WithTimeout(context.Background(), every)
				r, err := c.Heartbeat(ctx, req)
				cancel()
				sp.checkLease(c, r, err)
			}
		}
	}()
	return nil
}

// lostLease is when and why a lease on an agent was lost: it expired (the
// controller was cut off for longer than the TTL) or the agent restarted.
// Either way the agent undid this run's changes.
type lostLease struct {
	at  time.Time
	err error
}

func (sp *staticPool) setInstance(c pb.AgentClient, instance string) {
	sp.leaseMu.Lock()
	defer sp.leaseMu.Unlock()
	if sp.instances == nil {
		sp.instances, sp.lost = map[pb.AgentClient]string{}, map[pb.AgentClient]lostLease{}
	}
	sp.instances[c] = instance
	delete(sp.lost, c)
}

// checkLease notes a lost lease from a heartbeat's answer.
func (sp *staticPool) checkLease(c pb.AgentClient, r *pb.HeartbeatReply, err error) {
	sp.leaseMu.Lock()
	defer sp.leaseMu.Unlock()
	if _, lost := sp.lost[c]; lost {
		return
	}
	switch {
	case status.Code(err) == codes.FailedPrecondition:
		sp.lost[c] = lostLease{time.Now(), err}
	case err == nil && r.Instance != "" && r.Instance != sp.instances[c]:
		sp.lost[c] = lostLease{time.Now(), errors.New("the agent restarted and undid this run's changes from its journal")}
	}
}

// verifyLease sends a heartbeat now, so that an agent restarted or a lease
// expired since the last one is noticed before a recipe is judged.
func (sp *staticPool) verifyLease(c pb.AgentClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Heartbeat(ctx, &pb.HeartbeatRequest{Session: sp.session})
	sp.checkLease(c, r, err)
}

// lostSince says why the lease on c was lost after t, nil if it was not.
func (sp *staticPool) lostSince(c pb.AgentClient, t time.Time) error {
	sp.leaseMu.Lock()
	defer sp.leaseMu.Unlock()
	if l, ok := sp.lost[c]; ok && l.at.After(t) {
		return l.err
	}
	return nil
}

// stopAgents ends the heartbeats, releasing this run's lease on every
// agent (each undoes what the run left), and closes the connections.
func (sp *staticPool) stopAgents() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	select {
	case <-sp.stop:
	default:
		close(sp.stop)
	}
	sp.beats.Wait()
	clear(sp.agentHeld)
	for _, c := range sp.conns {
		c.Close()
	}
}
