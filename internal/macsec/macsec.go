// Package macsec builds the netlink messages of MACsec devices, which
// vishvananda/netlink does not model: the rtnetlink link kind "macsec"
// (RTM_NEWLINK with its IFLA_MACSEC_* data) and the requests of the
// "macsec" generic netlink family that install secure channels and
// associations with their keys (what ip macsec add does). It only
// encodes; the caller sends the messages in the device's namespace.
package macsec

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The macsec generic netlink family (include/uapi/linux/if_macsec.h).
const (
	GenlName    = "macsec"
	GenlVersion = 1
)

// Commands of the family.
const (
	CmdGetTxSC = iota
	CmdAddRxSC
	CmdDelRxSC
	CmdUpdRxSC
	CmdAddTxSA
	CmdDelTxSA
	CmdUpdTxSA
	CmdAddRxSA
	CmdDelRxSA
	CmdUpdRxSA
)

// Top-level attributes (enum macsec_attrs).
const (
	AttrIfindex    = 1
	AttrRxSCConfig = 2
	AttrSAConfig   = 3
)

// Receive channel attributes (enum macsec_rxsc_attrs).
const (
	RxSCAttrSCI    = 1
	RxSCAttrActive = 2
)

// Association attributes (enum macsec_sa_attrs).
const (
	SAAttrAN     = 1
	SAAttrActive = 2
	SAAttrPN     = 3
	SAAttrKey    = 4
	SAAttrKeyID  = 5
	SAAttrSSCI   = 8
	SAAttrSalt   = 9
)

// KeyIDLen is the length of MACSEC_SA_ATTR_KEYID, which the kernel
// wants exactly.
const KeyIDLen = 16

// Validation modes (enum macsec_validation_type).
var validation = map[string]uint8{"disabled": 0, "check": 1, "": 2, "strict": 2}

func u8(v bool) []byte {
	if v {
		return []byte{1}
	}
	return []byte{0}
}

// LinkData validates m and returns the attributes of its IFLA_INFO_DATA
// (IFLA_MACSEC_*).
func LinkData(m devices.Macsec) ([]*nl.RtAttr, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	suite := devices.MacsecCiphers[m.CipherName()]
	port := m.Port
	if port == 0 {
		port = 1
	}
	icv := m.ICVLen
	if icv == 0 {
		icv = 16
	}
	encrypt := m.Encrypt == nil || *m.Encrypt
	attrs := []*nl.RtAttr{
		nl.NewRtAttr(unix.IFLA_MACSEC_PORT, binary.BigEndian.AppendUint16(nil, uint16(port))),
		nl.NewRtAttr(unix.IFLA_MACSEC_CIPHER_SUITE, nl.Uint64Attr(suite.ID)),
		nl.NewRtAttr(unix.IFLA_MACSEC_ICV_LEN, []byte{uint8(icv)}),
		nl.NewRtAttr(unix.IFLA_MACSEC_ENCRYPT, u8(encrypt)),
		nl.NewRtAttr(unix.IFLA_MACSEC_ENCODING_SA, []byte{uint8(m.EncodingSA)}),
		nl.NewRtAttr(unix.IFLA_MACSEC_VALIDATION, []byte{validation[m.Validation]}),
		nl.NewRtAttr(unix.IFLA_MACSEC_INC_SCI, u8(m.IncludeSCI)),
	}
	if m.ReplayWindow != nil {
		attrs = append(attrs,
			nl.NewRtAttr(unix.IFLA_MACSEC_REPLAY_PROTECT, u8(true)),
			nl.NewRtAttr(unix.IFLA_MACSEC_WINDOW, nl.Uint32Attr(*m.ReplayWindow)))
	}
	return attrs, nil
}

