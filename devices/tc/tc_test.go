package tc

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/devices/internal/specwire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

type spec interface {
	Kind() string
	Validate() error
}

// validSpecs are specs that must pass Validate, at least one per type.
var validSpecs = []spec{
	Tbf{Rate: 10 * Mbit, Burst: 32 << 10, Latency: 50 * time.Millisecond},
	Tbf{Handle: "1:", Rate: 10 * Gbit, Burst: 1 << 20, Limit: 1 << 20, Peakrate: 20 * Gbit, Minburst: 1500},
	Tbf{Parent: "1:10", Handle: "10:", Rate: 1 * Mbit, Burst: 1600, Limit: 3000},
	Htb{Handle: "1:", Default: "1:20"},
	Htb{Handle: "1:", R2Q: 5, DirectQlen: ptr(100)},
	Netem{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, DelayCorr: 25, Loss: 0.1, LossCorr: 10,
		Duplicate: 1, Reorder: 25, ReorderCorr: 50, Corrupt: 0.5, Rate: 100 * Mbit, Limit: 5000},
	Netem{Loss: 100},
	Fq{Limit: 1000, FlowLimit: 50, Quantum: 3000, MaxRate: 1 * Gbit, NoPacing: true},
	FqCodel{Limit: 1000, Flows: 256, Target: 5 * time.Millisecond, Interval: 100 * time.Millisecond, NoECN: true},
	Prio{},
	Prio{Handle: "1:", Bands: 2, Priomap: []int{1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}},
	Ingress{},
	Clsact{},
	HtbClass{Parent: "1:", ClassID: "1:10", Rate: 10 * Mbit},
	HtbClass{Parent: "1:1", ClassID: "1:10", Rate: 10 * Mbit, Ceil: 20 * Mbit, Burst: 15000, Cburst: 15000, Prio: 7, Quantum: 1500},
	U32{Parent: "1:", Protocol: "ip", Prio: 1, ClassID: "1:10", IPProto: "tcp", DstPort: 5201, Dst: "198.18.1.0/24"},
	U32{Parent: "ingress", Prio: 1, Actions: ActionList{Mirred{Dev: "ifb0"}}},
	U32{Parent: "ingress", Protocol: "ip", Prio: 2, Dst: "198.18.1.1", SkipSw: true, Actions: ActionList{Gact{Verdict: "drop"}}},
	MatchAll{Parent: "ingress", Prio: 2, SkipSw: true, Actions: ActionList{Gact{Verdict: "drop"}}},
	U32{Parent: "1:", Protocol: "ipv6", Prio: 2, Keys: []U32Key{{Val: 6 << 8, Mask: 0xff00, Off: 4}}},
	Flower{Parent: "ingress", Protocol: "ip", Prio: 1, IPProto: "udp", DstPort: 53, Src: "198.18.0.0/15", Actions: ActionList{Gact{Verdict: "drop"}}},
	Flower{Parent: "egress", Protocol: "ipv6", Prio: 3, Dst: "2001:db8::1", SrcMAC: "02:00:00:00:00:01", SkipHw: true},
	Flower{Parent: "1:", Protocol: "802.1q", Prio: 1, VlanID: 10, ClassID: "1:10"},
	MatchAll{Parent: "ingress", Prio: 1, Actions: ActionList{Police{Rate: 1 * Mbit, Burst: 10000}, Gact{Verdict: "pass"}}},
	Gact{Verdict: "drop"},
	Mirred{Dev: "ifb0", Mirror: true, Ingress: true},
	Police{Rate: 8 * Mbit, Burst: 10 << 10, MTU: 2048, Exceed: "reclassify", Conform: "pipe"},
	SkbEdit{Mark: ptr(uint32(5)), Mask: ptr(uint32(0xff))},
	SkbEdit{Priority: "1:10", QueueMapping: ptr(1)},
}

