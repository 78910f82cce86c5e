package agent

import (
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRSSKeyText(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/netdev_rss_key")
	if err != nil {
		t.Skipf("this kernel shows no netdev_rss_key: %v", err)
	}
	boot, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(b)), ":", ""))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(boot), 40)
	assert.Equal(t, "boot default", rssKeyText(boot[:40]), "a driver's default key is the boot's")
	other := slices.Clone(boot[:40])
	other[0] ^= 0xff
	assert.Equal(t, hex.EncodeToString(other), rssKeyText(other), "a key a recipe set shows as hex")
	assert.True(t, snapSysctlSkip("netdev_rss_key"), "drawn again at every boot")
}
