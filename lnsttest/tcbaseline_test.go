package lnsttest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTcBaseline saves a lab host's interface qdiscs as a run's first
// use of a pool machine does, leaves a raw tc change on it as a recipe
// might, and resets: the qdisc it had comes back; a second use keeps the
// first save.
func TestTcBaseline(t *testing.T) {
	lh := localLabHost(t)
	eth0 := lh.eth0
	sh := func(cmd string) string { t.Helper(); return lh.sh(t, cmd) }
	h := &Host{client: lh.lab.Client(), name: "h1", id: lh.id, ifaces: map[string]string{"eth0": eth0}}
	sess := &session{}
	st := current().state(t)

	sh("tc qdisc add dev " + eth0 + " ingress")
	t.Cleanup(func() {
		sh("tc qdisc del dev " + eth0 + " ingress 2>/dev/null; tc qdisc del dev " + eth0 + " root 2>/dev/null; true")
	})
	before := sh("tc qdisc show dev " + eth0)
	devs := sess.saveQdiscs(t, "m1", h)
	require.Len(t, devs, 1)

	sh("tc qdisc del dev " + eth0 + " ingress && tc qdisc add dev " + eth0 + " root handle 3: htb")
	// A later recipe's first use keeps the run's first save.
	sess.saveQdiscs(t, "m1", h)
	sess.resetQdiscs(st, devs)
	assert.Equal(t, before, sh("tc qdisc show dev "+eth0))
}
