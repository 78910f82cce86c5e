package devices

import (
	"bytes"
	"strings"
	"testing"
)

func xfrmKey(n int) []byte { return bytes.Repeat([]byte{0x5a}, n) }

// goodEsp is an ESP state with AES-CBC and HMAC-SHA256.
func goodEsp() XfrmState {
	return XfrmState{
		Src: "198.18.1.1", Dst: "198.18.1.2", Proto: "esp", SPI: 0x100, Mode: "transport",
		Crypt: &XfrmAlgo{Name: "cbc(aes)", Key: xfrmKey(16)},
		Auth:  &XfrmAlgo{Name: "hmac(sha256)", Key: xfrmKey(32)},
	}
}

func TestXfrmStateValidate(t *testing.T) {
	ok := []XfrmState{
		goodEsp(),
		{Src: "2001:db8::1", Dst: "2001:db8::2", Proto: "esp", SPI: 1, Mode: "tunnel",
			Aead: &XfrmAlgo{Name: "rfc4106(gcm(aes))", Key: xfrmKey(20), ICVLen: 128}},
		{Src: "198.18.1.1", Dst: "198.18.1.2", Proto: "ah", SPI: 7, Mode: "transport",
			Auth: &XfrmAlgo{Name: "hmac(sha1)", Key: xfrmKey(20), TruncLen: 96}},
		{Src: "198.18.1.1", Dst: "198.18.1.2", Proto: "comp", SPI: 0x4242, Mode: "tunnel",
			Comp: &XfrmAlgo{Name: "deflate"}},
		func() XfrmState { s := goodEsp(); s.Mark, s.MarkMask, s.IfID = 0x10, 0xf0, 5; return s }(),
	}
	for _, s := range ok {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := []struct {
		mod  func(*XfrmState)
		want string
	}{
		{func(s *XfrmState) { s.SPI = 0 }, "SPI: is 0"},
		{func(s *XfrmState) { s.Mode = "beet" }, `Mode: "beet" is not`},
		{func(s *XfrmState) { s.Dst = "2001:db8::2" }, "not of the family of Src"},
		{func(s *XfrmState) { s.Src = "" }, "Src: is required"},
		{func(s *XfrmState) { s.Dst = "fe80::1%eth0" }, "not an IPv4 or IPv6 address"},
		{func(s *XfrmState) { s.Proto = "gre" }, `Proto: "gre" is not`},
		{func(s *XfrmState) { s.Crypt.Key = xfrmKey(15) }, "cbc(aes) key is 15 bytes, want one of [16 24 32]"},
		{func(s *XfrmState) { s.Crypt.Name = "cbc(twofish)" }, "not a known cipher"},
		{func(s *XfrmState) { s.Auth.Key = nil }, "hmac(sha256) needs a key"},
		{func(s *XfrmState) { s.Auth.TruncLen = 300 }, "TruncLen 300"},
		{func(s *XfrmState) { s.Auth.TruncLen = 100 }, "TruncLen 100"},
		{func(s *XfrmState) { s.Aead = &XfrmAlgo{Name: "rfc4106(gcm(aes))", Key: xfrmKey(20)} }, "Aead: is set with Crypt or Auth"},
		{func(s *XfrmState) { s.Crypt, s.Auth = nil, nil }, "esp needs Aead"},
		{func(s *XfrmState) {
			s.Crypt, s.Auth = nil, nil
			s.Aead = &XfrmAlgo{Name: "rfc4106(gcm(aes))", Key: xfrmKey(16)}
		}, "key is 16 bytes, want one of [20 28 36] (key and salt)"},
		{func(s *XfrmState) {
			s.Crypt, s.Auth = nil, nil
			s.Aead = &XfrmAlgo{Name: "rfc4106(gcm(aes))", Key: xfrmKey(20), ICVLen: 100}
		}, "ICVLen 100"},
		{func(s *XfrmState) { s.Proto = "ah" }, "ah authenticates only"},
		{func(s *XfrmState) { s.Proto, s.Crypt, s.Auth = "comp", nil, nil }, "comp needs Comp"},
		{func(s *XfrmState) {
			s.Proto, s.Crypt, s.Auth, s.Comp = "comp", nil, nil, &XfrmAlgo{Name: "deflate"}
			s.SPI = 0x10000
		}, "CPI is 16 bits"},
		{func(s *XfrmState) { s.Mark, s.MarkMask = 0x100, 0xff }, "bits outside MarkMask"},
		{func(s *XfrmState) { s.ReplayWindow = 64 }, "ReplayWindow: 64"},
	}
	for _, c := range bad {
		s := goodEsp()
		c.mod(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error with %q", s, err, c.want)
		}
	}
}

func goodPolicy() XfrmPolicy {
	return XfrmPolicy{Src: "198.18.1.0/24", Dst: "198.18.2.0/24", Dir: "out",
		Tmpls: []XfrmTmpl{{Src: "198.18.0.1", Dst: "198.18.0.2", Proto: "esp", Mode: "tunnel", Reqid: 1}}}
}

func TestXfrmPolicyValidate(t *testing.T) {
	for _, p := range []XfrmPolicy{
		goodPolicy(),
		{Src: "2001:db8:1::1/128", Dst: "2001:db8:1::2/128", Dir: "in", Proto: "ipv6-icmp",
			Tmpls: []XfrmTmpl{{Proto: "comp", Mode: "transport", Optional: true}, {Proto: "esp", Mode: "transport"}}},
		{Src: "0.0.0.0/0", Dst: "0.0.0.0/0", Dir: "fwd", Mark: 5, IfID: 3},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	bad := []struct {
		mod  func(*XfrmPolicy)
		want string
	}{
		{func(p *XfrmPolicy) { p.Src = "198.18.1.1/24" }, "host bits set (did you mean 198.18.1.0/24?)"},
		{func(p *XfrmPolicy) { p.Dst = "2001:db8::/64" }, "not of the family of Src"},
		{func(p *XfrmPolicy) { p.Dst = "nowhere" }, `Dst: "nowhere" is not a prefix`},
		{func(p *XfrmPolicy) { p.Dir = "both" }, `Dir: "both"`},
		{func(p *XfrmPolicy) { p.Proto = "sctp" }, `Proto: "sctp"`},
		{func(p *XfrmPolicy) { p.Proto = "ipv6-icmp" }, "does not go with IPv4"},
		{func(p *XfrmPolicy) { p.Tmpls[0].Src = "" }, "tunnel template needs Src and Dst"},
		{func(p *XfrmPolicy) { p.Tmpls[0].Proto = "gre" }, `Tmpls[0]: Proto "gre"`},
		{func(p *XfrmPolicy) { p.Tmpls[0].Dst = "2001:db8::2" }, "not of the family"},
	}
	for _, c := range bad {
		p := goodPolicy()
		p.Tmpls = append([]XfrmTmpl(nil), p.Tmpls...)
		c.mod(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error with %q", p, err, c.want)
		}
	}
}

func TestXfrmLinkValidate(t *testing.T) {
	if err := (Xfrm{Name: "xfrm1", Parent: "eth0", IfID: 7}).Validate(); err != nil {
		t.Fatal(err)
	}
	err := Xfrm{Name: "xfrm1"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "IfID: is 0") {
		t.Fatalf("IfID 0: %v", err)
	}
	// The kind goes over the wire as every other.
	kind, data, err := Marshal(Xfrm{Name: "xfrm1", IfID: 7})
	if err != nil || kind != "xfrm" {
		t.Fatalf("marshal: %q %v", kind, err)
	}
	back, err := Unmarshal(kind, data)
	if err != nil || back != (Xfrm{Name: "xfrm1", IfID: 7}) {
		t.Fatalf("unmarshal: %v %v", back, err)
	}
}
