package nlspec

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/lnst-go/lnst/devices"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// xfrmLink maps an Xfrm (xfrm interface).
func xfrmLink(x devices.Xfrm, r resolver) (netlink.Link, error) {
	la, err := r.attrs(x.Parent)
	if err != nil {
		return nil, err
	}
	return &netlink.Xfrmi{LinkAttrs: la, Ifid: x.IfID}, nil
}

// XfrmStateMsg validates s and builds the payload of an XFRM_MSG_NEWSA
// request for it: the xfrm_usersa_info header and the attributes (the
// algorithms with their keys, mark, if_id). It is built here rather than
// by netlink.XfrmStateAdd because netlink has no IPComp algorithm
// (XFRMA_ALG_COMP), and so that a batch of states can go in one write.
func XfrmStateMsg(s devices.XfrmState) ([]nl.NetlinkRequestData, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	src, dst := netip.MustParseAddr(s.Src), netip.MustParseAddr(s.Dst)
	msg := &nl.XfrmUsersaInfo{}
	msg.Family = uint16(familyNum(dst))
	msg.Id.Daddr.FromIP(dst.AsSlice())
	msg.Saddr.FromIP(src.AsSlice())
	msg.Id.Proto = xfrmProto(s.Proto)
	msg.Id.Spi = nl.Swap32(s.SPI)
	msg.Mode = xfrmMode(s.Mode)
	msg.Reqid = s.Reqid
	msg.ReplayWindow = uint8(s.ReplayWindow)
	msg.Lft.SoftByteLimit, msg.Lft.HardByteLimit = nl.XFRM_INF, nl.XFRM_INF
	msg.Lft.SoftPacketLimit, msg.Lft.HardPacketLimit = nl.XFRM_INF, nl.XFRM_INF
	data := []nl.NetlinkRequestData{msg}
	if a := s.Aead; a != nil {
		algo := nl.XfrmAlgoAEAD{AlgKeyLen: uint32(len(a.Key) * 8), AlgICVLen: uint32(a.AeadICVLen()), AlgKey: a.Key}
		copy(algo.AlgName[:], a.Name)
		data = append(data, nl.NewRtAttr(nl.XFRMA_ALG_AEAD, algo.Serialize()))
	}
	if a := s.Auth; a != nil {
		algo := nl.XfrmAlgoAuth{AlgKeyLen: uint32(len(a.Key) * 8), AlgTruncLen: uint32(a.AuthTruncLen()), AlgKey: a.Key}
		copy(algo.AlgName[:], a.Name)
		data = append(data, nl.NewRtAttr(nl.XFRMA_ALG_AUTH_TRUNC, algo.Serialize()))
	}
	if s.Proto == "esp" && s.Aead == nil {
		// ESP with authentication only is null encryption, as ip
		// xfrm makes it.
		crypt := s.Crypt
		if crypt == nil {
			crypt = &devices.XfrmAlgo{Name: "ecb(cipher_null)"}
		}
		algo := nl.XfrmAlgo{AlgKeyLen: uint32(len(crypt.Key) * 8), AlgKey: crypt.Key}
		copy(algo.AlgName[:], crypt.Name)
		data = append(data, nl.NewRtAttr(nl.XFRMA_ALG_CRYPT, algo.Serialize()))
	}
	if a := s.Comp; a != nil {
		algo := nl.XfrmAlgo{}
		copy(algo.AlgName[:], a.Name)
		data = append(data, nl.NewRtAttr(nl.XFRMA_ALG_COMP, algo.Serialize()))
	}
	if s.Mark != 0 || s.MarkMask != 0 {
		m := nl.XfrmMark{Value: s.Mark, Mask: markMask(s.Mark, s.MarkMask)}
		data = append(data, nl.NewRtAttr(nl.XFRMA_MARK, m.Serialize()))
	}
	if s.IfID != 0 {
		data = append(data, nl.NewRtAttr(nl.XFRMA_IF_ID, nl.Uint32Attr(s.IfID)))
	}
	return data, nil
}

// markMask is the mask the kernel gets: a mark without a mask matches
// exactly.
func markMask(mark, mask uint32) uint32 {
	if mask == 0 && mark != 0 {
		return 0xffffffff
	}
	return mask
}

