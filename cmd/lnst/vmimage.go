package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/lnst-go/lnst/pool/vmimage"
)

// vmImageCmd runs `lnst vm-image`: builds (or finds in the cache) the VM
// lab's image and prints its kernel, initramfs and kernel release.
func vmImageCmd(args []string, stdout, stderr io.Writer) int {
	const use = "usage: lnst vm-image [-cache DIR] [-kernel BZIMAGE [-modules DIR]]\n"
	fs := flag.NewFlagSet("vm-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cache := fs.String("cache", vmimage.DefaultCache(), "cache directory")
	kernel := fs.String("kernel", "", "boot this bzImage instead of Debian's kernel")
	modules := fs.String("modules", "", "with -kernel: its modules tree (/lib/modules/<release>)")
	ovs := fs.Bool("openvswitch", false, "add Open vSwitch to the image (-lnst.vm.ovs)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fmt.Fprint(stderr, use)
		return 2
	}
	if *modules != "" && *kernel == "" {
		fmt.Fprint(stderr, "lnst vm-image: -modules needs -kernel\n", use)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	img, err := vmimage.Build(ctx, vmimage.Options{Cache: *cache, Kernel: *kernel, Modules: *modules, OpenVSwitch: *ovs, Log: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "lnst vm-image: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "kernel  %s\ninitrd  %s\nrelease %s\n", img.Kernel, img.Initrd, img.Release)
	return 0
}
