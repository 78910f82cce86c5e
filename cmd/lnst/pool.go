package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/lnst-go/lnst/internal/agentconn"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/pool"
)

// poolCmd runs `lnst pool check FILE`.
func poolCmd(args []string, stdout, stderr io.Writer) int {
	const use = "usage: lnst pool check [-timeout D] FILE\n"
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(stderr, use)
		return 2
	}
	fs := flag.NewFlagSet("pool check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", agentconn.DefaultTimeout, "how long to wait for each agent")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 {
		fmt.Fprint(stderr, use)
		return 2
	}
	p, err := pool.Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "lnst pool check: %v\n", err)
		return 2
	}
	reports := make([]hostReport, len(p.Hosts))
	var wg sync.WaitGroup
	for i := range p.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i] = checkHost(&p.Hosts[i], *timeout)
		}()
	}
	wg.Wait()
	bad := 0
	for _, r := range reports {
		bad += r.print(stdout)
	}
	if bad > 0 {
		fmt.Fprintf(stdout, "%s: %d problem(s)\n", p.Path, bad)
		return 1
	}
	fmt.Fprintf(stdout, "%s: all %d host(s) ready\n", p.Path, len(p.Hosts))
	return 0
}

// hostReport is what check found on one pool host.
type hostReport struct {
	host   *pool.Host
	err    error
	hello  *pb.HelloReply
	ifaces []ifaceReport
}

type ifaceReport struct {
	want                  pool.Iface
	name, driver, speed   string
	state, carrier, issue string
}

func checkHost(h *pool.Host, timeout time.Duration) hostReport {
	r := hostReport{host: h}
	ctx := context.Background()
	conn, err := h.Dial(ctx, timeout)
	if err != nil {
		r.err = err
		return r
	}
	defer conn.Close()
	c := pb.NewAgentClient(conn)
	if r.hello, r.err = c.Hello(ctx, &pb.HelloRequest{}); r.err != nil {
		return r
	}
	links, err := c.Links(ctx, &pb.HostRef{})
	if err != nil {
		r.err = fmt.Errorf("list devices: %w", err)
		return r
	}
	if h.Arch != "" && h.Arch != r.hello.Arch {
		r.err = fmt.Errorf("arch is %s, the pool file says %s", r.hello.Arch, h.Arch)
	}
	for _, want := range h.Ifaces {
		r.ifaces = append(r.ifaces, checkIface(ctx, c, links, want))
	}
	return r
}

func checkIface(ctx context.Context, c pb.AgentClient, links *pb.LinksReply, want pool.Iface) ifaceReport {
	ir := ifaceReport{want: want, name: want.Name}
	var found *pb.LinkInfoReply
	for _, l := range links.Links {
		if (want.Name != "" && l.Name == want.Name) || (want.Name == "" && net.HardwareAddr(l.Hwaddr).String() == want.HWAddr) {
			found = l
		}
	}
	if found == nil {
		ir.issue = "missing"
		return ir
	}
	ir.name, ir.driver, ir.state = found.Name, found.Driver, found.State
	read := func(attr string) string {
		v, err := c.ReadValue(ctx, &pb.ValueRef{Kind: "sysfs", Key: "/sys/class/net/" + found.Name + "/" + attr})
		if err != nil {
			return "?"
		}
		return v.Value
	}
	ir.speed, ir.carrier = read("speed"), read("carrier")
	var issues []string
	if want.HWAddr != "" && net.HardwareAddr(found.Hwaddr).String() != want.HWAddr {
		issues = append(issues, "hwaddr is "+net.HardwareAddr(found.Hwaddr).String())
	}
	if want.Driver != "" && found.Driver != want.Driver {
		issues = append(issues, "driver is "+found.Driver+", want "+want.Driver)
	}
	if want.Speed != 0 && ir.speed != strconv.Itoa(want.Speed) {
		issues = append(issues, "speed is "+ir.speed+", want "+strconv.Itoa(want.Speed))
	}
	if ir.carrier != "1" {
		issues = append(issues, "no link")
	}
	ir.issue = strings.Join(issues, "; ")
	return ir
}

// print writes the report and returns its number of problems.
func (r hostReport) print(w io.Writer) int {
	bad := 0
	if r.hello == nil {
		fmt.Fprintf(w, "host %s (%s): FAIL: %v\n", r.host.Name, r.host.Agent, r.err)
		return 1
	}
	fmt.Fprintf(w, "host %s (%s): agent %s, kernel %s, %s\n", r.host.Name, r.host.Agent, r.hello.Version, r.hello.Kernel, r.hello.Arch)
	if r.err != nil {
		fmt.Fprintf(w, "  FAIL: %v\n", r.err)
		bad++
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  IFACE\tDRIVER\tSPEED\tSTATE\tLINK\tCHECK")
	for _, i := range r.ifaces {
		check := "ok"
		if i.issue != "" {
			check, bad = "FAIL: "+i.issue, bad+1
		}
		name := i.name
		if name == "" {
			name = i.want.HWAddr
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", name, dash(i.driver), dash(i.speed), dash(i.state), carrierWord(i.carrier), check)
	}
	tw.Flush()
	return bad
}

func dash(s string) string {
	if s == "" || s == "?" || s == "-1" {
		return "-"
	}
	return s
}

func carrierWord(c string) string {
	switch c {
	case "1":
		return "up"
	case "0":
		return "down"
	}
	return "-"
}
