//go:build linux

package ethtool_test

import (
	"fmt"
	"log"

	"github.com/lnst-go/lnst/internal/ethtool"
	"golang.org/x/sys/unix"
)

func ExampleExpand() {
	for _, name := range []string{"tso", "gro", "rx-udp-gro-forwarding"} {
		members, err := ethtool.Expand(name)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, members)
	}
	_, err := ethtool.Expand("generic-receive-offload")
	fmt.Println(err != nil)
	// Output:
	// tso [tx-tcp-segmentation tx-tcp-ecn-segmentation tx-tcp-mangleid-segmentation tx-tcp6-segmentation tx-tcp-accecn-segmentation]
	// gro [rx-gro]
	// rx-udp-gro-forwarding [rx-udp-gro-forwarding]
	// true
}

// Switch GRO on and TSO off on eth0 of the current network namespace, then
// undo. Not run: it needs root and changes a real device.
func ExampleSet() {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer unix.Close(fd)

	old, err := ethtool.Set(fd, "eth0", map[string]bool{"gro": true, "tso": false})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if _, err := ethtool.Set(fd, "eth0", old); err != nil {
			log.Print(err)
		}
	}()

	f, err := ethtool.Get(fd, "eth0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Active["rx-gro"], f.Active["tx-tcp-segmentation"])
}
