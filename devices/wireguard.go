package devices

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Wireguard is a WireGuard tunnel. The agent makes the link (kind
// "wireguard") with netlink; its keys and peers are configured afterwards with
// "wg setconf NAME FILE", FILE holding Config.
type Wireguard struct {
	Name string
	// PrivateKey is the device's base64 private key (32 bytes, as "wg
	// genkey" prints); "" leaves the device without one.
	PrivateKey string
	// ListenPort is the UDP port, 0..65535; 0 picks one at random.
	ListenPort int
	// Peers are the other ends.
	Peers []WireguardPeer
}

// WireguardPeer is one peer of a Wireguard device.
type WireguardPeer struct {
	// PublicKey is the peer's base64 public key (32 bytes), required.
	PublicKey string
	// Endpoint is the peer's "host:port", optional.
	Endpoint string
	// AllowedIPs are the prefixes routed to and accepted from the peer,
	// "198.18.0.0/24" or "2001:db8::/64".
	AllowedIPs []string
	// PersistentKeepalive is the keepalive interval, whole seconds up to
	// 65535s; 0 is off.
	PersistentKeepalive time.Duration
}

// LinkName returns the device's name.
func (w Wireguard) LinkName() string { return w.Name }

// Kind returns "wireguard".
func (Wireguard) Kind() string { return "wireguard" }

// wgKey checks a base64 WireGuard key.
func (c check) wgKey(field, key string) error {
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return c.fail(field, "is not base64: %v", err)
	}
	if len(b) != 32 {
		return c.fail(field, "is %d bytes, want 32", len(b))
	}
	return nil
}

// Validate checks the name, the keys, ListenPort and every peer.
func (w Wireguard) Validate() error {
	c, err := newCheck(w.Kind(), w.Name)
	if err != nil {
		return err
	}
	if w.PrivateKey != "" {
		if err := c.wgKey("PrivateKey", w.PrivateKey); err != nil {
			return err
		}
	}
	if err := c.intRange("ListenPort", w.ListenPort, 0, 65535); err != nil {
		return err
	}
	seen := map[string]int{}
	for i, p := range w.Peers {
		if err := p.check(c, fmt.Sprintf("Peers[%d].", i)); err != nil {
			return err
		}
		if j, dup := seen[p.PublicKey]; dup {
			return c.fail(fmt.Sprintf("Peers[%d].PublicKey", i), "is the same as Peers[%d]'s", j)
		}
		seen[p.PublicKey] = i
	}
	return nil
}

func (p WireguardPeer) check(c check, prefix string) error {
	if p.PublicKey == "" {
		return c.fail(prefix+"PublicKey", "is required")
	}
	if err := c.wgKey(prefix+"PublicKey", p.PublicKey); err != nil {
		return err
	}
	if p.Endpoint != "" {
		host, port, err := net.SplitHostPort(p.Endpoint)
		if err != nil {
			return c.fail(prefix+"Endpoint", "%q is not host:port", p.Endpoint)
		}
		if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
			return c.fail(prefix+"Endpoint", "%q is not host:port with a port 1..65535", p.Endpoint)
		}
	}
	for i, s := range p.AllowedIPs {
		if _, err := netip.ParsePrefix(s); err != nil {
			return c.fail(fmt.Sprintf("%sAllowedIPs[%d]", prefix, i), "%q is not a prefix", s)
		}
	}
	return c.duration(prefix+"PersistentKeepalive", p.PersistentKeepalive, time.Second, 65535*time.Second)
}

// Config returns the "wg setconf" configuration of w: its private key, port
// and peers. Call Validate first; Config does not check.
func (w Wireguard) Config() string {
	var b strings.Builder
	b.WriteString("[Interface]\n")
	if w.PrivateKey != "" {
		fmt.Fprintf(&b, "PrivateKey = %s\n", w.PrivateKey)
	}
	if w.ListenPort != 0 {
		fmt.Fprintf(&b, "ListenPort = %d\n", w.ListenPort)
	}
	for _, p := range w.Peers {
		fmt.Fprintf(&b, "\n[Peer]\nPublicKey = %s\n", p.PublicKey)
		if p.Endpoint != "" {
			fmt.Fprintf(&b, "Endpoint = %s\n", p.Endpoint)
		}
		if len(p.AllowedIPs) > 0 {
			fmt.Fprintf(&b, "AllowedIPs = %s\n", strings.Join(p.AllowedIPs, ", "))
		}
		if p.PersistentKeepalive != 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", int(p.PersistentKeepalive/time.Second))
		}
	}
	return b.String()
}
