package lnsttest

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/ethtool"
	"google.golang.org/grpc"
)

// Device is a network device on a host: one the recipe required (Iface)
// or created (Create). Every handle of one device shares its identity, so
// a Rename or SetNetns through one is seen through all.
type Device struct {
	*devIdent
}

// Name is the device's real name on its host.
func (d *Device) Name() string { return d.name }

// Create makes a soft device on the host and destroys it when the test
// ends. For a Veth, the returned device is the first end; the peer is
// h.Iface(PeerName).
func (h *Host) Create(t testing.TB, spec devices.Spec) *Device {
	t.Helper()
	if spec == nil {
		t.Fatalf("%s: Create: no device spec", h.name)
	}
	if err := spec.Validate(); err != nil {
		t.Fatalf("%s: Create: %v", h.name, err)
	}
	st := h.s.state(t)
	kind, data, err := devices.Marshal(spec)
	if err != nil {
		t.Fatalf("%s: Create: %v", h.name, err)
	}
	req := &pb.CreateLinkRequest{Host: h.id, Group: st.group, Spec: &pb.CreateLinkRequest_Generic{Generic: &pb.GenericSpec{Kind: kind, Json: data}}}
	r, err := h.client.CreateLink(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("%s: create %s %s: %v", h.name, spec.Kind(), spec.LinkName(), err)
	}
	st.logger().Info("created", "host", h.name, "kind", spec.Kind(), "name", spec.LinkName())
	st.undoAt(t, h.client, fmt.Sprintf("%s %s on %s", spec.Kind(), spec.LinkName(), h.name), r.Seq)
	return h.device(spec.LinkName())
}

func (d *Device) set(t testing.TB, what string, req *pb.SetLinkRequest) {
	t.Helper()
	st := d.host.s.state(t)
	req.Host, req.Group, req.Name = d.host.id, st.group, d.name
	r, err := d.host.client.SetLink(rpcCtx(t), req)
	if err != nil {
		st.use(d.host.client) // part of the change may have been made
		t.Fatalf("%s: %s %s: %v", d.host.name, what, d.name, err)
	}
	st.logger().Debug(what, "host", d.host.name, "dev", d.name)
	st.undoAt(t, d.host.client, what+" "+d.name+" on "+d.host.name, r.Seq)
}

// Up sets the device administratively up.
func (d *Device) Up(t testing.TB) {
	t.Helper()
	up := true
	d.set(t, "set up", &pb.SetLinkRequest{Up: &up})
}

// Down sets the device administratively down.
func (d *Device) Down(t testing.TB) {
	t.Helper()
	down := false
	d.set(t, "set down", &pb.SetLinkRequest{Up: &down})
}

// SetMTU sets the device's MTU.
func (d *Device) SetMTU(t testing.TB, mtu int) {
	t.Helper()
	m := int32(mtu)
	d.set(t, fmt.Sprintf("set MTU %d of", mtu), &pb.SetLinkRequest{Mtu: &m})
}

// SetMaster enslaves the device to master (a bridge, a bond); nil releases
// it from its master. The bonding and team drivers take only ports that
// are down: a port that is up is taken down, enslaved and set up again.
// When the test ends the port is released and back in its earlier state.
func (d *Device) SetMaster(t testing.TB, master *Device) {
	t.Helper()
	name := ""
	if master != nil {
		name = master.name
	}
	d.set(t, fmt.Sprintf("set master %q of", name), &pb.SetLinkRequest{Master: &name})
}

// AddIP adds an address with its prefix length ("198.18.1.1/24",
// "2001:db8:1::1/64") and returns once it is usable (IPv6 duplicate
// address detection done).
func (d *Device) AddIP(t testing.TB, cidr string) {
	t.Helper()
	d.addr(t, "add", cidr)
}

// DelIP removes an address; it is added back when the test ends.
func (d *Device) DelIP(t testing.TB, cidr string) {
	t.Helper()
	d.addr(t, "remove", cidr)
}

func (d *Device) addr(t testing.TB, op, cidr string) {
	t.Helper()
	st := d.host.s.state(t)
	req := &pb.AddrRequest{Host: d.host.id, Group: st.group, Name: d.name, Cidr: cidr}
	call := d.host.client.AddAddr
	if op == "remove" {
		call = d.host.client.DelAddr
	}
	r, err := call(rpcCtx(t), req)
	if err != nil {
		st.use(d.host.client)
		t.Fatalf("%s: %s address %s on %s: %v", d.host.name, op, cidr, d.name, err)
	}
	st.logger().Debug(op+" address", "host", d.host.name, "dev", d.name, "addr", cidr)
	st.undoAt(t, d.host.client, op+" address "+cidr+" on "+d.name, r.Seq)
}

