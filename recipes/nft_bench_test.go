package recipes

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices/nft"
	"github.com/lnst-go/lnst/internal/benchratio"
	"github.com/lnst-go/lnst/modules/perf"
	"github.com/lnst-go/lnst/results"
)

// TestNftRuleScaleBench measures a TCP stream from h1 through router r
// to h2 with 10,000 non-matching nftables rules on r's forward hook
// against none, in interleaved rounds (the ruleset added and removed in
// each), and prints the median of the per-round throughput ratios:
//
//	RATIO nft10k/nft0 <x> (min, max, n) [mean, 95% CI]
//
// No target: it is a kernel figure (a linear walk of the chain per
// packet) the benchmark reports. It runs only with LNST_BENCH_PERF=1.
func TestNftRuleScaleBench(t *testing.T) {
	if os.Getenv("LNST_BENCH_PERF") != "1" {
		t.Skip("a benchmark of about 30s, not a test: requires LNST_BENCH_PERF=1 (make bench sets it)")
	}
	const rules, rounds = 10000, 4
	tp := newFwdTopo(t, 186)
	prof := perf.Profile{Duration: 2 * time.Second, Iterations: 1}
	table := nft.Table{Name: "lnst_bench"}
	chain := nft.Chain{Table: table.Name, Name: "fwd", Hook: "forward"}
	none := func() float64 { return throughput(t, tp, "nft0", prof) }
	with := func() (bps float64) {
		t.Run("rules", func(t *testing.T) {
			tp.r.NftAddTable(t, table)
			tp.r.NftAddChain(t, chain)
			tp.r.NftAddRules(t, chain, nftScaleRules(rules)...)
			bps = throughput(t, tp, "nft10k", prof)
		})
		return bps
	}
	none()
	with()
	var ratios []float64
	for i := range rounds {
		var a, b float64
		if i%2 == 0 {
			a, b = with(), none()
		} else {
			b, a = none(), with()
		}
		t.Logf("round %d: %d rules %s, none %s", i, rules, results.FormatValue(a, results.UnitBitsPerSecond), results.FormatValue(b, results.UnitBitsPerSecond))
		ratios = append(ratios, a/b)
	}
	benchratio.PrintCI(fmt.Sprintf("nft%dk/nft0", rules/1000), ratios)
}
