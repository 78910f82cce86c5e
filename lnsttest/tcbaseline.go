package lnsttest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Pool machines keep their qdiscs between recipes, LNST-style: when a run
// first uses a matched interface of a pool host, the root and ingress
// qdiscs it has are saved on the controller, and after each recipe that
// matched it they are put back, whatever the recipe did (a raw tc command
// too, which no journal holds). What the recipe did through Device's tc
// methods its own restore has already taken back.

// tcBaselines are the saved qdiscs, by pool host and interface.
type tcBaselines struct {
	mu    sync.Mutex
	saved map[tcDev][]byte
}

// tcDev is an interface of a pool host, by its real name, with the agent
// that serves it and the agent's name of the host.
type tcDev struct {
	pool, dev string
	client    pb.AgentClient
	host      string
}

func (d tcDev) key() tcDev { return tcDev{pool: d.pool, dev: d.dev} }

// saveQdiscs saves, on first use in the run, the qdiscs of the matched
// interfaces of h, pool host poolHost, and returns them to reset after the
// recipe. An agent without the call is left alone.
func (s *session) saveQdiscs(t testing.TB, poolHost string, h *Host) []tcDev {
	t.Helper()
	var devs []tcDev
	for _, name := range h.ifaces {
		c := h.client
		d := tcDev{pool: poolHost, dev: name, client: c, host: h.id}
		s.tcBase.mu.Lock()
		_, done := s.tcBase.saved[d.key()]
		s.tcBase.mu.Unlock()
		if !done {
			r, err := c.TcSaveQdiscs(rpcCtx(t), &pb.TcListRequest{Host: h.id, Dev: name})
			if status.Code(err) == codes.Unimplemented {
				continue
			}
			if err != nil {
				t.Fatalf("lnsttest.Require: pool host %s: save the qdiscs of %s: %v", poolHost, name, err)
			}
			s.tcBase.mu.Lock()
			if s.tcBase.saved == nil {
				s.tcBase.saved = map[tcDev][]byte{}
			}
			if _, ok := s.tcBase.saved[d.key()]; !ok {
				s.tcBase.saved[d.key()] = r.State
			}
			s.tcBase.mu.Unlock()
		}
		devs = append(devs, d)
	}
	slices.SortFunc(devs, func(a, b tcDev) int { return strings.Compare(a.dev, b.dev) })
	return devs
}

// resetQdiscs puts back the saved qdiscs of devs after a recipe; what it
// had to change is logged, a failure fails the recipe.
func (s *session) resetQdiscs(st *testState, devs []tcDev) {
	st.t.Helper()
	for _, d := range devs {
		s.tcBase.mu.Lock()
		saved, ok := s.tcBase.saved[d.key()]
		s.tcBase.mu.Unlock()
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		r, err := d.client.TcResetQdiscs(ctx, &pb.TcResetRequest{Host: d.host, Dev: d.dev, State: saved})
		cancel()
		if err != nil {
			st.t.Errorf("pool host %s: put back the qdiscs %s had when the run began: %v", d.pool, d.dev, err)
			continue
		}
		for _, c := range r.Changed {
			st.logger().Warn("qdisc put back as it was when the run began", "host", d.pool, "dev", d.dev, "change", c)
		}
	}
}