// Info reads the device.
func (d *Device) Info(t testing.TB) devices.Info {
	t.Helper()
	r, err := d.host.client.LinkInfo(rpcCtx(t), &pb.LinkRef{Host: d.host.id, Name: d.name})
	if err != nil {
		t.Fatalf("%s: read device %s: %v", d.host.name, d.name, err)
	}
	info := devices.Info{
		Index: int(r.Index), Type: r.Type, Name: r.Name, HWAddr: r.Hwaddr, State: r.State,
		Driver: r.Driver, MTU: int(r.Mtu), Master: r.Master,
	}
	for _, s := range r.Ips {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatalf("%s: device %s: agent reported address %q: %v", d.host.name, d.name, s, err)
		}
		info.IPs = append(info.IPs, p)
	}
	if s := r.Stats; s != nil {
		info.Stats = devices.LinkStats{
			RxPackets: s.RxPackets, TxPackets: s.TxPackets, RxBytes: s.RxBytes, TxBytes: s.TxBytes,
			RxErrors: s.RxErrors, TxErrors: s.TxErrors, RxDropped: s.RxDropped, TxDropped: s.TxDropped,
		}
	}
	return info
}

// SetRing sets ring sizes of the device, by the names ethtool -G takes
// ("rx", "tx", "rx-mini", "rx-jumbo", "rx-buf-len", "cqe-size"). They
// are set back when the test ends. A driver without ring settings fails
// the test with "not supported": Ring probes for them.
func (d *Device) SetRing(t testing.TB, sizes map[string]uint32) {
	t.Helper()
	d.setEthtool(t, "ring sizes", d.host.client.SetRing, sizes)
}

// Ring reads the device's ring sizes and their maximums, by ethtool -g's
// names; ok is false when its driver has no ring settings.
func (d *Device) Ring(t testing.TB) (sizes, max map[string]uint32, ok bool) {
	t.Helper()
	r, ok := d.readEthtool(t, "ring sizes", d.host.client.Ring)
	return r.GetParams(), r.GetMax(), ok
}

// SetCoalesce sets interrupt coalescing of the device, by the names
// ethtool -C takes ("rx-usecs", "rx-frames", "tx-usecs", "adaptive-rx",
// ...; a flag is 0 or 1). They are set back when the test ends. A driver
// without the setting fails the test with "not supported": Coalesce
// lists those it has.
func (d *Device) SetCoalesce(t testing.TB, settings map[string]uint32) {
	t.Helper()
	d.setEthtool(t, "coalescing", d.host.client.SetCoalesce, settings)
}

// Coalesce reads the device's interrupt coalescing settings, those its
// driver has, by ethtool -c's names; ok is false when it has none.
func (d *Device) Coalesce(t testing.TB) (settings map[string]uint32, ok bool) {
	t.Helper()
	r, ok := d.readEthtool(t, "coalescing", d.host.client.Coalesce)
	return r.GetParams(), ok
}

func (d *Device) setEthtool(t testing.TB, what string, call func(context.Context, *pb.SetEthtoolRequest, ...grpc.CallOption) (*pb.ChangeReply, error), params map[string]uint32) {
	t.Helper()
	st := d.host.s.state(t)
	r, err := call(rpcCtx(t), &pb.SetEthtoolRequest{Host: d.host.id, Group: st.group, Name: d.name, Params: params})
	if err != nil {
		t.Fatalf("%s: set %s %s of %s: %v", d.host.name, what, ethtool.Format(params), d.name, err)
	}
	st.logger().Debug("set "+what, "host", d.host.name, "dev", d.name, "params", ethtool.Format(params))
	st.undoAt(t, d.host.client, what+" of "+d.name+" on "+d.host.name, r.Seq)
}

// readEthtool reads ring sizes or coalescing; ok is false when the driver
// does not have them.
func (d *Device) readEthtool(t testing.TB, what string, call func(context.Context, *pb.LinkRef, ...grpc.CallOption) (*pb.EthtoolReply, error)) (*pb.EthtoolReply, bool) {
	t.Helper()
	r, err := call(rpcCtx(t), &pb.LinkRef{Host: d.host.id, Name: d.name})
	if err != nil {
		if strings.Contains(err.Error(), "not supported by its driver") {
			return nil, false
		}
		t.Fatalf("%s: read %s of %s: %v", d.host.name, what, d.name, err)
	}
	return r, true
}
