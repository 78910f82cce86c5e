package nlspec

import (
	"encoding/binary"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ifla_vxlan_gpe is IFLA_VXLAN_GPE (linux/if_link.h), a flag attribute
// netlink v1.3.1 does not know.
const iflaVxlanGPE = 27

// VxlanGPE is a VXLAN-GPE device: a *netlink.Vxlan (FlowBased, no
// learning) with the IFLA_VXLAN_GPE flag, which netlink.Handle.LinkAdd
// cannot send. The agent sends GPERequest instead.
type VxlanGPE struct {
	netlink.Vxlan
}

// GPERequest is the RTM_NEWLINK request that makes l, with the attributes
// netlink.Handle sends for its Vxlan that a GPE device takes (id, link,
// local, ttl, tos, learning, collect metadata, port) and IFLA_VXLAN_GPE.
// Execute it in the namespace where the device goes.
func GPERequest(l *VxlanGPE) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(l.Name)))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("vxlan"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_VXLAN_ID, nl.Uint32Attr(0))
	if l.VtepDevIndex != 0 {
		data.AddRtAttr(nl.IFLA_VXLAN_LINK, nl.Uint32Attr(uint32(l.VtepDevIndex)))
	}
	if ip := l.SrcAddr.To4(); ip != nil {
		data.AddRtAttr(nl.IFLA_VXLAN_LOCAL, []byte(ip))
	} else if ip := l.SrcAddr.To16(); ip != nil {
		data.AddRtAttr(nl.IFLA_VXLAN_LOCAL6, []byte(ip))
	}
	data.AddRtAttr(nl.IFLA_VXLAN_TTL, nl.Uint8Attr(uint8(l.TTL)))
	data.AddRtAttr(nl.IFLA_VXLAN_TOS, nl.Uint8Attr(uint8(l.TOS)))
	data.AddRtAttr(nl.IFLA_VXLAN_LEARNING, nl.Uint8Attr(0))
	data.AddRtAttr(nl.IFLA_VXLAN_FLOWBASED, nl.Uint8Attr(1))
	data.AddRtAttr(nl.IFLA_VXLAN_PORT, binary.BigEndian.AppendUint16(nil, uint16(l.Port)))
	data.AddRtAttr(iflaVxlanGPE, []byte{})
	req.AddData(info)
	return req
}
