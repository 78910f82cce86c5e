package nltc

import (
	"encoding/binary"
	"testing"

	"github.com/lnst-go/lnst/devices/tc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// options parses a Raw's TCA_OPTIONS payload by attribute type.
func options(t *testing.T, r *Raw) map[uint16][]byte {
	t.Helper()
	attrs, err := nl.ParseRouteAttr(r.Options)
	require.NoError(t, err)
	m := map[uint16][]byte{}
	for _, a := range attrs {
		_, dup := m[a.Attr.Type]
		require.False(t, dup, "attribute %d twice", a.Attr.Type)
		m[a.Attr.Type] = a.Value
	}
	return m
}

// actionKinds reads the kinds of an actions table attribute.
func actionKinds(t *testing.T, tab []byte) []string {
	t.Helper()
	acts, err := nl.ParseRouteAttr(tab)
	require.NoError(t, err)
	var kinds []string
	for _, a := range acts {
		inner, err := nl.ParseRouteAttr(a.Value)
		require.NoError(t, err)
		for _, x := range inner {
			if x.Attr.Type == nl.TCA_ACT_KIND {
				kinds = append(kinds, string(x.Value[:len(x.Value)-1]))
			}
		}
	}
	return kinds
}

// TestSkipFlagsU32 checks the options of a u32 with SkipSw as the kernel
// reads them (linux/pkt_cls.h): TCA_U32_FLAGS (11) holds
// TCA_CLS_FLAGS_SKIP_SW, the selector's key is in network order, the
// actions are there.
func TestSkipFlagsU32(t *testing.T) {
	f, err := Filter(tc.U32{Parent: "ingress", Protocol: "ip", Prio: 4, Dst: "198.18.1.1", ClassID: "1:1", SkipSw: true,
		Actions: tc.ActionList{tc.Gact{Verdict: "drop"}}}, 2, testIndex)
	require.NoError(t, err)
	r, ok := f.(*Raw)
	require.True(t, ok, "a u32 with SkipSw is a *Raw, not %T", f)
	assert.Equal(t, "u32", r.Type())
	assert.Equal(t, netlink.FilterAttrs{LinkIndex: 2, Parent: tc.HandleClsactIngress, Priority: 4, Protocol: unix.ETH_P_IP}, *r.Attrs())
	m := options(t, r)
	assert.Equal(t, nl.Uint32Attr(2), m[11], "TCA_U32_FLAGS is TCA_CLS_FLAGS_SKIP_SW")
	assert.Equal(t, nl.Uint32Attr(0x10001), m[nl.TCA_U32_CLASSID])
	// struct tc_u32_sel: flags, offshift, nkeys, pad, offmask (be16),
	// off, offoff, hoff, hmask (be32): 16 bytes; then tc_u32_key: mask,
	// val (be32), off, offmask.
	sel := m[nl.TCA_U32_SEL]
	require.Len(t, sel, 16+16)
	assert.Equal(t, byte(nl.TC_U32_TERMINAL), sel[0])
	assert.Equal(t, byte(1), sel[2], "nkeys")
	assert.Equal(t, []byte{0xff, 0xff, 0xff, 0xff}, sel[16:20], "mask in network order")
	assert.Equal(t, []byte{198, 18, 1, 1}, sel[20:24], "198.18.1.1 in network order")
	assert.Equal(t, int32(16), int32(binary.NativeEndian.Uint32(sel[24:28])), "the destination's offset")
	assert.Equal(t, []string{"gact"}, actionKinds(t, m[nl.TCA_U32_ACT]))

	// SkipHw, and no key: netlink's match-all selector of one empty key.
	f, err = Filter(tc.U32{Parent: "ingress", Prio: 1, SkipHw: true}, 2, testIndex)
	require.NoError(t, err)
	m = options(t, f.(*Raw))
	assert.Equal(t, nl.Uint32Attr(1), m[11], "TCA_CLS_FLAGS_SKIP_HW")
	assert.Len(t, m[nl.TCA_U32_SEL], 32)
	assert.Equal(t, byte(1), m[nl.TCA_U32_SEL][2])

	// Without flags netlink's own U32 carries it, as before.
	f, err = Filter(tc.U32{Parent: "ingress", Prio: 1}, 2, testIndex)
	require.NoError(t, err)
	assert.IsType(t, &netlink.U32{}, f)
}

// TestSkipFlagsMatchAll checks TCA_MATCHALL_FLAGS (3) and the actions and
// class id of a matchall with SkipSw.
func TestSkipFlagsMatchAll(t *testing.T) {
	f, err := Filter(tc.MatchAll{Parent: "ingress", Prio: 2, ClassID: "1:2", SkipSw: true,
		Actions: tc.ActionList{tc.Mirred{Dev: "ifb0", Mirror: true}}}, 2, testIndex)
	require.NoError(t, err)
	r, ok := f.(*Raw)
	require.True(t, ok, "%T", f)
	assert.Equal(t, "matchall", r.Type())
	m := options(t, r)
	assert.Equal(t, nl.Uint32Attr(2), m[3], "TCA_MATCHALL_FLAGS is TCA_CLS_FLAGS_SKIP_SW")
	assert.Equal(t, nl.Uint32Attr(0x10002), m[nl.TCA_MATCHALL_CLASSID])
	assert.Equal(t, []string{"mirred"}, actionKinds(t, m[nl.TCA_MATCHALL_ACT]))

	f, err = Filter(tc.MatchAll{Parent: "ingress", Prio: 2}, 2, testIndex)
	require.NoError(t, err)
	assert.IsType(t, &netlink.MatchAll{}, f)
	_, err = Filter(tc.MatchAll{Parent: "ingress", Prio: 2, SkipHw: true, SkipSw: true}, 2, testIndex)
	assert.ErrorContains(t, err, "matchall SkipSw: is given with SkipHw")
}

// TestSkipFlagsFlower: netlink's Flower carries the flags itself (it
// writes TCA_FLOWER_FLAGS from SkipHw and SkipSw); the spec's reach it.
func TestSkipFlagsFlower(t *testing.T) {
	f, err := Filter(tc.Flower{Parent: "ingress", Protocol: "ip", Prio: 1, SkipSw: true,
		Actions: tc.ActionList{tc.Gact{Verdict: "drop"}}}, 2, testIndex)
	require.NoError(t, err)
	fl, ok := f.(*netlink.Flower)
	require.True(t, ok, "%T", f)
	assert.True(t, fl.SkipSw)
	assert.False(t, fl.SkipHw)
	_, err = Filter(tc.Flower{Parent: "ingress", Prio: 1, SkipSw: true, SkipHw: true}, 2, testIndex)
	assert.ErrorContains(t, err, "flower SkipSw")
}
