package pool

import (
	"testing"

	"github.com/lnst-go/lnst/devices/tc"
	"github.com/stretchr/testify/assert"
)

// TestTopologyKeyImpair: a topology with an impaired link does not reuse
// lab hosts built without it, nor with another impairment.
func TestTopologyKeyImpair(t *testing.T) {
	topo := func(q tc.Qdisc) Topology {
		return Topology{Hosts: []TopoHost{{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1", Impair: q}}}}}
	}
	plain := topo(nil).key()
	slow := topo(tc.Tbf{Rate: tc.Mbit, Burst: 6000, Limit: 9000}).key()
	slower := topo(tc.Tbf{Rate: tc.Kbit * 500, Burst: 6000, Limit: 9000}).key()
	assert.NotEqual(t, plain, slow)
	assert.NotEqual(t, slow, slower)
	assert.Equal(t, slow, topo(tc.Tbf{Rate: tc.Mbit, Burst: 6000, Limit: 9000}).key())
}