// invalid has specs that must fail, with the field and a part of the
// message the error must name.
var invalid = []struct {
	spec        spec
	field, want string
}{
	{Tbf{Burst: 1600, Limit: 3000}, "Rate", "required"},
	{Tbf{Rate: 4 * Bit, Burst: 1600, Limit: 3000}, "Rate", "4bit"},
	{Tbf{Rate: Mbit, Limit: 3000}, "Burst", "0 is out of range"},
	{Tbf{Rate: Mbit, Burst: 1600}, "Limit", "required"},
	{Tbf{Rate: Mbit, Burst: 1600, Limit: 10, Latency: time.Second}, "Latency", "give one"},
	{Tbf{Rate: Mbit, Burst: 1600, Latency: 1500 * time.Nanosecond}, "Latency", "whole number of 1µs"},
	{Tbf{Rate: Mbit, Burst: 1600, Limit: 3000, Peakrate: 2 * Mbit}, "Peakrate", "go together"},
	{Tbf{Rate: Mbit, Burst: 1600, Limit: 3000, Peakrate: Mbit, Minburst: 1500}, "Peakrate", "not above Rate"},
	{Tbf{Handle: "1:10", Rate: Mbit, Burst: 1600, Limit: 3000}, "Handle", "names a class"},
	{Tbf{Handle: "8001:", Rate: Mbit, Burst: 1600, Limit: 3000}, "Handle", "the kernel picks"},
	{Tbf{Handle: "x:", Rate: Mbit, Burst: 1600, Limit: 3000}, "Handle", "\"x\""},
	{Tbf{Parent: "1:10", Handle: "1:", Rate: Mbit, Burst: 1600, Limit: 3000}, "Handle", "major of its parent"},
	{Tbf{Parent: "bogus", Rate: Mbit, Burst: 1600, Limit: 3000}, "Parent", "\"bogus\""},
	{Htb{Default: "1:10"}, "Default", "give Handle"},
	{Htb{Handle: "1:", Default: "2:10"}, "Default", "not a class of this qdisc"},
	{Htb{Handle: "1:", R2Q: -1}, "R2Q", "-1"},
	{Netem{Loss: 101}, "Loss", "101"},
	{Netem{Delay: time.Millisecond, Corrupt: -1}, "Corrupt", "-1"},
	{Netem{Jitter: time.Millisecond}, "Jitter", "needs a Delay"},
	{Netem{Reorder: 10}, "Reorder", "needs a Delay"},
	{Netem{Delay: -time.Millisecond}, "Delay", "negative"},
	{Netem{Rate: 2}, "Rate", "below 8bit"},
	{Fq{Limit: -5}, "Limit", "-5"},
	{Fq{MaxRate: 100 * Gbit}, "MaxRate", "100Gbit"},
	{FqCodel{Flows: 70000}, "Flows", "70000"},
	{FqCodel{Target: 1500 * time.Nanosecond}, "Target", "1.5µs"},
	{Prio{Bands: 17}, "Bands", "17"},
	{Prio{Bands: 2}, "Priomap", "required with 2 bands"},
	{Prio{Priomap: []int{0}}, "Priomap", "1 entries"},
	{Prio{Priomap: []int{0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, "Priomap", "band 3"},
	{HtbClass{ClassID: "1:10", Rate: Mbit}, "Parent", "required"},
	{HtbClass{Parent: "1:", Rate: Mbit}, "ClassID", "required"},
	{HtbClass{Parent: "1:", ClassID: "1:", Rate: Mbit}, "ClassID", "names a qdisc"},
	{HtbClass{Parent: "1:", ClassID: "2:10", Rate: Mbit}, "ClassID", "give it major 1"},
	{HtbClass{Parent: "1:", ClassID: "1:10"}, "Rate", "required"},
	{HtbClass{Parent: "1:", ClassID: "1:10", Rate: 2 * Mbit, Ceil: Mbit}, "Ceil", "below Rate"},
	{HtbClass{Parent: "1:", ClassID: "1:10", Rate: Mbit, Prio: 8}, "Prio", "8"},
	{U32{Protocol: "ip", Prio: 1}, "Parent", "required"},
	{U32{Parent: "1:", Protocol: "ip"}, "Prio", "required"},
	{U32{Parent: "1:", Protocol: "ipx", Prio: 1}, "Protocol", "\"ipx\""},
	{U32{Parent: "1:", Protocol: "all", Prio: 1, DstPort: 80, IPProto: "tcp"}, "Protocol", "IP fields"},
	{U32{Parent: "1:", Protocol: "ip", Prio: 1, DstPort: 80}, "IPProto", "no ports"},
	{U32{Parent: "1:", Protocol: "ip", Prio: 1, IPProto: "gre"}, "IPProto", "\"gre\""},
	{U32{Parent: "1:", Protocol: "ip", Prio: 1, Dst: "2001:db8::1"}, "Dst", "not an IPv4"},
	{U32{Parent: "1:", Protocol: "ip", Prio: 1, Src: "198.18.300.1"}, "Src", "198.18.300.1"},
	{U32{Parent: "1:", Protocol: "ipv6", Prio: 1, Dst: "2001:db8::1"}, "Protocol", "IPv4 header words"},
	{U32{Parent: "1:", Prio: 1, Keys: []U32Key{{Off: 2}}}, "Keys", "offset 2"},
	{U32{Parent: "1:", Prio: 1, ClassID: "zz"}, "ClassID", "\"zz\""},
	{U32{Parent: "ingress", Prio: 1, Actions: ActionList{Mirred{}}}, "Actions[0]", "mirred Dev"},
	{U32{Parent: "ingress", Prio: 1, Actions: ActionList{nil}}, "Actions[0]", "nil"},
	{Flower{Parent: "ingress", Protocol: "ipv6", Prio: 1, Src: "198.18.0.1"}, "Src", "not an IPv6"},
	{Flower{Parent: "ingress", Protocol: "ip", Prio: 1, SrcMAC: "zz"}, "SrcMAC", "\"zz\""},
	{Flower{Parent: "ingress", Protocol: "ip", Prio: 1, VlanID: 10}, "VlanID", "802.1q"},
	{Flower{Parent: "ingress", Protocol: "802.1q", Prio: 1, VlanID: 5000}, "VlanID", "5000"},
	{Flower{Parent: "ingress", Prio: 1, SkipHw: true, SkipSw: true}, "SkipSw", "neither software nor hardware"},
	{U32{Parent: "ingress", Prio: 1, SkipHw: true, SkipSw: true}, "SkipSw", "given with SkipHw"},
	{MatchAll{Parent: "ingress", Prio: 1, SkipHw: true, SkipSw: true}, "SkipSw", "given with SkipHw"},
	{Flower{Parent: "ingress", Protocol: "ip", Prio: 1, Actions: ActionList{Gact{Verdict: "shoot"}}}, "Actions[0]", "\"shoot\""},
	{MatchAll{Parent: "ingress", Prio: 70000}, "Prio", "70000"},
	{MatchAll{Parent: "ingress", Prio: 1, Actions: ActionList{Police{Burst: 10}}}, "Actions[0]", "police Rate"},
	{Gact{}, "Verdict", "\"\" is not one of"},
	{Mirred{Dev: "a/b"}, "Dev", "a/b"},
	{Police{Rate: 100 * Gbit, Burst: 10}, "Rate", "100Gbit"},
	{Police{Rate: Mbit}, "Burst", "required"},
	{Police{Rate: Mbit, Burst: 10, Exceed: "explode"}, "Exceed", "\"explode\""},
	{SkbEdit{}, "", "sets nothing"},
	{SkbEdit{Mask: ptr(uint32(1)), Priority: "1:1"}, "Mask", "without Mark"},
	{SkbEdit{Priority: "q"}, "Priority", "\"q\""},
	{SkbEdit{QueueMapping: ptr(70000)}, "QueueMapping", "70000"},
}

func TestValidate(t *testing.T) {
	for _, s := range validSpecs {
		assert.NoError(t, s.Validate(), "%#v", s)
	}
	for _, c := range invalid {
		err := c.spec.Validate()
		if !assert.Error(t, err, "%#v", c.spec) {
			continue
		}
		var ve *devices.ValidationError
		if assert.True(t, errors.As(err, &ve), "%#v: %v is not a ValidationError", c.spec, err) {
			assert.Equal(t, c.field, ve.Field, "%#v: %v", c.spec, err)
		}
		assert.Contains(t, err.Error(), c.want, "%#v", c.spec)
	}
}

// TestValidateCoversEveryKind checks that every kind of the package has
// a valid and an invalid case.
func TestValidateCoversEveryKind(t *testing.T) {
	good, bad := map[reflect.Type]bool{}, map[reflect.Type]bool{}
	for _, s := range validSpecs {
		good[reflect.TypeOf(s)] = true
	}
	for _, c := range invalid {
		bad[reflect.TypeOf(c.spec)] = true
	}
	for _, r := range []specwire.Registry{qdiscKinds, classKinds, filterKinds, actionKinds} {
		for kind, typ := range r.Types {
			assert.True(t, good[typ], "%s has no valid case", kind)
			if typ.NumField() > 0 {
				assert.True(t, bad[typ], "%s has no invalid case", kind)
			}
		}
	}
}

func TestErrorMessage(t *testing.T) {
	err := Tbf{Rate: Mbit, Burst: 1600, Limit: 10, Latency: time.Second}.Validate()
	assert.EqualError(t, err, "tbf Latency: 1s is given with Limit 10; give one of them")
	err = U32{Parent: "ingress", Prio: 1, Actions: ActionList{Mirred{}}}.Validate()
	assert.EqualError(t, err, "u32 Actions[0]: mirred Dev: device name is empty")
}

func TestHandles(t *testing.T) {
	for s, want := range map[string]uint32{
		"root": HandleRoot, "ingress": HandleIngress, "egress": HandleClsactEgress, "none": 0,
		"1:": 0x10000, "1:10": 0x10010, ":10": 0x10, "ffff:": 0xffff0000, "abcd:ef": 0xabcd00ef,
	} {
		h, err := ParseHandle(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, h, s)
	}
	for _, s := range []string{"", "1", "1:2:3", "10000:", ":", "g:", "1:fffff", "-1:"} {
		_, err := ParseHandle(s)
		assert.Error(t, err, "%q", s)
	}
	for h, want := range map[uint32]string{HandleRoot: "root", HandleIngress: "ingress", 0x10000: "1:", 0x10010: "1:10", 0: "none"} {
		assert.Equal(t, want, FormatHandle(h))
	}
}

func TestRate(t *testing.T) {
	assert.Equal(t, "8Mbit", (8 * Mbit).String())
	assert.Equal(t, "1500Kbit", (1500 * Kbit).String())
	assert.Equal(t, "12bit", (12 * Bit).String())
	assert.Equal(t, "2Gbit", (2 * Gbit).String())
	assert.Equal(t, uint64(1e6), (8 * Mbit).BytesPerSecond())
}

func TestU32Keys(t *testing.T) {
	f := U32{Parent: "1:", Protocol: "ip", Prio: 1, IPProto: "tcp", Src: "198.18.1.0/24", Dst: "198.18.2.3",
		SrcPort: 1000, DstPort: 5201, Keys: []U32Key{{Val: 0xffff, Mask: 0xff, Off: -4}}}
	require.NoError(t, f.Validate())
	assert.Equal(t, []U32Key{
		{Val: 6 << 16, Mask: 0x00ff0000, Off: 8},
		{Val: 0xc6120100, Mask: 0xffffff00, Off: 12},
		{Val: 0xc6120203, Mask: 0xffffffff, Off: 16},
		{Val: 1000<<16 | 5201, Mask: 0xffffffff, Off: 20},
		{Val: 0xff, Mask: 0xff, Off: -4},
	}, f.U32Keys())
	assert.Equal(t, []U32Key{{Val: 17 << 16, Mask: 0xff0000, Off: 8}, {Val: 5201, Mask: 0xffff, Off: 20}},
		U32{Protocol: "ip", IPProto: "udp", DstPort: 5201}.U32Keys())
	assert.Empty(t, U32{}.U32Keys())
}

func TestWireRoundTrip(t *testing.T) {
	for _, s := range validSpecs {
		var (
			kind string
			data []byte
			err  error
			back any
		)
		switch v := s.(type) {
		case Qdisc:
			kind, data, err = MarshalQdisc(v)
			require.NoError(t, err)
			back, err = UnmarshalQdisc(kind, data)
		case Class:
			kind, data, err = MarshalClass(v)
			require.NoError(t, err)
			back, err = UnmarshalClass(kind, data)
		case Filter:
			kind, data, err = MarshalFilter(v)
			require.NoError(t, err)
			back, err = UnmarshalFilter(kind, data)
		default:
			continue
		}
		require.NoError(t, err, "%s %s", kind, data)
		assert.Equal(t, s, back, "%s %s", kind, data)
	}
}

func TestWireRefuses(t *testing.T) {
	_, err := UnmarshalQdisc("cake", []byte(`{}`))
	assert.ErrorContains(t, err, `unknown kind "cake"`)
	_, err = UnmarshalQdisc("tbf", []byte(`{"rate":1}`))
	assert.ErrorContains(t, err, `unknown field "rate" for Tbf`)
	_, err = UnmarshalQdisc("tbf", []byte(`{"Rate":1000,"Burst":1600,"Limit":1} {}`))
	assert.ErrorContains(t, err, "data after")
	_, err = UnmarshalQdisc("tbf", []byte(`{"Rate":1000}`))
	assert.ErrorContains(t, err, "tbf Burst")
	_, err = UnmarshalFilter("u32", []byte(`{"Parent":"1:","Prio":1,"Actions":[{"Kind":"nat","Spec":{}}]}`))
	assert.ErrorContains(t, err, `action 0: unmarshal tc spec: unknown kind "nat"`)
	_, err = UnmarshalFilter("u32", []byte(`{"Parent":"1:","Prio":1,"Actions":[{"Kind":"mirred","Spec":{}}]}`))
	assert.ErrorContains(t, err, "mirred Dev")
	_, _, err = MarshalQdisc(nil)
	assert.Error(t, err)
	_, _, err = MarshalQdisc((*Tbf)(nil))
	assert.Error(t, err)
	_, _, err = MarshalFilter(U32{Parent: "1:", Prio: 1, Actions: ActionList{nil}})
	assert.ErrorContains(t, err, "action 0 is nil")
}

func TestKinds(t *testing.T) {
	q, f, a := Kinds()
	assert.Equal(t, []string{"clsact", "fq", "fq_codel", "htb", "ingress", "netem", "prio", "tbf"}, q)
	assert.Equal(t, []string{"flower", "matchall", "u32"}, f)
	assert.Equal(t, []string{"gact", "mirred", "police", "skbedit"}, a)
}

func TestSkipFlags(t *testing.T) {
	assert.Equal(t, uint32(0), SkipFlags(Flower{}))
	assert.Equal(t, uint32(2), SkipFlags(Flower{SkipSw: true}))
	assert.Equal(t, uint32(1), SkipFlags(U32{SkipHw: true}))
	assert.Equal(t, uint32(2), SkipFlags(MatchAll{SkipSw: true}))
	// Across the wire the flags stay.
	kind, data, err := MarshalFilter(U32{Parent: "ingress", Prio: 1, SkipSw: true})
	require.NoError(t, err)
	f, err := UnmarshalFilter(kind, data)
	require.NoError(t, err)
	assert.Equal(t, uint32(ClsFlagSkipSw), SkipFlags(f))
}
