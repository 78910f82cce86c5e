package nltc

import "net"

func maskOf(ones, bits int) net.IPMask { return net.CIDRMask(ones, bits) }

func parseMAC(s string) (net.HardwareAddr, error) { return net.ParseMAC(s) }
