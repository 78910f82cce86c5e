package lnsttest

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices/tc"
	"github.com/lnst-go/lnst/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImpair: an impairment becomes netem (delay, jitter, loss) or tbf (a
// rate alone), is validated with the requirements, enters the lab
// topology, and on a pool asks for interfaces that allow it.
func TestImpair(t *testing.T) {
	q, err := Impair{Delay: 20 * time.Millisecond, Loss: 1, Rate: 10 * tc.Mbit}.qdisc()
	require.NoError(t, err)
	assert.Equal(t, tc.Netem{Handle: "1:", Delay: 20 * time.Millisecond, Loss: 1, Rate: 10 * tc.Mbit}, q)
	q, err = Impair{Rate: 80 * tc.Mbit}.qdisc()
	require.NoError(t, err)
	assert.Equal(t, tc.Tbf{Handle: "1:", Rate: 80 * tc.Mbit, Burst: 50000, Latency: 50 * time.Millisecond}, q)

	req := func(im Impair) []Requirement {
		return []Requirement{HostReq("h1", IfaceReq("eth0", Net("n1"), im))}
	}
	assert.ErrorContains(t, validate(req(Impair{})), `host "h1" interface "eth0": Impair sets nothing`)
	assert.ErrorContains(t, validate(req(Impair{Loss: 150})), `host "h1" interface "eth0": netem Loss: 150 is not a percentage`)
	assert.ErrorContains(t, validate(req(Impair{Jitter: time.Millisecond})), "netem Jitter")
	require.NoError(t, validate(req(Impair{Rate: tc.Mbit})))

	topo := topology(req(Impair{Rate: tc.Mbit}))
	assert.Equal(t, tc.Tbf{Handle: "1:", Rate: tc.Mbit, Burst: 4 * 1514, Latency: 50 * time.Millisecond}, topo.Hosts[0].Ifaces[0].Impair)
	assert.Nil(t, topology(req2()).Hosts[0].Ifaces[0].Impair)

	pr := poolReqs(req(Impair{Rate: tc.Mbit}))
	assert.Equal(t, pool.Pattern{Value: "true"}, pr[0].Ifaces[0].Params[ImpairParam])
	assert.Empty(t, poolReqs(req2())[0].Ifaces[0].Params)
}

func req2() []Requirement { return []Requirement{HostReq("h1", IfaceReq("eth0", Net("n1")))} }
