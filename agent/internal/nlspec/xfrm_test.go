package nlspec

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// xfrmAttrs splits a NEWSA payload built by XfrmStateMsg into its header
// and attributes by type, as the kernel reads them.
func xfrmAttrs(t *testing.T, data []nl.NetlinkRequestData) (*nl.XfrmUsersaInfo, map[uint16][]byte) {
	t.Helper()
	var b []byte
	for _, d := range data {
		b = append(b, d.Serialize()...)
	}
	if len(b) < nl.SizeofXfrmUsersaInfo {
		t.Fatalf("payload of %d bytes, shorter than xfrm_usersa_info", len(b))
	}
	hdr := *nl.DeserializeXfrmUsersaInfo(b)
	attrs, err := nl.ParseRouteAttr(b[nl.SizeofXfrmUsersaInfo:])
	if err != nil {
		t.Fatal(err)
	}
	m := map[uint16][]byte{}
	for _, a := range attrs {
		if _, dup := m[a.Attr.Type]; dup {
			t.Fatalf("attribute %d twice", a.Attr.Type)
		}
		m[a.Attr.Type] = a.Value
	}
	return &hdr, m
}

// algo decodes struct xfrm_algo (name, key length in bits, key), and
// with extra the 4 bytes after the length (trunc or ICV length).
func algo(t *testing.T, v []byte, extra bool) (name string, bits, more uint32, key []byte) {
	t.Helper()
	name = string(bytes.TrimRight(v[:64], "\x00"))
	bits = binary.NativeEndian.Uint32(v[64:68])
	off := 68
	if extra {
		more = binary.NativeEndian.Uint32(v[68:72])
		off = 72
	}
	return name, bits, more, v[off:]
}

func TestXfrmStateMsgEspCbcHmac(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 16)
	akey := bytes.Repeat([]byte{2}, 32)
	msg, err := XfrmStateMsg(devices.XfrmState{
		Src: "198.18.1.1", Dst: "198.18.1.2", Proto: "esp", SPI: 0x12345678, Mode: "tunnel", Reqid: 9,
		ReplayWindow: 32, Crypt: &devices.XfrmAlgo{Name: "cbc(aes)", Key: key},
		Auth: &devices.XfrmAlgo{Name: "hmac(sha256)", Key: akey}, Mark: 0x42, IfID: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	hdr, attrs := xfrmAttrs(t, msg)
	// The SPI is in network byte order, as the kernel keeps it.
	if got := binary.BigEndian.Uint32(nativeBytes(hdr.Id.Spi)); got != 0x12345678 {
		t.Errorf("spi on the wire %#x, want 0x12345678", got)
	}
	if hdr.Family != unix.AF_INET || hdr.Id.Proto != unix.IPPROTO_ESP || hdr.Mode != uint8(netlink.XFRM_MODE_TUNNEL) || hdr.Reqid != 9 || hdr.ReplayWindow != 32 {
		t.Errorf("header %+v", hdr)
	}
	if !net.IP(hdr.Id.Daddr[:4]).Equal(net.ParseIP("198.18.1.2")) || !net.IP(hdr.Saddr[:4]).Equal(net.ParseIP("198.18.1.1")) {
		t.Errorf("addresses %v -> %v", hdr.Saddr, hdr.Id.Daddr)
	}
	// No limits: the kernel's "infinite" lifetime, as ip xfrm sets.
	if hdr.Lft.HardByteLimit != nl.XFRM_INF || hdr.Lft.SoftPacketLimit != nl.XFRM_INF {
		t.Errorf("lifetime %+v", hdr.Lft)
	}
	name, bits, _, k := algo(t, attrs[nl.XFRMA_ALG_CRYPT], false)
	if name != "cbc(aes)" || bits != 128 || !bytes.Equal(k, key) {
		t.Errorf("crypt %q %d bits key %x", name, bits, k)
	}
	name, bits, trunc, k := algo(t, attrs[nl.XFRMA_ALG_AUTH_TRUNC], true)
	if name != "hmac(sha256)" || bits != 256 || trunc != 128 || !bytes.Equal(k, akey) {
		t.Errorf("auth %q %d bits trunc %d key %x", name, bits, trunc, k)
	}
	if m := attrs[nl.XFRMA_MARK]; len(m) != 8 || binary.NativeEndian.Uint32(m) != 0x42 || binary.NativeEndian.Uint32(m[4:]) != 0xffffffff {
		t.Errorf("mark %x: want 0x42 with mask 0xffffffff", m)
	}
	if v := attrs[nl.XFRMA_IF_ID]; len(v) != 4 || binary.NativeEndian.Uint32(v) != 7 {
		t.Errorf("if_id %x", v)
	}
	if _, ok := attrs[nl.XFRMA_ALG_AEAD]; ok {
		t.Error("an AEAD attribute in a cbc+hmac state")
	}
}

func TestXfrmStateMsgAeadV6(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 36)
	msg, err := XfrmStateMsg(devices.XfrmState{
		Src: "2001:db8::1", Dst: "2001:db8::2", Proto: "esp", SPI: 0x200, Mode: "transport",
		Aead: &devices.XfrmAlgo{Name: "rfc4106(gcm(aes))", Key: key, ICVLen: 96},
	})
	if err != nil {
		t.Fatal(err)
	}
	hdr, attrs := xfrmAttrs(t, msg)
	if hdr.Family != unix.AF_INET6 || !net.IP(hdr.Id.Daddr[:]).Equal(net.ParseIP("2001:db8::2")) {
		t.Errorf("header %+v", hdr)
	}
	name, bits, icv, k := algo(t, attrs[nl.XFRMA_ALG_AEAD], true)
	if name != "rfc4106(gcm(aes))" || bits != 288 || icv != 96 || !bytes.Equal(k, key) {
		t.Errorf("aead %q %d bits icv %d", name, bits, icv)
	}
	for _, a := range []int{nl.XFRMA_ALG_CRYPT, nl.XFRMA_ALG_AUTH_TRUNC, nl.XFRMA_MARK, nl.XFRMA_IF_ID} {
		if _, ok := attrs[uint16(a)]; ok {
			t.Errorf("attribute %d in a plain AEAD state", a)
		}
	}
}

