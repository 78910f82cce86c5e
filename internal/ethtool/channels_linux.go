package ethtool

import (
	"maps"
	"slices"

	"golang.org/x/sys/unix"
)

// channels are the queue counts `ethtool -L` sets, and their maximums
// (ETHTOOL_MSG_CHANNELS_GET/SET).
var channels = newParamSet("channels", "ethtool -L", unix.ETHTOOL_MSG_CHANNELS_GET, unix.ETHTOOL_MSG_CHANNELS_SET, unix.ETHTOOL_A_CHANNELS_HEADER, map[string]param{
	"rx":       {attr: unix.ETHTOOL_A_CHANNELS_RX_COUNT, max: unix.ETHTOOL_A_CHANNELS_RX_MAX},
	"tx":       {attr: unix.ETHTOOL_A_CHANNELS_TX_COUNT, max: unix.ETHTOOL_A_CHANNELS_TX_MAX},
	"other":    {attr: unix.ETHTOOL_A_CHANNELS_OTHER_COUNT, max: unix.ETHTOOL_A_CHANNELS_OTHER_MAX},
	"combined": {attr: unix.ETHTOOL_A_CHANNELS_COMBINED_COUNT, max: unix.ETHTOOL_A_CHANNELS_COMBINED_MAX},
})

// ChannelNames lists the queue counts SetChannels takes: the names
// `ethtool -L` takes (rx, tx, other, combined).
func ChannelNames() []string { return slices.Sorted(maps.Keys(channels.params)) }

// Channels reads the queue counts of device ifname and their maximums, by
// the names `ethtool -L` takes. The kernel reports every count, 0 for a
// kind of queue the device does not have (its maximum is 0 too). A
// device without channel settings fails with an error that wraps
// unix.EOPNOTSUPP.
func Channels(ifname string) (cur, max map[string]uint32, err error) {
	return channels.read(ifname)
}

// SetChannels sets queue counts of device ifname and returns the previous
// counts of those it changed: SetChannels(ifname, old) takes it back. A
// count above the device's maximum fails before anything is sent, with
// an error naming the device and the maximum.
func SetChannels(ifname string, want map[string]uint32) (old map[string]uint32, err error) {
	return channels.change(ifname, want)
}
