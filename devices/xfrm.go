package devices

import (
	"fmt"
	"net/netip"
)

// Xfrm is an xfrm interface (kind "xfrm", ip link add ... type xfrm): the
// route into the IPsec states and policies whose if_id is IfID. Unlike
// Vti it has no addresses of its own and works for both families.
type Xfrm struct {
	Name string
	// Parent, if set, is the underlying device (its ifindex is given to
	// the kernel as the xfrm interface's link).
	Parent string
	// IfID is the interface id the states and policies name (if_id),
	// 1..4294967295: the kernel refuses 0.
	IfID uint32
}

// LinkName returns the device's name.
func (x Xfrm) LinkName() string { return x.Name }

// Kind returns "xfrm".
func (Xfrm) Kind() string { return "xfrm" }

// Validate checks the name, Parent and IfID.
func (x Xfrm) Validate() error {
	c, err := newCheck(x.Kind(), x.Name)
	if err != nil {
		return err
	}
	if err := c.device("Parent", x.Parent, false); err != nil {
		return err
	}
	if x.IfID == 0 {
		return c.fail("IfID", "is 0; the kernel needs an interface id of 1 or more")
	}
	return nil
}

// XfrmAlgo is an algorithm of an XfrmState with its key, as ip xfrm state
// names them: "rfc4106(gcm(aes))" (AEAD), "cbc(aes)" (encryption),
// "hmac(sha256)" (authentication), "deflate" (compression).
type XfrmAlgo struct {
	Name string
	// Key is the key as bytes; for rfc4106(gcm(aes)) it ends with the 4
	// bytes of salt (20, 28 or 36 bytes in all). Compression has none.
	Key []byte `json:",omitempty"`
	// ICVLen is an AEAD's integrity check value length in bits (64, 96
	// or 128); 0 means 128.
	ICVLen int `json:",omitempty"`
	// TruncLen is an authentication's truncated length in bits; 0 means
	// the RFC's length for the hash (96 for sha1, 128 for sha256, 192
	// for sha384, 256 for sha512).
	TruncLen int `json:",omitempty"`
}

// XfrmState is an IPsec security association (ip xfrm state add): how
// packets between Src and Dst with SPI are transformed. Give Aead, or
// Crypt with Auth (ESP), or Auth alone (AH, or ESP with null encryption),
// or Comp (IPComp).
type XfrmState struct {
	// Src and Dst are the SA's endpoints, both IPv4 or both IPv6.
	Src, Dst string
	// Proto is "esp", "ah" or "comp".
	Proto string
	// SPI is the security parameter index, not 0; for comp the CPI
	// (1..65535).
	SPI uint32
	// Mode is "transport" or "tunnel".
	Mode string
	// Reqid ties the state to a policy template's reqid (0: any).
	Reqid uint32 `json:",omitempty"`
	// ReplayWindow is the anti-replay window in packets, 0..32.
	ReplayWindow int `json:",omitempty"`
	// Aead, Crypt, Auth and Comp are the algorithms (see XfrmState).
	Aead  *XfrmAlgo `json:",omitempty"`
	Crypt *XfrmAlgo `json:",omitempty"`
	Auth  *XfrmAlgo `json:",omitempty"`
	Comp  *XfrmAlgo `json:",omitempty"`
	// Mark and MarkMask select the packets the state applies to (a VTI's
	// key); a Mark with MarkMask 0 means the mask 0xffffffff.
	Mark, MarkMask uint32 `json:",omitempty"`
	// IfID ties the state to an xfrm interface (Xfrm.IfID); 0: none.
	IfID uint32 `json:",omitempty"`
}

// xfrmAead, xfrmCrypt and xfrmAuth are the algorithms the package knows
// the key lengths of, in bytes (nil: any length up to 512 bytes), and
// for authentication the default and largest truncation in bits.
var (
	xfrmAead = map[string][]int{
		"rfc4106(gcm(aes))":             {20, 28, 36},
		"rfc4309(ccm(aes))":             {19, 27, 35},
		"rfc7539esp(chacha20,poly1305)": {36},
	}
	xfrmCrypt = map[string][]int{
		"cbc(aes)":          {16, 24, 32},
		"cbc(des3_ede)":     {24},
		"ecb(cipher_null)":  {0},
		"rfc3686(ctr(aes))": {20, 28, 36},
	}
	xfrmAuth = map[string][2]int{
		"hmac(sha1)":   {96, 160},
		"hmac(sha256)": {128, 256},
		"hmac(sha384)": {192, 384},
		"hmac(sha512)": {256, 512},
		"digest_null":  {0, 0},
		"xcbc(aes)":    {96, 128},
		"cmac(aes)":    {96, 128},
	}
	xfrmComp = map[string]bool{"deflate": true, "lzs": true, "lzjh": true}
)

