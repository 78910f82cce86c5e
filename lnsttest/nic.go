package lnsttest

import (
	"errors"
	"fmt"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
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
	st := d.host.s.state(t)
	r, err := d.host.client.SetChannels(rpcCtx(t), &pb.SetEthtoolRequest{Host: d.host.id, Group: st.group, Name: d.name, Params: counts})
	if ns := d.notSupported("channels", err); ns != nil {
		return ns
	}
	if err != nil {
		t.Fatalf("%s: set channels %s of %s: %v", d.host.name, ethtool.Format(counts), d.name, err)
	}
	st.logger().Debug("set channels", "host", d.host.name, "dev", d.name, "counts", ethtool.Format(counts))
	st.undoAt(t, d.host.client, "channels of "+d.name+" on "+d.host.name, r.Seq)
	return nil
}

// Channels reads the device's queue counts and their maximums, by
// ethtool -l's names (a kind of queue the device does not have is absent);
// ok is false when its driver has no channel settings.
func (d *Device) Channels(t testing.TB) (counts, max map[string]uint32, ok bool) {
	t.Helper()
	r, err := d.host.client.Channels(rpcCtx(t), &pb.LinkRef{Host: d.host.id, Name: d.name})
	if d.notSupported("channels", err) != nil {
		return nil, nil, false
	}
	if err != nil {
		t.Fatalf("%s: read channels of %s: %v", d.host.name, d.name, err)
	}
	return r.Params, r.Max, true
}
