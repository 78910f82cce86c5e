// Package ethtool reads and switches a network device's ethtool features
// (offloads such as GRO or TSO), ring sizes and interrupt coalescing.
// Features go through the SIOCETHTOOL ioctl, the same
// requests `ethtool -k` and `ethtool -K` make, without running the CLI.
//
// Every feature call takes a socket fd (AF_INET, SOCK_DGRAM) that the caller made in
// the device's network namespace; the kernel looks the device up in the
// socket's namespace, so no thread has to be switched here.
//
//	f, err := ethtool.Get(fd, "veth0")          // f.Active["rx-gro"], f.Fixed["rx-lro"]
//	old, err := ethtool.Set(fd, "veth0", map[string]bool{"gro": true, "tso": false})
//	_, err = ethtool.Set(fd, "veth0", old)     // undo
//
// Names in Set are either the short names `ethtool -K` accepts (rx, tx, sg,
// tso, ufo, gso, gro, lro, rxvlan, txvlan, ntuple, rxhash) or full kernel
// feature names (rx-gro, tx-tcp-segmentation, ...). Expand shows what a
// name stands for.
//
// Ring sizes (`ethtool -g`/`-G`) and interrupt coalescing (`ethtool -c`/
// `-C`) go through the ethtool generic netlink family instead, by the
// names the ethtool command takes, in the calling thread's network
// namespace:
//
//	cur, max, err := ethtool.Rings("eth0")                  // cur["rx"], max["rx"]
//	old, err := ethtool.SetRings("eth0", map[string]uint32{"rx": 512})
//	_, err = ethtool.SetRings("eth0", old)                  // undo
//	old, err = ethtool.SetCoalesce("eth0", map[string]uint32{"rx-usecs": 50, "adaptive-rx": 0})
//
// A driver without such settings fails with an error wrapping
// unix.EOPNOTSUPP.
package ethtool