// xfrmCheck names an xfrm object in errors ("xfrm state esp spi 0x100").
type xfrmCheck struct{ what string }

func (c xfrmCheck) fail(field, format string, args ...any) error {
	return &ValidationError{Kind: "xfrm " + c.what, Field: field, Err: fmt.Errorf(format, args...)}
}

// String names the state: "esp spi 0x100 198.18.1.1->198.18.1.2".
func (s XfrmState) String() string {
	return fmt.Sprintf("%s spi %#x %s->%s", s.Proto, s.SPI, s.Src, s.Dst)
}

// Family is 4 or 6, after Dst (0 if Dst is not an address).
func (s XfrmState) Family() int { return addrFamily(s.Dst) }

func addrFamily(s string) int {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return 0
	case a.Is4():
		return 4
	}
	return 6
}

// xfrmEndpoints parses src and dst, both required, of one family.
func (c xfrmCheck) endpoints(src, dst string) (s, d netip.Addr, err error) {
	for _, p := range []struct {
		field, v string
		to       *netip.Addr
	}{{"Src", src, &s}, {"Dst", dst, &d}} {
		if p.v == "" {
			return s, d, c.fail(p.field, "is required")
		}
		a, err := netip.ParseAddr(p.v)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			return s, d, c.fail(p.field, "%q is not an IPv4 or IPv6 address", p.v)
		}
		*p.to = a
	}
	if s.Is4() != d.Is4() {
		return s, d, c.fail("Dst", "%s is not of the family of Src %s", d, s)
	}
	return s, d, nil
}

// Validate checks the endpoints, Proto, SPI, Mode, the algorithms (known
// names, key lengths, which go with Proto) and ReplayWindow.
func (s XfrmState) Validate() error {
	c := xfrmCheck{"state " + s.String()}
	if _, _, err := c.endpoints(s.Src, s.Dst); err != nil {
		return err
	}
	if s.SPI == 0 {
		return c.fail("SPI", "is 0; the kernel cannot delete a state with SPI 0")
	}
	if s.Mode != "transport" && s.Mode != "tunnel" {
		return c.fail("Mode", "%q is not \"transport\" or \"tunnel\"", s.Mode)
	}
	if s.ReplayWindow < 0 || s.ReplayWindow > 32 {
		return c.fail("ReplayWindow", "%d is out of range 0..32", s.ReplayWindow)
	}
	if s.MarkMask != 0 && s.Mark&^s.MarkMask != 0 {
		return c.fail("Mark", "%#x has bits outside MarkMask %#x", s.Mark, s.MarkMask)
	}
	switch s.Proto {
	case "esp":
		if s.Comp != nil {
			return c.fail("Comp", "is for proto \"comp\", not esp")
		}
		switch {
		case s.Aead != nil && (s.Crypt != nil || s.Auth != nil):
			return c.fail("Aead", "is set with Crypt or Auth; an AEAD does both")
		case s.Aead == nil && s.Crypt == nil && s.Auth == nil:
			return c.fail("Aead", "esp needs Aead, or Crypt and Auth")
		}
		if s.Aead != nil {
			if err := c.aead(*s.Aead); err != nil {
				return err
			}
		}
		if s.Crypt != nil {
			if err := c.crypt(*s.Crypt); err != nil {
				return err
			}
		}
	case "ah":
		if s.Aead != nil || s.Crypt != nil || s.Comp != nil {
			return c.fail("Proto", "ah authenticates only: give Auth alone")
		}
		if s.Auth == nil {
			return c.fail("Auth", "ah needs Auth")
		}
	case "comp":
		if s.Aead != nil || s.Crypt != nil || s.Auth != nil {
			return c.fail("Proto", "comp compresses only: give Comp alone")
		}
		if s.Comp == nil {
			return c.fail("Comp", "comp needs Comp")
		}
		if !xfrmComp[s.Comp.Name] {
			return c.fail("Comp", "%q is not a compression (deflate, lzs, lzjh)", s.Comp.Name)
		}
		if len(s.Comp.Key) != 0 {
			return c.fail("Comp", "%s takes no key", s.Comp.Name)
		}
		if s.SPI > 0xffff {
			return c.fail("SPI", "%#x: an IPComp CPI is 16 bits", s.SPI)
		}
		return nil
	default:
		return c.fail("Proto", "%q is not \"esp\", \"ah\" or \"comp\"", s.Proto)
	}
	if s.Auth != nil {
		return c.auth(*s.Auth)
	}
	return nil
}

