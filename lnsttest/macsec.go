package lnsttest

import (
	"encoding/json"
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// ConfigureMacsec installs the keys of a Macsec device made with Create
// (ip macsec add: its transmit associations, receive channels and their
// associations). They go when the device does, at cleanup.
func (h *Host) ConfigureMacsec(t testing.TB, c devices.MacsecConfig) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("%s: configure macsec: %v", h.name, err)
	}
	st := h.s.state(t)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("%s: configure macsec %s: %v", h.name, c.Link, err)
	}
	if _, err := h.client.MacsecAdd(rpcCtx(t), &pb.MacsecRequest{Host: h.id, Group: st.group, Spec: b}); err != nil {
		t.Fatalf("%s: configure macsec %s: %v", h.name, c.Link, err)
	}
}
