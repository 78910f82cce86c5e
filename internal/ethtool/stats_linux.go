package ethtool

import "fmt"

// Stats returns the driver statistics of device ifname, as ethtool -S
// shows them, through socket fd; none (and no error) for a device whose
// driver has none.
func Stats(fd int, ifname string) (map[string]uint64, error) {
	buf := encodeSSetInfoOf(ethSSStats)
	if _, err := ioctl(fd, ifname, buf); err != nil {
		return nil, fmt.Errorf("count ethtool statistics of %s: %w", ifname, err)
	}
	n := decodeSSetInfoOf(buf, ethSSStats)
	if n == 0 {
		return nil, nil
	}
	buf = encodeGStringsOf(ethSSStats, n)
	if _, err := ioctl(fd, ifname, buf); err != nil {
		return nil, fmt.Errorf("read ethtool statistic names of %s: %w", ifname, err)
	}
	names, err := decodeGStrings(buf)
	if err != nil {
		return nil, fmt.Errorf("read ethtool statistic names of %s: %w", ifname, err)
	}
	buf = encodeGStats(len(names))
	if _, err := ioctl(fd, ifname, buf); err != nil {
		return nil, fmt.Errorf("read ethtool statistics of %s: %w", ifname, err)
	}
	st, err := decodeGStats(buf, names)
	if err != nil {
		return nil, fmt.Errorf("read ethtool statistics of %s: %w", ifname, err)
	}
	return st, nil
}
