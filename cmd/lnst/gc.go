package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/lnst-go/lnst/pool"
)

// gcCmd is lnst gc: it removes what killed runs left behind.
func gcCmd(args []string, stdout, stderr io.Writer) int {
	const use = "usage: lnst gc --libvirt URI [--timeout D]\n"
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	uri := fs.String("libvirt", "", "the libvirt URI of a hypervisor (qemu:///system, qemu+ssh://root@hv1/system)")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for the hypervisor")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || *uri == "" {
		fmt.Fprint(stderr, use)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rep, err := pool.LibvirtGC(ctx, *uri)
	for _, r := range rep.Removed {
		fmt.Fprintf(stdout, "removed %s\n", r)
	}
	for _, k := range rep.Kept {
		fmt.Fprintf(stdout, "kept %s\n", k)
	}
	if err != nil {
		fmt.Fprintf(stderr, "lnst gc: %v\n", err)
		return 1
	}
	if len(rep.Removed)+len(rep.Kept) == 0 {
		fmt.Fprintf(stdout, "nothing of lnst runs on %s\n", *uri)
	}
	return 0
}