func keyLenOK(n int, lens []int) bool {
	for _, l := range lens {
		if n == l {
			return true
		}
	}
	return false
}

func (c xfrmCheck) aead(a XfrmAlgo) error {
	lens, ok := xfrmAead[a.Name]
	if !ok {
		return c.fail("Aead", "%q is not a known AEAD (rfc4106(gcm(aes)), rfc4309(ccm(aes)), rfc7539esp(chacha20,poly1305))", a.Name)
	}
	if !keyLenOK(len(a.Key), lens) {
		return c.fail("Aead", "%s key is %d bytes, want one of %v (key and salt)", a.Name, len(a.Key), lens)
	}
	switch a.ICVLen {
	case 0, 64, 96, 128:
	default:
		return c.fail("Aead", "ICVLen %d is not 64, 96 or 128 bits", a.ICVLen)
	}
	if a.TruncLen != 0 {
		return c.fail("Aead", "TruncLen is for Auth; an AEAD has ICVLen")
	}
	return nil
}

func (c xfrmCheck) crypt(a XfrmAlgo) error {
	lens, ok := xfrmCrypt[a.Name]
	if !ok {
		return c.fail("Crypt", "%q is not a known cipher (cbc(aes), cbc(des3_ede), rfc3686(ctr(aes)), ecb(cipher_null))", a.Name)
	}
	if !keyLenOK(len(a.Key), lens) {
		return c.fail("Crypt", "%s key is %d bytes, want one of %v", a.Name, len(a.Key), lens)
	}
	if a.ICVLen != 0 || a.TruncLen != 0 {
		return c.fail("Crypt", "ICVLen and TruncLen are for Aead and Auth")
	}
	return nil
}

func (c xfrmCheck) auth(a XfrmAlgo) error {
	tr, ok := xfrmAuth[a.Name]
	if !ok {
		return c.fail("Auth", "%q is not a known authentication (hmac(sha1), hmac(sha256), hmac(sha384), hmac(sha512), xcbc(aes), cmac(aes), digest_null)", a.Name)
	}
	switch {
	case a.Name == "digest_null" && len(a.Key) != 0:
		return c.fail("Auth", "digest_null takes no key")
	case a.Name != "digest_null" && len(a.Key) == 0:
		return c.fail("Auth", "%s needs a key", a.Name)
	case (a.Name == "xcbc(aes)" || a.Name == "cmac(aes)") && len(a.Key) != 16:
		return c.fail("Auth", "%s key is %d bytes, want 16", a.Name, len(a.Key))
	case len(a.Key) > 512:
		return c.fail("Auth", "%s key is %d bytes, above 512", a.Name, len(a.Key))
	case a.ICVLen != 0:
		return c.fail("Auth", "ICVLen is for Aead; Auth has TruncLen")
	case a.TruncLen != 0 && (a.TruncLen < 32 || a.TruncLen > tr[1] || a.TruncLen%8 != 0):
		return c.fail("Auth", "TruncLen %d is not a whole number of bytes in 32..%d bits for %s", a.TruncLen, tr[1], a.Name)
	}
	return nil
}

// AuthTruncLen is a's truncation in bits with the default filled in.
func (a XfrmAlgo) AuthTruncLen() int {
	if a.TruncLen != 0 {
		return a.TruncLen
	}
	return xfrmAuth[a.Name][0]
}

// AeadICVLen is a's ICV length in bits with the default filled in.
func (a XfrmAlgo) AeadICVLen() int {
	if a.ICVLen != 0 {
		return a.ICVLen
	}
	return 128
}

// XfrmTmpl is a template of an XfrmPolicy: the state a matching packet
// must go through (found by Src, Dst, Proto, SPI or Reqid).
type XfrmTmpl struct {
	// Src and Dst are the state's endpoints; in transport mode they may
	// be "" (the packet's addresses).
	Src, Dst string `json:",omitempty"`
	// Proto is "esp", "ah" or "comp"; Mode "transport" or "tunnel".
	Proto, Mode string
	// SPI, if not 0, is the state's SPI; Reqid, if not 0, its reqid.
	SPI   uint32 `json:",omitempty"`
	Reqid uint32 `json:",omitempty"`
	// Optional is "level use": a packet that went through no such state
	// still passes (as IPComp leaves small packets).
	Optional bool `json:",omitempty"`
}

