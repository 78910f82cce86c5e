package lnsttest

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"

	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// Netns gives a host-like handle inside a new network namespace of h,
// removed when the test ends. Its jobs, devices and sysctls are the
// namespace's own.
func (h *Host) Netns(t testing.TB, name string) *Host {
	t.Helper()
	st := h.s.state(t)
	r, err := h.client.CreateNetns(rpcCtx(t), &pb.CreateNetnsRequest{Host: h.id, Name: name, Group: st.group})
	if err != nil {
		t.Fatalf("%s: create namespace %q: %v", h.name, name, err)
	}
	st.use(h.client)
	st.logger().Info("created namespace", "host", h.name, "netns", name)
	return &Host{s: h.s, client: h.client, name: h.name + "/" + name, id: r.Host, ifaces: map[string]string{}, outer: h}
}

// SetHWAddr sets the device's hardware address ("02:00:00:00:00:01").
func (d *Device) SetHWAddr(t testing.TB, mac string) {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		t.Fatalf("%s: SetHWAddr of %s: %q is not an Ethernet address like 02:00:00:00:00:01", d.host.name, d.name, mac)
	}
	d.set(t, "set hardware address "+mac+" of", &pb.SetLinkRequest{Hwaddr: hw})
}

// SetFeatures switches ethtool features (offloads) of the device, by the
// names ethtool -K takes ("tso", "gro", "tx", "rx", "sg", "gso", ...) or
// the kernel's ("generic-receive-offload" is "rx-gro"). They are switched
// back when the test ends.
func (d *Device) SetFeatures(t testing.TB, features map[string]bool) {
	t.Helper()
	st := d.host.s.state(t)
	r, err := d.host.client.SetFeatures(rpcCtx(t), &pb.SetFeaturesRequest{Host: d.host.id, Group: st.group, Name: d.name, Features: features})
	if err != nil {
		t.Fatalf("%s: set features %s of %s: %v", d.host.name, featureString(features), d.name, err)
	}
	st.logger().Debug("set features", "host", d.host.name, "dev", d.name, "features", featureString(features))
	st.undoAt(t, d.host.client, "features of "+d.name+" on "+d.host.name, r.Seq)
}

// Features reads the device's ethtool features: kernel name -> on.
func (d *Device) Features(t testing.TB) map[string]bool {
	t.Helper()
	r, err := d.host.client.Features(rpcCtx(t), &pb.LinkRef{Host: d.host.id, Name: d.name})
	if err != nil {
		t.Fatalf("%s: read features of %s: %v", d.host.name, d.name, err)
	}
	return r.Active
}

func featureString(f map[string]bool) string {
	var parts []string
	for k, v := range f {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
