package lnsttest

import (
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// RSS is a device's receive side scaling, as ethtool -x shows it.
type RSS struct {
	// Indir maps hash bucket i to rx queue Indir[i].
	Indir []uint32
	Key   []byte
	// Hfunc is "toeplitz", "xor", "crc32" or "" when none is reported.
	Hfunc string
}

// RSSChange is what SetRSS changes, as ethtool -X; zero fields stay.
// Give at most one of Indir, Equal and Default.
type RSSChange struct {
	// Indir is the new table, as long as the device's.
	Indir []uint32
	// Equal spreads the table over the first Equal queues (ethtool -X
	// equal N); Equal 1 sends every flow to queue 0.
	Equal int
	// Default resets the table to the driver's default.
	Default bool
	Key     []byte
	Hfunc   string
}

// RSS reads the device's RSS; ok is false when its driver has none.
func (d *Device) RSS(t testing.TB) (rss RSS, ok bool) {
	t.Helper()
	r, err := d.host.client.NicRss(rpcCtx(t), &pb.LinkRef{Host: d.host.id, Name: d.name})
	if d.notSupported("RSS", err) != nil {
		return RSS{}, false
	}
	if err != nil {
		t.Fatalf("%s: read RSS of %s: %v", d.host.name, d.name, err)
	}
	return RSS{Indir: r.Indir, Key: r.Key, Hfunc: r.Hfunc}, true
}

// SetRSS changes the device's RSS and sets it back when the test ends (a
// table that was the driver's default is set back as the default). A
// driver without RSS fails the test (see TrySetRSS).
func (d *Device) SetRSS(t testing.TB, c RSSChange) {
	t.Helper()
	if err := d.TrySetRSS(t, c); err != nil {
		t.Fatal(err)
	}
}

// TrySetRSS is SetRSS returning an error wrapping ErrNotSupported when
// the driver has no RSS.
func (d *Device) TrySetRSS(t testing.TB, c RSSChange) error {
	t.Helper()
	if c.Equal < 0 {
		t.Fatalf("%s: set RSS of %s: equal %d is negative", d.host.name, d.name, c.Equal)
	}
	st := d.host.s.state(t)
	r, err := d.host.client.SetNicRss(rpcCtx(t), &pb.NicRssRequest{Host: d.host.id, Group: st.group, Name: d.name,
		Indir: c.Indir, Equal: uint32(c.Equal), DefaultIndir: c.Default, Key: c.Key, Hfunc: c.Hfunc})
	if ns := d.notSupported("RSS", err); ns != nil {
		return ns
	}
	if err != nil {
		t.Fatalf("%s: set RSS of %s: %v", d.host.name, d.name, err)
	}
	st.undoAt(t, d.host.client, "RSS of "+d.name+" on "+d.host.name, r.Seq)
	return nil
}

// FlowHash reads the fields the device hashes a flow type ("tcp4",
// "udp6", ...) on, as ethtool -n rx-flow-hash, in ethtool -N's letters
// ("sdfn"); ok is false when its driver does not say.
func (d *Device) FlowHash(t testing.TB, flow string) (fields string, ok bool) {
	t.Helper()
	r, err := d.host.client.NicFlowHash(rpcCtx(t), &pb.NicFlowHashRequest{Host: d.host.id, Name: d.name, FlowType: flow})
	if d.notSupported("rx-flow-hash", err) != nil {
		return "", false
	}
	if err != nil {
		t.Fatalf("%s: read rx-flow-hash %s of %s: %v", d.host.name, flow, d.name, err)
	}
	return r.Fields, true
}

// SetFlowHash sets the fields the device hashes a flow type on (ethtool
// -N rx-flow-hash <flow> <fields>) and sets them back when the test ends.
func (d *Device) SetFlowHash(t testing.TB, flow, fields string) {
	t.Helper()
	if err := d.TrySetFlowHash(t, flow, fields); err != nil {
		t.Fatal(err)
	}
}

// TrySetFlowHash is SetFlowHash returning an error wrapping
// ErrNotSupported when the driver cannot set them.
func (d *Device) TrySetFlowHash(t testing.TB, flow, fields string) error {
	t.Helper()
	st := d.host.s.state(t)
	r, err := d.host.client.SetNicFlowHash(rpcCtx(t), &pb.NicFlowHashRequest{Host: d.host.id, Group: st.group, Name: d.name, FlowType: flow, Fields: fields})
	if ns := d.notSupported("rx-flow-hash", err); ns != nil {
		return ns
	}
	if err != nil {
		t.Fatalf("%s: set rx-flow-hash %s %s of %s: %v", d.host.name, flow, fields, d.name, err)
	}
	st.undoAt(t, d.host.client, "rx-flow-hash "+flow+" of "+d.name+" on "+d.host.name, r.Seq)
	return nil
}

// Ntuple is an ntuple filter (ethtool -N flow-type ...): packets of Flow
// ("tcp4" or "udp4") matching the addresses and ports given ("" and 0
// match any) go to rx queue Queue, or are dropped with Drop.
type Ntuple struct {
	Flow             string
	SrcIP, DstIP     string
	SrcPort, DstPort int
	Queue            int
	Drop             bool
}

// AddNtuple adds an ntuple filter and deletes it when the test ends; it
// returns the location the driver gave it.
func (d *Device) AddNtuple(t testing.TB, n Ntuple) int {
	t.Helper()
	loc, err := d.TryAddNtuple(t, n)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TryAddNtuple is AddNtuple returning an error wrapping ErrNotSupported
// when the driver has no ntuple filters (or they are off: the "ntuple"
// feature).
func (d *Device) TryAddNtuple(t testing.TB, n Ntuple) (int, error) {
	t.Helper()
	if n.Queue < 0 || n.SrcPort < 0 || n.DstPort < 0 {
		t.Fatalf("%s: ntuple filter on %s: negative queue or port in %+v", d.host.name, d.name, n)
	}
	st := d.host.s.state(t)
	r, err := d.host.client.AddNicNtuple(rpcCtx(t), &pb.NicNtupleRequest{Host: d.host.id, Group: st.group, Name: d.name, FlowType: n.Flow,
		SrcIp: n.SrcIP, DstIp: n.DstIP, SrcPort: uint32(n.SrcPort), DstPort: uint32(n.DstPort), Queue: uint64(n.Queue), Drop: n.Drop})
	if ns := d.notSupported("ntuple filters", err); ns != nil {
		return 0, ns
	}
	if err != nil {
		t.Fatalf("%s: add ntuple filter %+v on %s: %v", d.host.name, n, d.name, err)
	}
	st.undoAt(t, d.host.client, "ntuple filter of "+d.name+" on "+d.host.name, r.Seq)
	return int(r.Location), nil
}
