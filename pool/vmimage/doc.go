// Package vmimage builds the VM image of the VM lab: a stock Debian
// kernel and a base initramfs holding busybox, the tools recipes run
// (iproute2, ping, iperf3, ethtool, tcpdump, teamd, wg) with their shared
// libraries, the network kernel modules, and an /init that boots, runs
// /lnst/run if present and powers off. Options.OpenVSwitch adds Open
// vSwitch, as another cached image. On Debian's kernel it also carries
// lnst_warn.ko, built from the kernel's header packages, which makes the
// kernel WARN on demand (see WarnModulePath).
//
// Everything comes from Debian packages, fetched with apt-get download and
// unpacked with dpkg-deb -x; Build caches the result under
// DefaultCache(), keyed by the package versions. A run appends its own
// files (the agent, /lnst/run) as a second cpio archive, written with
// internal/cpio's Write, after the base initramfs:
//
//	img, err := vmimage.Build(ctx, vmimage.Options{Log: os.Stderr})
//	...
//	f, _ := os.Create(initrd) // copy of img.Initrd, then:
//	cpio.Write(f, []cpio.File{
//		{Path: "/lnst/agent", Mode: 0o755, Src: agentBinary},
//		{Path: "/lnst/run", Mode: 0o755, Data: []byte("#!/bin/sh\nexec /lnst/agent\n")},
//	})
//	// qemu-system-x86_64 -kernel img.Kernel -initrd initrd ...
package vmimage
