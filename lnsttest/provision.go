package lnsttest

import (
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
)

// Machines of a pool file's provisioners join the pool as slots
// (pool.Scheduler): the first recipe that leases a slot reserves a
// machine for it, later recipes reuse that machine while it is alive,
// and a machine no recipe uses for the provisioner's idle time is
// released. These are lnsttest's adapters to it.

// provision makes sure every slot of a mapping this recipe leased holds a
// live machine (pool.Scheduler.Provision), logging through t.
func (sp *staticPool) provision(t *testing.T, m pool.Mapping) error {
	t.Helper()
	return sp.sched.Provision(t.Context(), m, func(format string, args ...any) {
		t.Logf("lnsttest: "+format, args...)
	})
}

// deadHost is a provisioned machine found dead when a recipe ended.
type deadHost struct {
	why    string
	client pb.AgentClient // the recipe's connection to it, nil if none
}

// settle checks, when a recipe ends, the slots it leased
// (pool.Scheduler.Settle): a dead machine is released, a live one waits
// idle for the next recipe. It returns what died, with the recipe's
// connections to it.
func (sp *staticPool) settle(m pool.Mapping) []deadHost {
	clients := map[string]pb.AgentClient{} // gone from sp once the machine is released
	sp.mu.Lock()
	for _, hm := range m.Hosts {
		clients[hm.Pool] = sp.clients[hm.Pool]
	}
	sp.mu.Unlock()
	var dead []deadHost
	for _, d := range sp.sched.Settle(m) {
		dead = append(dead, deadHost{why: d.Why, client: clients[d.Host]})
	}
	return dead
}

// allMatches is pool.Scheduler.AllMatches for ForEachMatch: every
// provisioner's machines counted once.
func (sp *staticPool) allMatches(reqs []pool.HostReq) ([]pool.Mapping, error) {
	return sp.sched.AllMatches(reqs)
}
