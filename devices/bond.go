package devices

import (
	"encoding/json"
	"math"
	"time"
)

// Bond aggregates its enslaved devices (the bonding driver). Zero values
// leave the kernel's defaults.
type Bond struct {
	Name string
	// Mode as the kernel names it: "balance-rr" (the default),
	// "active-backup", "balance-xor", "broadcast", "802.3ad",
	// "balance-tlb", "balance-alb".
	Mode string
	// Miimon is the MII link monitoring interval; 0 leaves the kernel
	// default (100ms). Millisecond resolution.
	Miimon time.Duration
	// UpDelay and DownDelay wait before enabling or disabling a port after
	// a link change; multiples of Miimon. Millisecond resolution.
	UpDelay, DownDelay time.Duration
	// LACPRate is "slow" or "fast"; 802.3ad only.
	LACPRate string
	// XmitHashPolicy is "layer2", "layer3+4", "layer2+3", "encap2+3" or
	// "encap3+4".
	XmitHashPolicy string
	// Primary names the preferred port; active-backup, balance-tlb and
	// balance-alb only.
	Primary string
	// MinLinks is how many ports must be up for the bond to be up.
	MinLinks int
}

// LinkName returns the bond's name.
func (b Bond) LinkName() string { return b.Name }

// Kind returns "bond".
func (Bond) Kind() string { return "bond" }

var bondModes = []string{"", "balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"}

// Validate checks the name, Mode, the timers and the options that only some
// modes take.
func (b Bond) Validate() error {
	c, err := newCheck(b.Kind(), b.Name)
	if err != nil {
		return err
	}
	if err := c.oneOf("Mode", b.Mode, bondModes...); err != nil {
		return err
	}
	const maxTimer = time.Duration(math.MaxInt32) * time.Millisecond
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"Miimon", b.Miimon}, {"UpDelay", b.UpDelay}, {"DownDelay", b.DownDelay}} {
		if err := c.duration(f.name, f.d, time.Millisecond, maxTimer); err != nil {
			return err
		}
	}
	if b.Miimon != 0 {
		if b.UpDelay%b.Miimon != 0 {
			return c.fail("UpDelay", "%v is not a multiple of Miimon %v", b.UpDelay, b.Miimon)
		}
		if b.DownDelay%b.Miimon != 0 {
			return c.fail("DownDelay", "%v is not a multiple of Miimon %v", b.DownDelay, b.Miimon)
		}
	}
	if err := c.oneOf("LACPRate", b.LACPRate, "", "slow", "fast"); err != nil {
		return err
	}
	if b.LACPRate != "" && b.Mode != "802.3ad" {
		return c.fail("LACPRate", "applies only to Mode 802.3ad, not %q", b.Mode)
	}
	if err := c.oneOf("XmitHashPolicy", b.XmitHashPolicy, "", "layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4"); err != nil {
		return err
	}
	if err := c.device("Primary", b.Primary, false); err != nil {
		return err
	}
	if b.Primary != "" && b.Mode != "active-backup" && b.Mode != "balance-tlb" && b.Mode != "balance-alb" {
		return c.fail("Primary", "applies only to Mode active-backup, balance-tlb or balance-alb, not %q", b.Mode)
	}
	return c.intRange("MinLinks", b.MinLinks, 0, math.MaxInt32)
}

// Team aggregates its ports with the team driver, driven by the teamd
// daemon. netlink cannot create it: the
// agent starts teamd with TeamdConfig, which creates the device, and stops
// it to remove the device.
type Team struct {
	Name string
	// Runner is "activebackup", "roundrobin" (the default), "loadbalance",
	// "lacp", "broadcast" or "random".
	Runner string
	// LinkWatch is "ethtool" (the default), "arp_ping" or "nsna_ping".
	LinkWatch string
}

// LinkName returns the team's name.
func (t Team) LinkName() string { return t.Name }

// Kind returns "team".
func (Team) Kind() string { return "team" }

// Validate checks the name, Runner and LinkWatch.
func (t Team) Validate() error {
	c, err := newCheck(t.Kind(), t.Name)
	if err != nil {
		return err
	}
	if err := c.oneOf("Runner", t.Runner, "", "activebackup", "roundrobin", "loadbalance", "lacp", "broadcast", "random"); err != nil {
		return err
	}
	return c.oneOf("LinkWatch", t.LinkWatch, "", "ethtool", "arp_ping", "nsna_ping")
}

// TeamdConfig validates t and returns the teamd JSON configuration that
// creates it (the agent runs "teamd -t NAME -c CONFIG" in the foreground).
func (t Team) TeamdConfig() (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	type named struct {
		Name string `json:"name"`
	}
	cfg := struct {
		Device    string `json:"device"`
		Runner    named  `json:"runner"`
		LinkWatch named  `json:"link_watch"`
	}{t.Name, named{t.Runner}, named{t.LinkWatch}}
	if cfg.Runner.Name == "" {
		cfg.Runner.Name = "roundrobin"
	}
	if cfg.LinkWatch.Name == "" {
		cfg.LinkWatch.Name = "ethtool"
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	return string(out), err
}
