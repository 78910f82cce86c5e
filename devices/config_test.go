package devices

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWireguardConfig(t *testing.T) {
	w := Wireguard{Name: "wg0", PrivateKey: key1, ListenPort: 51820, Peers: []WireguardPeer{
		{PublicKey: key2, Endpoint: "198.18.0.2:51820", AllowedIPs: []string{"198.18.1.0/24", "2001:db8:1::/64"},
			PersistentKeepalive: 25 * time.Second},
		{PublicKey: key1},
	}}
	require.NoError(t, w.Validate())
	assert.Equal(t, `[Interface]
PrivateKey = `+key1+`
ListenPort = 51820

[Peer]
PublicKey = `+key2+`
Endpoint = 198.18.0.2:51820
AllowedIPs = 198.18.1.0/24, 2001:db8:1::/64
PersistentKeepalive = 25

[Peer]
PublicKey = `+key1+`
`, w.Config())
	assert.Equal(t, "[Interface]\n", Wireguard{Name: "wg0"}.Config())
}

func TestTeamdConfig(t *testing.T) {
	cfg, err := Team{Name: "team0", Runner: "activebackup", LinkWatch: "arp_ping"}.TeamdConfig()
	require.NoError(t, err)
	assert.JSONEq(t, `{"device":"team0","runner":{"name":"activebackup"},"link_watch":{"name":"arp_ping"}}`, cfg)
	assert.True(t, json.Valid([]byte(cfg)))

	cfg, err = Team{Name: "team1"}.TeamdConfig()
	require.NoError(t, err)
	assert.Equal(t, `{
  "device": "team1",
  "runner": {
    "name": "roundrobin"
  },
  "link_watch": {
    "name": "ethtool"
  }
}`, cfg)

	_, err = Team{Name: "team0", Runner: "lb"}.TeamdConfig()
	assert.ErrorContains(t, err, `team team0 Runner: "lb" is not one of`)
}
