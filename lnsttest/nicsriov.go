package lnsttest

import (
	"fmt"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// VF is one VF of a PF, as Device.VFs reads it.
type VF struct {
	Index     int
	MAC       string
	Vlan, Qos int
	MinRate   int // Mb/s, 0: no limit
	MaxRate   int // Mb/s, 0: no limit
	Spoofchk  bool
	Trust     bool
	LinkState string // "auto", "enable", "disable"
	// Netdev is the VF's device on the PF's host ("" when it has none):
	// Host.Iface(Netdev) is a handle of it, which SetNetns moves.
	Netdev string
}

// VFChange is what SetVF changes on a VF; nil fields and "" stay.
type VFChange struct {
	MAC              string
	Vlan, Qos        *int
	MinRate, MaxRate *int
	Spoofchk, Trust  *bool
	LinkState        string
}

// SetNumVFs gives the device (a PF) n VFs (sriov_numvfs) and sets the
// old count back when the test ends: VFs made here are removed then. A
// count above the PF's sriov_totalvfs fails the test naming the limit.
// The VFs appear as devices on the host: find them with VFs or
// Host.Iface by their names.
func (d *Device) SetNumVFs(t testing.TB, n int) {
	t.Helper()
	if n < 0 {
		t.Fatalf("%s: set VFs of %s: %d is negative", d.host.name, d.name, n)
	}
	st := d.host.s.state(t)
	r, err := d.host.client.SetNicNumVfs(rpcCtx(t), &pb.NicNumVfsRequest{Host: d.host.id, Group: st.group, Name: d.name, NumVfs: uint32(n)})
	if err != nil {
		t.Fatalf("%s: set %d VFs of %s: %v", d.host.name, n, d.name, err)
	}
	st.undoAt(t, d.host.client, fmt.Sprintf("%d VFs of %s on %s", n, d.name, d.host.name), r.Seq)
}

// VFs reads the device's VF count, the most it may have, and its VFs;
// ok is false when it has no SR-IOV.
func (d *Device) VFs(t testing.TB) (vfs []VF, total int, ok bool) {
	t.Helper()
	r, err := d.host.client.NicVfs(rpcCtx(t), &pb.LinkRef{Host: d.host.id, Name: d.name})
	if d.notSupported("SR-IOV", err) != nil {
		return nil, 0, false
	}
	if err != nil {
		t.Fatalf("%s: read VFs of %s: %v", d.host.name, d.name, err)
	}
	for _, v := range r.Vfs {
		vfs = append(vfs, VF{Index: int(v.Index), MAC: v.Mac, Vlan: int(v.Vlan), Qos: int(v.Qos), MinRate: int(v.MinRate), MaxRate: int(v.MaxRate),
			Spoofchk: v.Spoofchk, Trust: v.Trust, LinkState: v.LinkState, Netdev: v.Netdev})
	}
	return vfs, int(r.TotalVfs), true
}

func u32p(t testing.TB, what string, v *int) *uint32 {
	t.Helper()
	if v == nil {
		return nil
	}
	if *v < 0 {
		t.Fatalf("set VF: %s %d is negative", what, *v)
	}
	u := uint32(*v)
	return &u
}

// SetVF changes VF vf of the device (a PF) and sets it back when the
// test ends. A VF index past the PF's VFs fails the test naming their
// count.
func (d *Device) SetVF(t testing.TB, vf int, c VFChange) {
	t.Helper()
	if vf < 0 {
		t.Fatalf("%s: set VF %d of %s: negative index", d.host.name, vf, d.name)
	}
	st := d.host.s.state(t)
	req := &pb.NicVfRequest{Host: d.host.id, Group: st.group, Name: d.name, Vf: uint32(vf), Mac: c.MAC,
		Vlan: u32p(t, "vlan", c.Vlan), Qos: u32p(t, "qos", c.Qos), MinRate: u32p(t, "min rate", c.MinRate), MaxRate: u32p(t, "max rate", c.MaxRate),
		Spoofchk: c.Spoofchk, Trust: c.Trust, LinkState: c.LinkState}
	r, err := d.host.client.SetNicVf(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: set VF %d of %s: %v", d.host.name, vf, d.name, err)
	}
	st.undoAt(t, d.host.client, fmt.Sprintf("VF %d of %s on %s", vf, d.name, d.host.name), r.Seq)
}

// SetEswitch sets the eswitch mode ("legacy" or "switchdev") of the
// device's devlink instance and sets it back when the test ends.
func (d *Device) SetEswitch(t testing.TB, mode string) {
	t.Helper()
	st := d.host.s.state(t)
	r, err := d.host.client.SetNicEswitch(rpcCtx(t), &pb.NicEswitchRequest{Host: d.host.id, Group: st.group, Name: d.name, Mode: mode})
	if err != nil {
		t.Fatalf("%s: set eswitch mode of %s to %s: %v", d.host.name, d.name, mode, err)
	}
	st.undoAt(t, d.host.client, "eswitch mode of "+d.name+" on "+d.host.name, r.Seq)
}

// Representor returns the representor device of VF vf of the device (a
// PF in switchdev mode), found among its devlink ports.
func (d *Device) Representor(t testing.TB, vf int) *Device {
	t.Helper()
	r, err := d.host.client.NicEswitch(rpcCtx(t), &pb.LinkRef{Host: d.host.id, Name: d.name})
	if err != nil {
		t.Fatalf("%s: read eswitch of %s: %v", d.host.name, d.name, err)
	}
	for _, p := range r.Ports {
		if p.Flavour == "pcivf" && int(p.Vf) == vf && p.Netdev != "" {
			return d.host.device(p.Netdev)
		}
	}
	t.Fatalf("%s: %s (eswitch mode %s) has no representor of VF %d among its %d devlink ports", d.host.name, d.name, r.Mode, vf, len(r.Ports))
	return nil
}
