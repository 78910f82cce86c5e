package lnsttest_test

import (
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/devices/nft"
	"github.com/lnst-go/lnst/lnsttest"
)

// e2eXfrmSel is the source selector of the fixture's IPsec policies;
// e2eNftTable the name of its nftables table.
const (
	e2eXfrmSel  = "198.18.9.0/24"
	e2eNftTable = "lnste2e"
)

// e2eXfrm adds, as an IPsec recipe does, tunnel-mode policies out and in
// on h, and the ESP states they name where the kernel has ESP (this
// machine's lacks it: then the policies stand for both); and an nftables
// table with a chain and a rule.
func e2eXfrm(t *testing.T, h *lnsttest.Host) {
	t.Helper()
	tmpl := []devices.XfrmTmpl{{Src: "198.18.9.1", Dst: "198.18.9.2", Proto: "esp", Mode: "tunnel", Reqid: 7}}
	h.AddXfrmPolicy(t, devices.XfrmPolicy{Src: e2eXfrmSel, Dst: "198.18.11.0/24", Dir: "out", Tmpls: tmpl})
	h.AddXfrmPolicy(t, devices.XfrmPolicy{Src: "198.18.11.0/24", Dst: e2eXfrmSel, Dir: "in", Tmpls: tmpl})
	s := devices.XfrmState{Src: "198.18.9.1", Dst: "198.18.9.2", Proto: "esp", SPI: 0x777, Mode: "tunnel", Reqid: 7,
		Crypt: &devices.XfrmAlgo{Name: "cbc(aes)", Key: make([]byte, 16)},
		Auth:  &devices.XfrmAlgo{Name: "hmac(sha256)", Key: make([]byte, 32)}}
	input := nft.Chain{Family: "inet", Table: e2eNftTable, Name: "input", Hook: "input"}
	h.NftAddTable(t, nft.Table{Family: "inet", Name: e2eNftTable})
	h.NftAddChain(t, input)
	h.NftAddRules(t, input, nft.Rule{Proto: "tcp", DPort: 9, Counter: true, Verdict: "drop"})
	if ok, why := h.XfrmSupports(t, s); !ok {
		t.Logf("no ESP state in the fixture: %s", why)
		return
	}
	h.AddXfrmState(t, s)
}