// NewLink returns the payload of an RTM_NEWLINK request that makes m on
// the device with index parent: ifinfomsg, IFLA_IFNAME, IFLA_LINK and
// IFLA_LINKINFO with kind "macsec" and LinkData.
func NewLink(m devices.Macsec, parent int) ([]nl.NetlinkRequestData, error) {
	data, err := LinkData(m)
	if err != nil {
		return nil, err
	}
	if parent <= 0 {
		return nil, fmt.Errorf("macsec %s: parent %q has no ifindex", m.Name, m.Parent)
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("macsec"))
	d := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	for _, a := range data {
		d.AddChild(a)
	}
	return []nl.NetlinkRequestData{
		nl.NewIfInfomsg(unix.AF_UNSPEC),
		nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(m.Name)),
		nl.NewRtAttr(unix.IFLA_LINK, nl.Uint32Attr(uint32(parent))),
		info,
	}, nil
}

// Message is one generic netlink request of the family: its command and
// payload (genlmsghdr and attributes).
type Message struct {
	Cmd  uint8
	Data []byte
}

func genl(cmd uint8, attrs ...*nl.RtAttr) Message {
	b := (&nl.Genlmsg{Command: cmd, Version: GenlVersion}).Serialize()
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return Message{Cmd: cmd, Data: b}
}

// saAttr is MACSEC_ATTR_SA_CONFIG of sa.
func saAttr(sa devices.MacsecSA, xpn, withKey bool) *nl.RtAttr {
	a := nl.NewRtAttr(AttrSAConfig|unix.NLA_F_NESTED, nil)
	a.AddRtAttr(SAAttrAN, []byte{uint8(sa.AN)})
	a.AddRtAttr(SAAttrActive, u8(!sa.Inactive))
	pn := sa.PN
	if pn == 0 {
		pn = 1
	}
	if xpn {
		a.AddRtAttr(SAAttrPN, nl.Uint64Attr(pn))
	} else {
		a.AddRtAttr(SAAttrPN, nl.Uint32Attr(uint32(pn)))
	}
	if withKey {
		keyID := make([]byte, KeyIDLen)
		copy(keyID, sa.KeyID)
		a.AddRtAttr(SAAttrKeyID, keyID)
		a.AddRtAttr(SAAttrKey, sa.Key)
		if xpn {
			a.AddRtAttr(SAAttrSSCI, nl.Uint32Attr(sa.SSCI))
			a.AddRtAttr(SAAttrSalt, sa.Salt)
		}
	}
	return a
}

// rxscAttr is MACSEC_ATTR_RXSC_CONFIG naming channel sci, active when
// it makes one (an association names its channel by the SCI alone).
func rxscAttr(sci [8]byte, active bool) *nl.RtAttr {
	a := nl.NewRtAttr(AttrRxSCConfig|unix.NLA_F_NESTED, nil)
	a.AddRtAttr(RxSCAttrSCI, sci[:])
	if active {
		a.AddRtAttr(RxSCAttrActive, u8(true))
	}
	return a
}

// Messages validates c and returns the requests that install it on the
// device with index ifindex, in order: each transmit association, then
// each receive channel followed by its associations.
func Messages(c devices.MacsecConfig, ifindex int) ([]Message, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if ifindex <= 0 {
		return nil, errors.New("macsec: no device index")
	}
	cipher := c.Cipher
	if cipher == "" {
		cipher = "gcm-aes-128"
	}
	xpn := devices.MacsecCiphers[cipher].XPN
	dev := func() *nl.RtAttr { return nl.NewRtAttr(AttrIfindex, nl.Uint32Attr(uint32(ifindex))) }
	var msgs []Message
	for _, sa := range c.TxSAs {
		msgs = append(msgs, genl(CmdAddTxSA, dev(), saAttr(sa, xpn, true)))
	}
	for _, sc := range c.RxSCs {
		sci, _ := sc.SCI()
		msgs = append(msgs, genl(CmdAddRxSC, dev(), rxscAttr(sci, true)))
		for _, sa := range sc.SAs {
			msgs = append(msgs, genl(CmdAddRxSA, dev(), rxscAttr(sci, false), saAttr(sa, xpn, true)))
		}
	}
	return msgs, nil
}
