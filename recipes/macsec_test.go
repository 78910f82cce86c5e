package recipes

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/lnst-go/lnst/packets"
)

// macsecTag matches a MACsec frame (EtherType 0x88e5) whose SecTAG says
// encrypted (its E and C bits) or only authenticated.
func macsecTag(encrypted bool) packets.Matcher {
	return packets.Func(fmt.Sprintf("macsec sectag encrypted=%v", encrypted), func(p *packets.Packet) bool {
		d := p.Data
		if len(d) < 16 || d[12] != 0x88 || d[13] != 0xe5 {
			return false
		}
		const e, c = 0x08, 0x04
		return (d[14]&(e|c) == e|c) == encrypted
	})
}

// TestSimpleMacsec (LNST's SimpleMacsecRecipe) protects h1's and h2's
// link with MACsec (GCM-AES-128), with encryption on and off, and pings
// both families through it; on the wire the frames carry the SecTAG
// with the E and C bits as set.
func TestSimpleMacsec(t *testing.T) {
	t.Parallel()
	m := enrtTwoHosts(t, "macsec")
	h1, h2 := m.Host("h1"), m.Host("h2")
	hosts := [2]*lnsttest.Host{h1, h2}
	for i, encrypt := range []bool{true, false} {
		t.Run(fmt.Sprintf("encrypt=%v", encrypt), func(t *testing.T) {
			var devs [2]*lnsttest.Device
			var macs [2]string
			for k, h := range hosts {
				macs[k] = h.Iface("eth0").Info(t).HWAddr.String()
				devs[k] = h.Create(t, devices.Macsec{Name: "macsec0", Parent: h.Iface("eth0").Name(), Encrypt: &encrypt})
			}
			// Each end sends with its own key and receives the
			// other's on the channel of the other's address.
			keys := [2][]byte{bytes.Repeat([]byte{0x11}, 16), bytes.Repeat([]byte{0x22}, 16)}
			for k, h := range hosts {
				h.ConfigureMacsec(t, devices.MacsecConfig{
					Link:  "macsec0",
					TxSAs: []devices.MacsecSA{{AN: 0, PN: 1, Key: keys[k], KeyID: []byte{byte(k + 1)}}},
					RxSCs: []devices.MacsecRxSC{{Address: macs[1-k], SAs: []devices.MacsecSA{{AN: 0, PN: 1, Key: keys[1-k], KeyID: []byte{byte(2 - k)}}}}},
				})
				devs[k].Up(t)
			}
			ends := enrtAddrs(t, 200+i, devs)
			for _, f := range enrtFamilies {
				enrtPing(t, h1, enrtAddr(ends[f.name][1]))
				enrtPing(t, h2, enrtAddr(ends[f.name][0]))
			}
			lnsttest.ExpectPackets(t, h1.Iface("eth0"), macsecTag(encrypt),
				func() { enrtPing(t, h1, enrtAddr(ends["ipv4"][1])) }, lnsttest.AtLeast(3))
		})
	}
}
