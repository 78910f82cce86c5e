package agent

import (
	"testing"

	"github.com/lnst-go/lnst/devices"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWireguardUndoWritesSendRedirectsBack checks the undo of a WireGuard
// device's creation: a WireGuard device coming up clears
// net.ipv4.conf.all.send_redirects for its namespace, and the undo writes
// the value from before the device back once the device is gone. The
// kernel here may lack WireGuard: the undo is applied to a device that is
// already gone, as after a recipe deleted it.
func TestWireguardUndoWritesSendRedirectsBack(t *testing.T) {
	s, c := testServerOpts(t, Options{Lab: true})
	testHost(t, c, "h1")
	h, err := s.host("h1")
	require.NoError(t, err)

	kind, key, value, err := h.netwideValue(devices.Veth{Name: "v0", PeerName: "v1"})
	require.NoError(t, err)
	assert.Empty(t, kind+key+value, "a veth changes nothing namespace-wide")
	kind, key, value, err = h.netwideValue(devices.Wireguard{Name: "wg0"})
	require.NoError(t, err)
	assert.Equal(t, []string{kindSysctl, wgSendRedirects, "1"}, []string{kind, key, value}, "the kernel's default, as before the device")

	// What wg_open does.
	require.NoError(t, h.replaceValue(kindSysctl, wgSendRedirects, "0"))
	err = s.apply(undo{Op: opDeleteLink, Host: "h1", Link: "wg0", ValueKind: kind, Key: key, Value: value})
	assert.ErrorIs(t, err, errNothingToUndo, "wg0 is gone already")
	v, err := h.readValue(kindSysctl, wgSendRedirects)
	require.NoError(t, err)
	assert.Equal(t, "1", v, "written back after the device")
}
