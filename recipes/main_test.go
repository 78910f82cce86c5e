// Package recipes is the lnst-go recipe suite: ENRT-like tests that run on
// the local lab with no flags, or on a pool of machines.
package recipes

import (
	"testing"

	"github.com/lnst-go/lnst/lnsttest"
)

func TestMain(m *testing.M) { lnsttest.Main(m) }

// twoHosts requires hosts h1 and h2, each with eth0 on network n1.
func twoHosts(t *testing.T) *lnsttest.Match {
	t.Helper()
	return lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
}