// XfrmPolicy is an IPsec security policy (ip xfrm policy add): which
// packets (selector Src, Dst, Proto) in direction Dir go through its
// templates' states.
type XfrmPolicy struct {
	// Src and Dst are prefixes ("198.18.1.0/24", "2001:db8::1/128") of
	// one family.
	Src, Dst string
	// Dir is "out", "in" or "fwd".
	Dir string
	// Proto is the upper protocol the selector matches: "", "icmp",
	// "ipv6-icmp", "tcp", "udp".
	Proto string `json:",omitempty"`
	// Priority: a lower value wins; 0 is the kernel's default.
	Priority uint32 `json:",omitempty"`
	// Mark and MarkMask as for XfrmState; IfID ties the policy to an
	// xfrm interface.
	Mark, MarkMask uint32 `json:",omitempty"`
	IfID           uint32 `json:",omitempty"`
	// Tmpls are the transforms, outermost last (as ip xfrm tmpl lists
	// them: comp first, then esp); none: the policy only allows.
	Tmpls []XfrmTmpl `json:",omitempty"`
}

// String names the policy: "out 198.18.1.0/24->198.18.2.0/24".
func (p XfrmPolicy) String() string {
	s := fmt.Sprintf("%s %s->%s", p.Dir, p.Src, p.Dst)
	if p.Proto != "" {
		s += " proto " + p.Proto
	}
	if p.Mark != 0 {
		s += fmt.Sprintf(" mark %#x", p.Mark)
	}
	if p.IfID != 0 {
		s += fmt.Sprintf(" if_id %d", p.IfID)
	}
	return s
}

// XfrmProtos are the selector protocols XfrmPolicy.Proto takes, by IP
// protocol number.
var XfrmProtos = map[string]int{"": 0, "icmp": 1, "tcp": 6, "udp": 17, "ipv6-icmp": 58}

// Family is 4 or 6, after Dst (0 if Dst is not a prefix).
func (p XfrmPolicy) Family() int {
	pfx, err := netip.ParsePrefix(p.Dst)
	switch {
	case err != nil:
		return 0
	case pfx.Addr().Is4():
		return 4
	}
	return 6
}

// Validate checks the selector (prefixes of one family, without host
// bits), Dir, Proto and each template.
func (p XfrmPolicy) Validate() error {
	c := xfrmCheck{"policy " + p.String()}
	var pfx [2]netip.Prefix
	for i, f := range []struct{ field, v string }{{"Src", p.Src}, {"Dst", p.Dst}} {
		x, err := netip.ParsePrefix(f.v)
		if err != nil || x.Addr().Zone() != "" || x.Addr().Is4In6() {
			return c.fail(f.field, "%q is not a prefix (like 198.18.1.0/24 or 2001:db8::/64)", f.v)
		}
		if x.Masked() != x {
			return c.fail(f.field, "%q has host bits set (did you mean %s?)", f.v, x.Masked())
		}
		pfx[i] = x
	}
	if pfx[0].Addr().Is4() != pfx[1].Addr().Is4() {
		return c.fail("Dst", "%s is not of the family of Src %s", pfx[1], pfx[0])
	}
	if p.Dir != "out" && p.Dir != "in" && p.Dir != "fwd" {
		return c.fail("Dir", "%q is not \"out\", \"in\" or \"fwd\"", p.Dir)
	}
	if _, ok := XfrmProtos[p.Proto]; !ok {
		return c.fail("Proto", "%q is not one of icmp, ipv6-icmp, tcp, udp", p.Proto)
	}
	if p.Proto == "icmp" && !pfx[0].Addr().Is4() || p.Proto == "ipv6-icmp" && pfx[0].Addr().Is4() {
		return c.fail("Proto", "%s does not go with %s selectors", p.Proto, map[bool]string{true: "IPv4", false: "IPv6"}[pfx[0].Addr().Is4()])
	}
	if p.MarkMask != 0 && p.Mark&^p.MarkMask != 0 {
		return c.fail("Mark", "%#x has bits outside MarkMask %#x", p.Mark, p.MarkMask)
	}
	for i, t := range p.Tmpls {
		field := fmt.Sprintf("Tmpls[%d]", i)
		if t.Proto != "esp" && t.Proto != "ah" && t.Proto != "comp" {
			return c.fail(field, "Proto %q is not \"esp\", \"ah\" or \"comp\"", t.Proto)
		}
		if t.Mode != "transport" && t.Mode != "tunnel" {
			return c.fail(field, "Mode %q is not \"transport\" or \"tunnel\"", t.Mode)
		}
		if t.Mode == "tunnel" && (t.Src == "" || t.Dst == "") {
			return c.fail(field, "a tunnel template needs Src and Dst (the tunnel's endpoints)")
		}
		if t.Src != "" || t.Dst != "" {
			if _, _, err := (xfrmCheck{c.what + " " + field}).endpoints(t.Src, t.Dst); err != nil {
				return err
			}
		}
	}
	return nil
}
