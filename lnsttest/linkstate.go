package lnsttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	pb "github.com/lnst-go/lnst/internal/agentpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// SetNetns moves the device into target, a host of the same agent (one
// made with Host.Netns, or another lab host), and moves it back when the
// test ends. The kernel takes the device down and drops its addresses on
// the move; moving back sets it up again if it was up. From the call on,
// d is the device in target; it is the device of its first host again
// after the test. A target gone before the test ends took the device with
// it (a veth is destroyed, a physical device goes back to the machine's
// initial namespace). Every handle of the device sees the move.
func (d *Device) SetNetns(t testing.TB, target *Host) {
	t.Helper()
	from := d.host
	if target == nil || target.client != from.client {
		t.Fatalf("%s: SetNetns of %s: the target must be a host of the same agent (one made with Host.Netns)", from.name, d.name)
	}
	st := from.s.state(t)
	r, err := from.client.SetLinkNetns(rpcCtx(t), &pb.SetLinkNetnsRequest{Host: from.id, Group: st.group, Name: d.name, Target: target.id})
	if err != nil {
		t.Fatalf("%s: move %s to %s: %v", from.name, d.name, target.name, err)
	}
	st.logger().Info("moved device", "dev", d.name, "from", from.name, "to", target.name)
	id, name := d.devIdent, d.name
	t.Cleanup(func() { id.rebind(from, name) })
	st.undoAt(t, from.client, fmt.Sprintf("move of %s from %s to %s", d.name, from.name, target.name), r.Seq)
	id.rebind(target, name)
}

// Rename renames the device. A device that is up is taken down, renamed
// and set up again (the kernel renames only devices that are down); its
// addresses stay. It gets its name back when the test ends. From the
// call on, d and every other handle of the device (Iface of its required
// name too) name it by its new name, and by its old one again after the
// test.
func (d *Device) Rename(t testing.TB, newName string) {
	t.Helper()
	st := d.host.s.state(t)
	old := d.name
	r, err := d.host.client.RenameLink(rpcCtx(t), &pb.RenameLinkRequest{Host: d.host.id, Group: st.group, Name: old, NewName: newName})
	if err != nil {
		t.Fatalf("%s: rename %s to %s: %v", d.host.name, old, newName, err)
	}
	st.logger().Info("renamed device", "host", d.host.name, "dev", old, "to", newName)
	id := d.devIdent
	t.Cleanup(func() { id.rebind(id.host, old) })
	st.undoAt(t, d.host.client, fmt.Sprintf("rename of %s to %s on %s", old, newName, d.host.name), r.Seq)
	id.rebind(id.host, newName)
}

// WaitState waits until the device's operational state is state ("up":
// the kernel reports it running; "down") and fails the test if it is not
// within timeout. It is driven by the kernel's notifications, not by
// polling.
func (d *Device) WaitState(t testing.TB, state string, timeout time.Duration) {
	t.Helper()
	d.waitLink(t, "operational state "+state, &pb.WaitLinkRequest{Want: &pb.WaitLinkRequest_OperState{OperState: state}}, timeout)
}

// WaitCarrier waits until the device has carrier (on) or has lost it, and
// fails the test if that does not happen within timeout.
func (d *Device) WaitCarrier(t testing.TB, on bool, timeout time.Duration) {
	t.Helper()
	d.waitLink(t, fmt.Sprintf("carrier %v", on), &pb.WaitLinkRequest{Want: &pb.WaitLinkRequest_Carrier{Carrier: on}}, timeout)
}

func (d *Device) waitLink(t testing.TB, what string, req *pb.WaitLinkRequest, timeout time.Duration) {
	t.Helper()
	if timeout <= 0 {
		t.Fatalf("%s: wait for %s of %s: timeout %v is not positive", d.host.name, what, d.name, timeout)
	}
	req.Host, req.Name, req.Timeout = d.host.id, d.name, durationpb.New(timeout)
	// The agent's own deadline, plus a margin for the call.
	ctx, cancel := context.WithTimeout(rpcCtx(t), timeout+10*time.Second)
	defer cancel()
	if _, err := d.host.client.WaitLink(ctx, req); err != nil {
		t.Fatalf("%s: wait %v for %s of %s: %v", d.host.name, timeout, what, d.name, err)
	}
}