func familyNum(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func xfrmProto(p string) uint8 {
	switch p {
	case "ah":
		return unix.IPPROTO_AH
	case "comp":
		return unix.IPPROTO_COMP
	}
	return unix.IPPROTO_ESP
}

func xfrmMode(m string) uint8 {
	if m == "tunnel" {
		return uint8(netlink.XFRM_MODE_TUNNEL)
	}
	return uint8(netlink.XFRM_MODE_TRANSPORT)
}

// XfrmStateID is what netlink.XfrmStateDel needs to find s: its
// endpoints, protocol, SPI and mark (algorithms are ignored).
func XfrmStateID(s devices.XfrmState) (*netlink.XfrmState, error) {
	src, err := netip.ParseAddr(s.Src)
	if err != nil {
		return nil, fmt.Errorf("xfrm state %s: Src: %w", s, err)
	}
	dst, err := netip.ParseAddr(s.Dst)
	if err != nil {
		return nil, fmt.Errorf("xfrm state %s: Dst: %w", s, err)
	}
	st := &netlink.XfrmState{
		Src: src.AsSlice(), Dst: dst.AsSlice(), Proto: netlink.Proto(xfrmProto(s.Proto)),
		Mode: netlink.Mode(xfrmMode(s.Mode)), Spi: int(s.SPI),
	}
	if s.Mark != 0 || s.MarkMask != 0 {
		st.Mark = &netlink.XfrmMark{Value: s.Mark, Mask: markMask(s.Mark, s.MarkMask)}
	}
	return st, nil
}

// XfrmStateSpec is a state as the kernel lists it, as a spec without its
// keys (the kernel gives them back; they are not read back here).
func XfrmStateSpec(st netlink.XfrmState) devices.XfrmState {
	s := devices.XfrmState{
		Src: st.Src.String(), Dst: st.Dst.String(), SPI: uint32(st.Spi), Reqid: uint32(st.Reqid),
		ReplayWindow: st.ReplayWindow, IfID: uint32(st.Ifid),
	}
	switch st.Proto {
	case netlink.XFRM_PROTO_AH:
		s.Proto = "ah"
	case netlink.XFRM_PROTO_COMP:
		s.Proto = "comp"
	case netlink.XFRM_PROTO_ESP:
		s.Proto = "esp"
	default:
		s.Proto = st.Proto.String()
	}
	s.Mode = "transport"
	if st.Mode == netlink.XFRM_MODE_TUNNEL {
		s.Mode = "tunnel"
	}
	if st.Mark != nil {
		s.Mark, s.MarkMask = st.Mark.Value, st.Mark.Mask
	}
	for _, a := range []struct {
		from *netlink.XfrmStateAlgo
		to   **devices.XfrmAlgo
	}{{st.Aead, &s.Aead}, {st.Crypt, &s.Crypt}, {st.Auth, &s.Auth}} {
		if a.from != nil {
			*a.to = &devices.XfrmAlgo{Name: a.from.Name, ICVLen: a.from.ICVLen, TruncLen: a.from.TruncateLen}
		}
	}
	return s
}

// XfrmPolicy validates p and maps it to a netlink policy (for
// XfrmPolicyAdd and, as its own undo, XfrmPolicyDel).
func XfrmPolicy(p devices.XfrmPolicy) (*netlink.XfrmPolicy, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	np := &netlink.XfrmPolicy{
		Src: ipNet(netip.MustParsePrefix(p.Src)), Dst: ipNet(netip.MustParsePrefix(p.Dst)),
		Proto: netlink.Proto(devices.XfrmProtos[p.Proto]), Priority: int(p.Priority), Ifid: int(p.IfID),
	}
	switch p.Dir {
	case "in":
		np.Dir = netlink.XFRM_DIR_IN
	case "fwd":
		np.Dir = netlink.XFRM_DIR_FWD
	default:
		np.Dir = netlink.XFRM_DIR_OUT
	}
	if p.Mark != 0 || p.MarkMask != 0 {
		np.Mark = &netlink.XfrmMark{Value: p.Mark, Mask: markMask(p.Mark, p.MarkMask)}
	}
	for _, t := range p.Tmpls {
		nt := netlink.XfrmPolicyTmpl{
			Proto: netlink.Proto(xfrmProto(t.Proto)), Mode: netlink.Mode(xfrmMode(t.Mode)),
			Spi: int(t.SPI), Reqid: int(t.Reqid),
		}
		switch {
		case t.Src != "":
			nt.Src = netip.MustParseAddr(t.Src).AsSlice()
			nt.Dst = netip.MustParseAddr(t.Dst).AsSlice()
		case p.Family() == 6:
			// netlink takes a template's family from its Dst: without
			// one it would be IPv4, which the kernel refuses in an
			// IPv6 policy.
			nt.Src, nt.Dst = net.IPv6zero, net.IPv6zero
		}
		if t.Optional {
			nt.Optional = 1
		}
		np.Tmpls = append(np.Tmpls, nt)
	}
	return np, nil
}

// XfrmPolicySpec is a policy as the kernel lists it, as a spec.
func XfrmPolicySpec(np netlink.XfrmPolicy) devices.XfrmPolicy {
	p := devices.XfrmPolicy{Priority: uint32(np.Priority), IfID: uint32(np.Ifid)}
	if np.Src != nil {
		p.Src = np.Src.String()
	}
	if np.Dst != nil {
		p.Dst = np.Dst.String()
	}
	switch np.Dir {
	case netlink.XFRM_DIR_IN:
		p.Dir = "in"
	case netlink.XFRM_DIR_OUT:
		p.Dir = "out"
	case netlink.XFRM_DIR_FWD:
		p.Dir = "fwd"
	default:
		p.Dir = np.Dir.String()
	}
	for name, n := range devices.XfrmProtos {
		if n == int(np.Proto) && (name != "") == (np.Proto != 0) {
			p.Proto = name
		}
	}
	if np.Mark != nil {
		p.Mark, p.MarkMask = np.Mark.Value, np.Mark.Mask
	}
	for _, t := range np.Tmpls {
		st := XfrmStateSpec(netlink.XfrmState{Proto: t.Proto, Mode: t.Mode})
		tm := devices.XfrmTmpl{Proto: st.Proto, Mode: st.Mode, SPI: uint32(t.Spi), Reqid: uint32(t.Reqid), Optional: t.Optional != 0}
		if t.Src != nil && !t.Src.IsUnspecified() {
			tm.Src, tm.Dst = t.Src.String(), t.Dst.String()
		}
		p.Tmpls = append(p.Tmpls, tm)
	}
	return p
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
