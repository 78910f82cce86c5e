package nltc

import (
	"encoding/binary"
	"fmt"

	"github.com/lnst-go/lnst/devices/tc"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// Raw is a filter that netlink's types cannot carry whole: a U32 or a
// MatchAll with SkipHw or SkipSw (netlink's U32 and MatchAll have no
// flags; its Flower has them). The agent sends it as its kind and its
// TCA_OPTIONS, built here as netlink builds them plus the flags attribute.
type Raw struct {
	netlink.FilterAttrs
	Kind string
	// Options is the payload of the TCA_OPTIONS attribute.
	Options []byte
}

// Attrs returns the filter's attributes.
func (r *Raw) Attrs() *netlink.FilterAttrs { return &r.FilterAttrs }

// Type returns the classifier's kind.
func (r *Raw) Type() string { return r.Kind }

// Classifier flags attributes (linux/pkt_cls.h): TCA_U32_FLAGS is 11,
// TCA_MATCHALL_FLAGS 3, TCA_FLOWER_FLAGS 22.
const (
	u32Flags      = 11
	matchallFlags = nl.TCA_MATCHALL_FLAGS
)

// raw builds the Raw of a U32 or MatchAll netlink filter with the skip
// flags flags (tc.ClsFlagSkipHw, tc.ClsFlagSkipSw).
func raw(f netlink.Filter, flags uint32) (*Raw, error) {
	options := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	switch f := f.(type) {
	case *netlink.U32:
		// As netlink's filterModify: no selector is its match-all one,
		// and the keys' values and masks go in network order.
		sel := nl.TcU32Sel{Flags: nl.TC_U32_TERMINAL, Keys: []nl.TcU32Key{{}}}
		if f.Sel != nil {
			sel = *f.Sel
			sel.Keys = nil
			for _, k := range f.Sel.Keys {
				k.Val, k.Mask = networkOrder(k.Val), networkOrder(k.Mask)
				sel.Keys = append(sel.Keys, k)
			}
		}
		sel.Nkeys = uint8(len(sel.Keys))
		options.AddRtAttr(nl.TCA_U32_SEL, sel.Serialize())
		if f.ClassId != 0 {
			options.AddRtAttr(nl.TCA_U32_CLASSID, nl.Uint32Attr(f.ClassId))
		}
		if err := netlink.EncodeActions(options.AddRtAttr(nl.TCA_U32_ACT, nil), f.Actions); err != nil {
			return nil, fmt.Errorf("u32 Actions: %w", err)
		}
		options.AddRtAttr(u32Flags, nl.Uint32Attr(flags))
	case *netlink.MatchAll:
		if err := netlink.EncodeActions(options.AddRtAttr(nl.TCA_MATCHALL_ACT, nil), f.Actions); err != nil {
			return nil, fmt.Errorf("matchall Actions: %w", err)
		}
		if f.ClassId != 0 {
			options.AddRtAttr(nl.TCA_MATCHALL_CLASSID, nl.Uint32Attr(f.ClassId))
		}
		options.AddRtAttr(matchallFlags, nl.Uint32Attr(flags))
	default:
		return nil, fmt.Errorf("%s: no raw encoding for %T", f.Type(), f)
	}
	return &Raw{FilterAttrs: *f.Attrs(), Kind: f.Type(), Options: options.Serialize()[4:]}, nil
}

// networkOrder is v's bytes in network order, read in the host's order
// (as the kernel reads a u32 key's __be32 fields from memory).
func networkOrder(v uint32) uint32 {
	return binary.NativeEndian.Uint32(binary.BigEndian.AppendUint32(nil, v))
}

// withFlags turns a U32 or MatchAll netlink filter into a Raw when spec
// has skip flags; otherwise it returns f.
func withFlags(spec tc.Filter, f netlink.Filter) (netlink.Filter, error) {
	flags := tc.SkipFlags(spec)
	if flags == 0 {
		return f, nil
	}
	switch f.(type) {
	case *netlink.U32, *netlink.MatchAll:
		return raw(f, flags)
	}
	return f, nil
}
