package recipes

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/modules"
)

// nftScaleRules is how many non-matching rules TestNftablesRuleScale
// puts in front of the flow.
const nftScaleRules = 10000

// TestNftablesRuleScale (LNST's NftablesRuleScale) measures a TCP flow
// from h1 to h2 without firewall rules, then with 10,000 rules on h2's
// input hook that each test the packet and none of which match (tcp
// dport 10000 and up; the flow goes to 5201), and records the ratio of
// the throughputs as "nft10k/nft0" (a kernel figure: no target). A rule
// that does match then keeps the flow from connecting, which shows the
// chain is in its path.
func TestNftablesRuleScale(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	_, a2 := enrtUnderlay(t, h1, h2, enrtFamilies[0], 230)
	base := enrtIperf(t, h1, h2, a2, false)

	h2.AddNftTable(t, devices.NftTable{Family: "inet", Name: "lnstscale"})
	h2.AddNftChain(t, devices.NftChain{Family: "inet", Table: "lnstscale", Name: "input", Hook: "input"})
	for start := 0; start < nftScaleRules; start += 1000 {
		rules := devices.NftRules{Family: "inet", Table: "lnstscale", Chain: "input"}
		for i := start; i < start+1000; i++ {
			rules.Rules = append(rules.Rules, devices.NftRule{Proto: "tcp", DPort: 10000 + i, Verdict: "drop"})
		}
		h2.AddNftRules(t, rules)
	}
	with := enrtIperf(t, h1, h2, a2, false)
	ratio := with.BitsPerSecond / base.BitsPerSecond
	lnsttest.Record(t, "nft10k/nft0", ratio)
	t.Logf("RATIO nft10k/nft0 %.3f (%.0f against %.0f bit/s)", ratio, with.BitsPerSecond, base.BitsPerSecond)

	// The chain is in the flow's path: one rule that matches, and the
	// flow cannot connect.
	h2.AddNftRules(t, devices.NftRules{Family: "inet", Table: "lnstscale", Chain: "input",
		Rules: []devices.NftRule{{Proto: "tcp", DPort: 5201, Verdict: "drop"}}})
	srv := modules.Iperf3Server{Bind: a2}.Start(t, h2)
	h1.Run(t, "iperf3 -c "+a2+" -t 1 --connect-timeout 1000", lnsttest.ExpectFail(), lnsttest.Timeout(30*time.Second))
	srv.Stop(t)
}
