package ethtool

import (
	"maps"
	"slices"

	"golang.org/x/sys/unix"
)

// pause are the pause frame settings `ethtool -A` sets, each a flag
// (ETHTOOL_MSG_PAUSE_GET/SET).
var pause = newParamSet("pause", "ethtool -A", unix.ETHTOOL_MSG_PAUSE_GET, unix.ETHTOOL_MSG_PAUSE_SET, unix.ETHTOOL_A_PAUSE_HEADER, map[string]param{
	"autoneg": {attr: unix.ETHTOOL_A_PAUSE_AUTONEG, u8: true},
	"rx":      {attr: unix.ETHTOOL_A_PAUSE_RX, u8: true},
	"tx":      {attr: unix.ETHTOOL_A_PAUSE_TX, u8: true},
})

// linkModes are the link settings `ethtool -s` sets that are numbers:
// speed in Mb/s, duplex (0 half, 1 full, 255 unknown) and autoneg (a
// flag) (ETHTOOL_MSG_LINKMODES_GET/SET). Advertised modes are a bitset,
// not set here.
var linkModes = newParamSet("link modes", "ethtool -s", unix.ETHTOOL_MSG_LINKMODES_GET, unix.ETHTOOL_MSG_LINKMODES_SET, unix.ETHTOOL_A_LINKMODES_HEADER, map[string]param{
	"speed":   {attr: unix.ETHTOOL_A_LINKMODES_SPEED},
	"duplex":  {attr: unix.ETHTOOL_A_LINKMODES_DUPLEX, u8: true, wide: true},
	"autoneg": {attr: unix.ETHTOOL_A_LINKMODES_AUTONEG, u8: true},
})

// PauseNames lists the settings SetPause takes: autoneg, rx, tx.
func PauseNames() []string { return slices.Sorted(maps.Keys(pause.params)) }

// Pause reads the pause frame settings of device ifname (each 0 or 1). A
// device without them fails with an error that wraps unix.EOPNOTSUPP.
func Pause(ifname string) (map[string]uint32, error) {
	cur, _, err := pause.read(ifname)
	return cur, err
}

// SetPause sets pause frame settings of device ifname and returns the
// previous values of those it changed.
func SetPause(ifname string, want map[string]uint32) (old map[string]uint32, err error) {
	return pause.change(ifname, want)
}

// LinkModeNames lists the settings SetLinkModes takes: autoneg, duplex,
// speed.
func LinkModeNames() []string { return slices.Sorted(maps.Keys(linkModes.params)) }

// LinkModes reads the speed (Mb/s; 0xffffffff unknown), duplex (0 half,
// 1 full, 255 unknown) and autoneg of device ifname.
func LinkModes(ifname string) (map[string]uint32, error) {
	cur, _, err := linkModes.read(ifname)
	return cur, err
}

// SetLinkModes sets speed, duplex or autoneg of device ifname and
// returns the previous values of those it changed.
func SetLinkModes(ifname string, want map[string]uint32) (old map[string]uint32, err error) {
	return linkModes.change(ifname, want)
}
