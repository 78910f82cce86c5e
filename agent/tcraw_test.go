package agent

import (
	"encoding/binary"
	"testing"

	"github.com/lnst-go/lnst/devices/tc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func u32b(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// TestTcPutMsgBytes checks the message that puts a qdisc back: header,
// tcmsg and the kind and options attributes, byte for byte.
func TestTcPutMsgBytes(t *testing.T) {
	o := tcObject{Parent: tc.HandleRoot, Handle: 0x30000, Kind: "tbf", Options: []byte{1, 2, 3, 4}}
	b := tcPutMsg(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, 7, o).Serialize()
	want := []byte{}
	body := []byte{unix.AF_UNSPEC, 0, 0, 0}
	body = append(body, u32b(7)...)
	body = append(body, u32b(0x30000)...)
	body = append(body, u32b(tc.HandleRoot)...)
	body = append(body, u32b(0)...)
	body = append(body, 8, 0, nl.TCA_KIND, 0, 't', 'b', 'f', 0)
	body = append(body, 8, 0, nl.TCA_OPTIONS, 0, 1, 2, 3, 4)
	hdr := make([]byte, 16)
	binary.NativeEndian.PutUint32(hdr[0:], uint32(16+len(body)))
	binary.NativeEndian.PutUint16(hdr[4:], unix.RTM_NEWQDISC)
	binary.NativeEndian.PutUint16(hdr[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	want = append(append(want, hdr[:8]...), b[8:16]...) // sequence and port are the request's
	want = append(want, body...)
	assert.Equal(t, want, b)

	// A filter's delete carries its priority and protocol in info.
	d := tcDelMsg(unix.RTM_DELTFILTER, 7, tcObject{Parent: 0x10000, Info: filterInfo(unix.ETH_P_IP, 5), Kind: "u32"}).Serialize()
	assert.Equal(t, uint32(5<<16|0x0008), binary.NativeEndian.Uint32(d[16+16:16+20]), "prio 5, protocol 0x0800 in network order")
}

// TestTcParse parses a dumped filter with stats and actions, and makes it
// one to put back.
func TestTcParse(t *testing.T) {
	msg := (&nl.TcMsg{Family: unix.AF_UNSPEC, Ifindex: 3, Handle: 0x80000800, Parent: 0x10000, Info: filterInfo(unix.ETH_P_IP, 2)}).Serialize()
	opts := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	opts.AddRtAttr(1, u32b(0x10010))                         // classid
	opts.AddRtAttr(nlU32Hash, u32b(0x80000000))              // hash table
	opts.AddRtAttr(nlU32Sel, []byte{1, 0, 0, 0, 0, 0, 0, 0}) // a selector
	opts.AddRtAttr(11, u32b(8|1))                            // not in hw, skip hw
	act := opts.AddRtAttr(nl.TCA_U32_ACT, nil).AddRtAttr(1, nil)
	act.AddRtAttr(nl.TCA_ACT_KIND, nl.ZeroTerminated("gact"))
	st := act.AddRtAttr(nl.TCA_ACT_STATS, nil)
	basic := make([]byte, 16)
	binary.NativeEndian.PutUint64(basic, 1500)
	binary.NativeEndian.PutUint32(basic[8:], 3)
	st.AddRtAttr(nl.TCA_STATS_BASIC, basic)
	st.AddRtAttr(nl.TCA_STATS_QUEUE, append(append(append(append(u32b(1), u32b(100)...), u32b(2)...), u32b(0)...), u32b(4)...))
	b := append(msg, nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("u32")).Serialize()...)
	b = append(b, opts.Serialize()...)

	o, err := parseTcMsg(b)
	require.NoError(t, err)
	assert.Equal(t, "u32", o.Kind)
	assert.Equal(t, uint16(2), o.prio())
	assert.Equal(t, uint16(unix.ETH_P_IP), o.proto())
	classID, acts := filterActions(o)
	assert.Equal(t, uint32(0x10010), classID)
	assert.Equal(t, []tc.ActionInfo{{Kind: "gact", Stats: tc.Stats{Bytes: 1500, Packets: 3, Qlen: 1, Backlog: 100, Drops: 2, Overlimits: 4}}}, acts)

	back := filterPutBack(o)
	assert.Zero(t, back.Handle, "the kernel picks a u32 key's handle")
	attrs, err := nl.ParseRouteAttr(back.Options)
	require.NoError(t, err)
	var types []uint16
	for _, a := range attrs {
		types = append(types, a.Attr.Type)
		if a.Attr.Type == 11 {
			assert.Equal(t, uint32(1), binary.NativeEndian.Uint32(a.Value), "only skip_hw stays of the flags")
		}
	}
	assert.Equal(t, []uint16{1, nlU32Sel, 11, nl.TCA_U32_ACT}, types, "the hash table goes")

	_, err = parseTcMsg([]byte{1, 2})
	assert.ErrorContains(t, err, "shorter than a tcmsg")
}

// TestUserFilter: of a filter dump, the per-priority head the kernel
// dumps first for every classifier (no handle, no options: a flower
// filter lists as two without this) and a u32 hash table are not filters
// a recipe made; a flower filter and a u32 key are.
func TestUserFilter(t *testing.T) {
	parse := func(kind string, handle uint32, opts *nl.RtAttr) tcObject {
		t.Helper()
		b := (&nl.TcMsg{Family: unix.AF_UNSPEC, Ifindex: 3, Handle: handle, Parent: tc.HandleClsactIngress, Info: filterInfo(unix.ETH_P_IP, 1)}).Serialize()
		b = append(b, nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated(kind)).Serialize()...)
		if opts != nil {
			b = append(b, opts.Serialize()...)
		}
		o, err := parseTcMsg(b)
		require.NoError(t, err)
		return o
	}
	flowerOpts := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	flowerOpts.AddRtAttr(nl.TCA_FLOWER_KEY_ETH_TYPE, []byte{8, 0})
	assert.False(t, userFilter(parse("flower", 0, nil)), "flower head")
	assert.True(t, userFilter(parse("flower", 1, flowerOpts)), "flower filter 1")
	assert.False(t, userFilter(parse("matchall", 0, nil)), "matchall head")
	assert.False(t, userFilter(parse("u32", 0, nil)), "u32 head")
	ht := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	ht.AddRtAttr(4, u32b(1)) // divisor
	assert.False(t, userFilter(parse("u32", 0x80000000, ht)), "u32 hash table 800:")
	key := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	key.AddRtAttr(nlU32Sel, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	assert.True(t, userFilter(parse("u32", 0x80000800, key)), "u32 key 800::800")
}
