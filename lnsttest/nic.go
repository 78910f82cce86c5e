package lnsttest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNotSupported is what a Try* method of a Device returns (wrapped in a
// *NotSupportedError) when the device's driver does not have the setting:
// a recipe skips on it, naming what was missing.
//
//	if err := d.TrySetChannels(t, map[string]uint32{"combined": 4}); errors.Is(err, lnsttest.ErrNotSupported) {
//		t.Skip(err)
//	}
var ErrNotSupported = errors.New("not supported by the device's driver")

// NotSupportedError says which setting of which device on which host its
// driver does not have.
type NotSupportedError struct {
	Host, Device, What string
	// Detail is the agent's message.
	Detail string
}

func (e *NotSupportedError) Error() string {
	return fmt.Sprintf("%s: %s of %s: %v (%s)", e.Host, e.What, e.Device, ErrNotSupported, e.Detail)
}

// Is makes errors.Is(err, ErrNotSupported) hold.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

// notSupported turns an agent's Unimplemented answer into a
// *NotSupportedError; nil for any other error.
func (d *Device) notSupported(what string, err error) error {
	if status.Code(err) != codes.Unimplemented {
		return nil
	}
	return &NotSupportedError{Host: d.host.name, Device: d.name, What: what, Detail: status.Convert(err).Message()}
}

// SetChannels sets the device's queue counts, by the names ethtool -L
// takes ("rx", "tx", "other", "combined"), and sets them back when the
// test ends. A count above the device's maximum fails the test naming the
// maximum; so does a kind of queue the driver does not have (see
// TrySetChannels to skip on that).
func (d *Device) SetChannels(t testing.TB, counts map[string]uint32) {
	t.Helper()
	if err := d.TrySetChannels(t, counts); err != nil {
		t.Fatal(err)
	}
}

// TrySetChannels is SetChannels returning, rather than failing on, an
// error wrapping ErrNotSupported when the driver has no such setting.
// Other errors fail the test.
func (d *Device) TrySetChannels(t testing.TB, counts map[string]uint32) error {
	t.Helper()
	return d.trySetNic(t, "channels", d.host.client.SetChannels, counts)
}

// Channels reads the device's queue counts and their maximums, by
// ethtool -l's names (a kind of queue the device does not have is absent);
// ok is false when its driver has no channel settings.
func (d *Device) Channels(t testing.TB) (counts, max map[string]uint32, ok bool) {
	t.Helper()
	r, ok := d.readNic(t, "channels", d.host.client.Channels)
	return r.GetParams(), r.GetMax(), ok
}

// SetPause sets the device's pause frame settings, by the names ethtool
// -A takes ("autoneg", "rx", "tx"; each 0 or 1), and sets them back when
// the test ends. A driver without them fails the test (see TrySetPause).
func (d *Device) SetPause(t testing.TB, settings map[string]uint32) {
	t.Helper()
	if err := d.TrySetPause(t, settings); err != nil {
		t.Fatal(err)
	}
}

// TrySetPause is SetPause returning an error wrapping ErrNotSupported
// when the driver has no pause frame settings.
func (d *Device) TrySetPause(t testing.TB, settings map[string]uint32) error {
	t.Helper()
	return d.trySetNic(t, "pause settings", d.host.client.SetPause, settings)
}

// Pause reads the device's pause frame settings; ok is false when its
// driver has none.
func (d *Device) Pause(t testing.TB) (settings map[string]uint32, ok bool) {
	t.Helper()
	r, ok := d.readNic(t, "pause settings", d.host.client.Pause)
	return r.GetParams(), ok
}

// SetLinkModes sets the device's "speed" (Mb/s), "duplex" (0 half, 1
// full) or "autoneg" (0 or 1), as ethtool -s, and sets them back when
// the test ends. A driver that cannot set them fails the test (see
// TrySetLinkModes).
func (d *Device) SetLinkModes(t testing.TB, modes map[string]uint32) {
	t.Helper()
	if err := d.TrySetLinkModes(t, modes); err != nil {
		t.Fatal(err)
	}
}

// TrySetLinkModes is SetLinkModes returning an error wrapping
// ErrNotSupported when the driver cannot set them.
func (d *Device) TrySetLinkModes(t testing.TB, modes map[string]uint32) error {
	t.Helper()
	return d.trySetNic(t, "link modes", d.host.client.SetLinkModes, modes)
}

// LinkModes reads the device's speed, duplex and autoneg; ok is false
// when its driver has no link settings.
func (d *Device) LinkModes(t testing.TB) (modes map[string]uint32, ok bool) {
	t.Helper()
	r, ok := d.readNic(t, "link modes", d.host.client.LinkModes)
	return r.GetParams(), ok
}

func (d *Device) trySetNic(t testing.TB, what string, call func(context.Context, *pb.SetEthtoolRequest, ...grpc.CallOption) (*pb.ChangeReply, error), params map[string]uint32) error {
	t.Helper()
	st := d.host.s.state(t)
	r, err := call(rpcCtx(t), &pb.SetEthtoolRequest{Host: d.host.id, Group: st.group, Name: d.name, Params: params})
	if ns := d.notSupported(what, err); ns != nil {
		return ns
	}
	if err != nil {
		t.Fatalf("%s: set %s %s of %s: %v", d.host.name, what, ethtool.Format(params), d.name, err)
	}
	st.logger().Debug("set "+what, "host", d.host.name, "dev", d.name, "params", ethtool.Format(params))
	st.undoAt(t, d.host.client, what+" of "+d.name+" on "+d.host.name, r.Seq)
	return nil
}

func (d *Device) readNic(t testing.TB, what string, call func(context.Context, *pb.LinkRef, ...grpc.CallOption) (*pb.EthtoolReply, error)) (*pb.EthtoolReply, bool) {
	t.Helper()
	r, err := call(rpcCtx(t), &pb.LinkRef{Host: d.host.id, Name: d.name})
	if d.notSupported(what, err) != nil {
		return nil, false
	}
	if err != nil {
		t.Fatalf("%s: read %s of %s: %v", d.host.name, what, d.name, err)
	}
	return r, true
}
