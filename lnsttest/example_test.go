package lnsttest_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	"github.com/lnst-go/lnst/lnsttest"
)

// The examples are compiled, not run: they need root and a lab. Each is
// the body of a recipe, a test func TestX(t *testing.T) in a package whose
// TestMain calls lnsttest.Main.

// A recipe declares the hosts and the networks joining their interfaces;
// Require gives it hosts that match, and skips it (or fails it under
// -lnst.strict) when none do.
func ExampleRequire() {
	var t *testing.T // the recipe\'s
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1")), lnsttest.Kernel("vlan")),
	)
	h1, h2 := m.Host("h1"), m.Host("h2")
	h1.Iface("eth0").AddIP(t, "198.18.1.1/24")
	h2.Iface("eth0").AddIP(t, "198.18.1.2/24")
	h1.Run(t, "ping -c 3 198.18.1.2")
}

// Run waits for a job and fails the test unless it succeeds; Output also
// returns its stdout; Start runs it in the background.
func ExampleHost_Run() {
	var t *testing.T // the recipe\'s
	h := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
	h.Run(t, "ip link show lo")
	h.Run(t, "test -e /nonexistent", lnsttest.ExpectFail())
	kernel := strings.TrimSpace(h.Output(t, "uname -r", lnsttest.Timeout(time.Minute)))
	fmt.Println("kernel", kernel)

	job := h.Start(t, "sleep 600", lnsttest.Desc("a background job"))
	job.Kill(t, syscall.SIGTERM)
	r := job.Wait(t) // killed jobs do not fail the test
	fmt.Println(r.Killed, r.Duration)
}

// Create makes a device from its spec and removes it when the test ends;
// the Device it returns is driven with the same t-first methods.
func ExampleHost_Create() {
	var t *testing.T // the recipe\'s
	h := lnsttest.Require(t, lnsttest.HostReq("h1")).Host("h1")
	br := h.Create(t, devices.Bridge{Name: "br0"})
	v := h.Create(t, devices.Veth{Name: "v0", PeerName: "v1"})
	v.SetMaster(t, br)
	br.AddIP(t, "198.18.5.1/24")
	br.Up(t)
}

// AddRoute adds a route, in the main table unless Table says otherwise,
// and removes it when the test ends.
func ExampleHost_AddRoute() {
	var t *testing.T // the recipe\'s
	h := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1")))).Host("h1")
	eth0 := h.Iface("eth0")
	eth0.AddIP(t, "198.18.10.1/24")
	h.AddRoute(t, "198.18.20.0/24", lnsttest.Via("198.18.10.2"), lnsttest.Dev(eth0), lnsttest.Table(100), lnsttest.Metric(10))
}

// WaitFor polls a condition on the test's goroutine, so the condition may
// run jobs that fail the test; it fails the test naming what it waited
// for when the condition does not hold in time.
func ExampleWaitFor() {
	var t *testing.T // the recipe\'s
	h := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1")))).Host("h1")
	eth0 := h.Iface("eth0")
	eth0.Up(t)
	lnsttest.WaitFor(t, "eth0 has carrier", 5*time.Second, func() bool {
		return h.Output(t, "cat /sys/class/net/"+eth0.Name()+"/carrier") == "1\n"
	})
}
