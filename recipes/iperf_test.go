package recipes

import (
	"testing"
	"time"

	"github.com/lnst-go/lnst/modules"
	"github.com/stretchr/testify/require"
)

// TestIperf3TCP measures TCP throughput from h1 to h2.
func TestIperf3TCP(t *testing.T) {
	m := twoHosts(t)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.2.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.2.2/24")

	srv := modules.Iperf3Server{Bind: "198.18.2.2"}.Start(t, h2)
	res := modules.Iperf3Client{Server: "198.18.2.2", Duration: 2 * time.Second, Parallel: 2}.Run(t, h1)
	srv.Stop(t)

	require.Positive(t, res.BitsPerSecond, "TCP throughput")
	require.NotEmpty(t, res.Intervals)
	t.Logf("TCP throughput h1 -> h2: %s", modules.FormatBitrate(res.BitsPerSecond))
}