func TestXfrmStateMsgAhComp(t *testing.T) {
	msg, err := XfrmStateMsg(devices.XfrmState{
		Src: "198.18.1.1", Dst: "198.18.1.2", Proto: "comp", SPI: 0x4242, Mode: "tunnel",
		Comp: &devices.XfrmAlgo{Name: "deflate"},
	})
	if err != nil {
		t.Fatal(err)
	}
	hdr, attrs := xfrmAttrs(t, msg)
	if hdr.Id.Proto != unix.IPPROTO_COMP {
		t.Errorf("proto %d", hdr.Id.Proto)
	}
	if name, bits, _, k := algo(t, attrs[nl.XFRMA_ALG_COMP], false); name != "deflate" || bits != 0 || len(k) != 0 {
		t.Errorf("comp %q %d %x", name, bits, k)
	}
	// AH: authentication alone, no cipher (ESP would get cipher_null).
	msg, err = XfrmStateMsg(devices.XfrmState{
		Src: "198.18.1.1", Dst: "198.18.1.2", Proto: "ah", SPI: 0x300, Mode: "transport",
		Auth: &devices.XfrmAlgo{Name: "hmac(sha1)", Key: bytes.Repeat([]byte{4}, 20)},
	})
	if err != nil {
		t.Fatal(err)
	}
	hdr, attrs = xfrmAttrs(t, msg)
	if hdr.Id.Proto != unix.IPPROTO_AH {
		t.Errorf("proto %d", hdr.Id.Proto)
	}
	if _, ok := attrs[nl.XFRMA_ALG_CRYPT]; ok {
		t.Error("AH state has a cipher")
	}
	if _, _, trunc, _ := algo(t, attrs[nl.XFRMA_ALG_AUTH_TRUNC], true); trunc != 96 {
		t.Errorf("hmac(sha1) default truncation %d, want 96", trunc)
	}
}

func TestXfrmStateMsgInvalid(t *testing.T) {
	_, err := XfrmStateMsg(devices.XfrmState{Src: "198.18.1.1", Dst: "198.18.1.2", Proto: "esp", Mode: "transport",
		Crypt: &devices.XfrmAlgo{Name: "cbc(aes)", Key: make([]byte, 16)}})
	if err == nil || !strings.Contains(err.Error(), "SPI") {
		t.Fatalf("SPI 0: %v", err)
	}
}

func TestXfrmPolicyMapping(t *testing.T) {
	p := devices.XfrmPolicy{
		Src: "198.18.1.0/24", Dst: "198.18.2.0/24", Dir: "fwd", Proto: "tcp", Priority: 10, Mark: 3, MarkMask: 0xff, IfID: 4,
		Tmpls: []devices.XfrmTmpl{
			{Proto: "comp", Mode: "tunnel", Src: "198.18.0.1", Dst: "198.18.0.2", Optional: true},
			{Proto: "esp", Mode: "tunnel", Src: "198.18.0.1", Dst: "198.18.0.2", SPI: 0x100, Reqid: 2},
		},
	}
	np, err := XfrmPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	if np.Dir != netlink.XFRM_DIR_FWD || np.Proto != unix.IPPROTO_TCP || np.Mark.Value != 3 || np.Mark.Mask != 0xff || np.Ifid != 4 || np.Src.String() != "198.18.1.0/24" {
		t.Errorf("policy %v", np)
	}
	if len(np.Tmpls) != 2 || np.Tmpls[0].Proto != netlink.XFRM_PROTO_COMP || np.Tmpls[0].Optional != 1 || np.Tmpls[1].Spi != 0x100 || np.Tmpls[1].Mode != netlink.XFRM_MODE_TUNNEL {
		t.Errorf("templates %v", np.Tmpls)
	}
	// Read back as the kernel would list it, it is the same spec.
	back := XfrmPolicySpec(*np)
	if back.String() != p.String() || len(back.Tmpls) != 2 || back.Tmpls[1] != p.Tmpls[1] || back.Tmpls[0] != p.Tmpls[0] || back.Proto != "tcp" {
		t.Errorf("read back %+v, want %+v", back, p)
	}
	if _, err := XfrmPolicy(devices.XfrmPolicy{Src: "198.18.1.0/24", Dst: "198.18.2.0/24", Dir: "sideways"}); err == nil {
		t.Error("dir sideways taken")
	}
}

// nativeBytes is v as it lies in memory (and so in the message).
func nativeBytes(v uint32) []byte {
	return binary.NativeEndian.AppendUint32(nil, v)
}
