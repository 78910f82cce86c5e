package agent

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

// testSubscribers counts the goroutines of netlink's subscriptions whose
// function is fn (linkSubscribeAt, addrSubscribeAt): their receivers and
// the watchers of their done channels.
func testSubscribers(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "netlink."+fn) {
			count++
		}
	}
	return count
}

// testSubscriptionEnds subscribes, lets more notifications come than the
// updates channel holds (so netlink's receiver blocks sending one), stops
// the subscription and waits for netlink's goroutines to end: they must,
// or every WaitLink and waitDAD would leave one behind for good.
func testSubscriptionEnds(t *testing.T, fn string, subscribe func() (full func() bool, stop func()), events func(i int)) {
	t.Helper()
	before := testSubscribers(fn)
	full, stop := subscribe()
	for i := 0; !full(); i++ {
		require.Less(t, i, 1000, "the updates channel never filled")
		events(i)
	}
	// One more, so that the receiver holds one it cannot send.
	events(1000)
	stop()
	for i := 0; testSubscribers(fn) > before; i++ {
		if i == 500 {
			t.Fatalf("%d goroutines of netlink.%s left after the subscription stopped, %d before", testSubscribers(fn), fn, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWaitSubscriptionsEnd: the link and address subscriptions of
// WaitLink and waitDAD end their netlink goroutines when stopped, even
// with a full updates channel.
func TestWaitSubscriptionsEnd(t *testing.T) {
	srv, c := testServer(t)
	testHost(t, c, "h1")
	srv.mu.Lock()
	h := srv.hosts["h1"]
	srv.mu.Unlock()

	testSubscriptionEnds(t, "linkSubscribeAt", func() (func() bool, func()) {
		var subErr error
		updates, _, stop, err := h.subscribeLinks(&subErr)
		require.NoError(t, err)
		return func() bool { return len(updates) == cap(updates) }, stop
	}, func(i int) {
		name := fmt.Sprintf("ev%d", i)
		require.NoError(t, h.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}))
	})

	require.NoError(t, h.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "addrs"}, PeerName: "addrsp"}))
	l, err := h.nl.LinkByName("addrs")
	require.NoError(t, err)
	testSubscriptionEnds(t, "addrSubscribeAt", func() (func() bool, func()) {
		updates, _, stop, err := h.subscribeAddrs()
		require.NoError(t, err)
		return func() bool { return len(updates) == cap(updates) }, stop
	}, func(i int) {
		ip := net.IPv4(198, 18, byte(40+i/250), byte(1+i%250))
		require.NoError(t, h.nl.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}}))
	})
}
