package macsec

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// attrMap parses netlink attributes by type (flags masked off).
func attrMap(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		t.Fatal(err)
	}
	m := map[uint16][]byte{}
	for _, a := range attrs {
		m[a.Attr.Type&nl.NLA_TYPE_MASK] = a.Value
	}
	return m
}

func TestLinkData(t *testing.T) {
	off := false
	window := uint32(32)
	attrs, err := LinkData(devices.Macsec{Name: "macsec0", Parent: "eth0", Port: 7, Cipher: "gcm-aes-256", Encrypt: &off, EncodingSA: 2, Validation: "check", ReplayWindow: &window, IncludeSCI: true})
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	m := attrMap(t, b)
	check := func(name string, typ int, want []byte) {
		t.Helper()
		if !bytes.Equal(m[uint16(typ)], want) {
			t.Errorf("%s: %x, want %x", name, m[uint16(typ)], want)
		}
	}
	check("port (big-endian)", unix.IFLA_MACSEC_PORT, []byte{0, 7})
	check("cipher", unix.IFLA_MACSEC_CIPHER_SUITE, binary.NativeEndian.AppendUint64(nil, 0x0080C20001000002))
	check("icv len", unix.IFLA_MACSEC_ICV_LEN, []byte{16})
	check("encrypt", unix.IFLA_MACSEC_ENCRYPT, []byte{0})
	check("encoding sa", unix.IFLA_MACSEC_ENCODING_SA, []byte{2})
	check("validation", unix.IFLA_MACSEC_VALIDATION, []byte{1})
	check("send sci", unix.IFLA_MACSEC_INC_SCI, []byte{1})
	check("replay", unix.IFLA_MACSEC_REPLAY_PROTECT, []byte{1})
	check("window", unix.IFLA_MACSEC_WINDOW, binary.NativeEndian.AppendUint32(nil, 32))

	// The defaults: encryption on, gcm-aes-128, strict, no replay attrs.
	attrs, err = LinkData(devices.Macsec{Name: "macsec0", Parent: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	b = nil
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	m = attrMap(t, b)
	check("default encrypt", unix.IFLA_MACSEC_ENCRYPT, []byte{1})
	check("default port", unix.IFLA_MACSEC_PORT, []byte{0, 1})
	check("default cipher", unix.IFLA_MACSEC_CIPHER_SUITE, binary.NativeEndian.AppendUint64(nil, 0x0080C20001000001))
	check("default validation", unix.IFLA_MACSEC_VALIDATION, []byte{2})
	if _, ok := m[unix.IFLA_MACSEC_WINDOW]; ok {
		t.Error("a window without ReplayWindow")
	}
}

func TestNewLink(t *testing.T) {
	data, err := NewLink(devices.Macsec{Name: "macsec0", Parent: "eth0"}, 5)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, d := range data {
		b = append(b, d.Serialize()...)
	}
	m := attrMap(t, b[unix.SizeofIfInfomsg:])
	if string(m[unix.IFLA_IFNAME]) != "macsec0\x00" {
		t.Errorf("name %q", m[unix.IFLA_IFNAME])
	}
	if binary.NativeEndian.Uint32(m[unix.IFLA_LINK]) != 5 {
		t.Errorf("link %x", m[unix.IFLA_LINK])
	}
	info := attrMap(t, m[unix.IFLA_LINKINFO])
	if string(info[nl.IFLA_INFO_KIND]) != "macsec" {
		t.Errorf("kind %q", info[nl.IFLA_INFO_KIND])
	}
	if d := attrMap(t, info[nl.IFLA_INFO_DATA]); len(d[unix.IFLA_MACSEC_CIPHER_SUITE]) != 8 {
		t.Errorf("info data %v", d)
	}
	if _, err := NewLink(devices.Macsec{Name: "macsec0", Parent: "eth0"}, 0); err == nil {
		t.Error("parent index 0 taken")
	}
	if _, err := NewLink(devices.Macsec{Name: "macsec0"}, 5); err == nil || !strings.Contains(err.Error(), "Parent") {
		t.Errorf("no parent: %v", err)
	}
}

func TestMessages(t *testing.T) {
	tx := bytes.Repeat([]byte{1}, 16)
	rx := bytes.Repeat([]byte{2}, 16)
	msgs, err := Messages(devices.MacsecConfig{
		Link:  "macsec0",
		TxSAs: []devices.MacsecSA{{AN: 0, PN: 1, Key: tx, KeyID: []byte{0xab}}},
		RxSCs: []devices.MacsecRxSC{{Address: "02:00:00:00:00:02", Port: 1, SAs: []devices.MacsecSA{{AN: 1, Key: rx, KeyID: []byte{0xcd}}}}},
	}, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[0].Cmd != CmdAddTxSA || msgs[1].Cmd != CmdAddRxSC || msgs[2].Cmd != CmdAddRxSA {
		t.Fatalf("commands %v", msgs)
	}
	sci := []byte{2, 0, 0, 0, 0, 2, 0, 1}
	for i, msg := range msgs {
		if msg.Data[0] != msg.Cmd || msg.Data[1] != GenlVersion {
			t.Errorf("message %d: genl header %x", i, msg.Data[:4])
		}
		m := attrMap(t, msg.Data[4:])
		if binary.NativeEndian.Uint32(m[AttrIfindex]) != 9 {
			t.Errorf("message %d: ifindex %x", i, m[AttrIfindex])
		}
		if i > 0 {
			rxsc := attrMap(t, m[AttrRxSCConfig])
			if !bytes.Equal(rxsc[RxSCAttrSCI], sci) {
				t.Errorf("message %d: sci %x, want %x (address then port, big-endian)", i, rxsc[RxSCAttrSCI], sci)
			}
		}
	}
	sa := attrMap(t, attrMap(t, msgs[0].Data[4:])[AttrSAConfig])
	wantID := append([]byte{0xab}, make([]byte, 15)...)
	if sa[SAAttrAN][0] != 0 || sa[SAAttrActive][0] != 1 || binary.NativeEndian.Uint32(sa[SAAttrPN]) != 1 || !bytes.Equal(sa[SAAttrKey], tx) || !bytes.Equal(sa[SAAttrKeyID], wantID) {
		t.Errorf("tx sa %x", sa)
	}
	sa = attrMap(t, attrMap(t, msgs[2].Data[4:])[AttrSAConfig])
	if sa[SAAttrAN][0] != 1 || !bytes.Equal(sa[SAAttrKey], rx) || len(sa[SAAttrPN]) != 4 {
		t.Errorf("rx sa %x", sa)
	}
	// XPN: 64-bit packet numbers, SSCI and salt.
	msgs, err = Messages(devices.MacsecConfig{Link: "macsec0", Cipher: "gcm-aes-xpn-128",
		TxSAs: []devices.MacsecSA{{AN: 3, PN: 1 << 40, Key: tx, SSCI: 5, Salt: make([]byte, 12)}}}, 9)
	if err != nil {
		t.Fatal(err)
	}
	sa = attrMap(t, attrMap(t, msgs[0].Data[4:])[AttrSAConfig])
	if binary.NativeEndian.Uint64(sa[SAAttrPN]) != 1<<40 || binary.NativeEndian.Uint32(sa[SAAttrSSCI]) != 5 || len(sa[SAAttrSalt]) != 12 {
		t.Errorf("xpn sa %x", sa)
	}
}

func TestConfigValidate(t *testing.T) {
	k16 := make([]byte, 16)
	for _, tc := range []struct {
		c    devices.MacsecConfig
		want string
	}{
		{devices.MacsecConfig{Link: "m0", TxSAs: []devices.MacsecSA{{AN: 4, Key: k16}}}, "AN 4"},
		{devices.MacsecConfig{Link: "m0", Cipher: "gcm-aes-256", TxSAs: []devices.MacsecSA{{Key: k16}}}, "key is 16 bytes, gcm-aes-256 wants 32"},
		{devices.MacsecConfig{Link: "m0", TxSAs: []devices.MacsecSA{{Key: k16, KeyID: make([]byte, 17)}}}, "KeyID is 17 bytes"},
		{devices.MacsecConfig{Link: "m0", RxSCs: []devices.MacsecRxSC{{Address: "nope"}}}, `"nope" is not an Ethernet address`},
		{devices.MacsecConfig{Link: "m0", Cipher: "gcm-aes-xpn-128", TxSAs: []devices.MacsecSA{{Key: k16}}}, "Salt is 0 bytes"},
		{devices.MacsecConfig{Link: "m0", TxSAs: []devices.MacsecSA{{Key: k16, PN: 1 << 33}}}, "above 32 bits"},
		{devices.MacsecConfig{Link: "m0", Cipher: "rot13"}, `"rot13" is not one of`},
	} {
		if _, err := Messages(tc.c, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	for _, tc := range []struct {
		m    devices.Macsec
		want string
	}{
		{devices.Macsec{Name: "m0"}, "Parent: is required"},
		{devices.Macsec{Name: "m0", Parent: "eth0", ICVLen: 4}, "ICVLen: 4"},
		{devices.Macsec{Name: "m0", Parent: "eth0", EncodingSA: 4}, "EncodingSA: 4"},
		{devices.Macsec{Name: "m0", Parent: "eth0", Validation: "lax"}, `Validation: "lax"`},
	} {
		if err := tc.m.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.m, err, tc.want)
		}
	}
}
