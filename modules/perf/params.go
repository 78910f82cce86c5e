package perf

import (
	"time"

	"github.com/lnst-go/lnst/lnsttest"
)

// Recipe parameters of every test binary that imports perf (go test
// ./recipes -args -lnst.params lists them; -lnst.set NAME=VALUE or
// LNST_SET_NAME sets them).
var (
	// ProfileParam is perf.profile: short (the default: make recipes
	// stays fast) or full (LNST's depth: 5 iterations of 60 s, every
	// sub-configuration).
	ProfileParam = lnsttest.NewParam("perf.profile", "short",
		"short (quick smoke measurements) or full (LNST depth: 5 iterations x 60s, every sub-configuration)",
		lnsttest.Choices("short", "full"))
	// DurationParam is perf.duration: how long each measured iteration
	// runs; 0 leaves it to the profile.
	DurationParam = lnsttest.NewParam("perf.duration", time.Duration(0),
		"how long each measured iteration runs (0: the profile's, 60s under full, the recipe's own under short)")
	// IterationsParam is perf.iterations: measured iterations; 0 leaves
	// it to the profile.
	IterationsParam = lnsttest.NewParam("perf.iterations", 0,
		"measured iterations of each flow (0: the profile's, 5 under full, the recipe's own under short)")
)

// Profile is what the perf.* parameters ask of a measurement.
type Profile struct {
	// Name is "short" or "full".
	Name string
	// Duration and Iterations are those of each flow.
	Duration   time.Duration
	Iterations int
	// AllSubConfigs is set under full: run every cell of a sub-config
	// matrix, not just the recipe's short selection.
	AllSubConfigs bool
	// durationSet is set when the duration is not the recipe's short
	// figure: under full, or set by perf.duration.
	durationSet bool
}

// Full reports whether the profile is full.
func (p Profile) Full() bool { return p.Name == "full" }

// CurrentProfile is the profile the parameters select, with the
// recipe's short figures (shortDuration, shortIterations) used under
// short: full is 5 iterations of 60 s and all sub-configurations;
// perf.duration and perf.iterations override either.
func CurrentProfile(shortDuration time.Duration, shortIterations int) Profile {
	p := Profile{Name: ProfileParam.Get(), Duration: shortDuration, Iterations: shortIterations}
	if p.Full() {
		p.Duration, p.Iterations, p.AllSubConfigs, p.durationSet = 60*time.Second, 5, true, true
	}
	if d := DurationParam.Get(); d > 0 {
		p.Duration, p.durationSet = d, true
	}
	if n := IterationsParam.Get(); n > 0 {
		p.Iterations = n
	}
	return p
}

// Options are the measurement options of the profile: its iterations
// and, as LNST's ENRT recipes by default, no warm-up.
func (p Profile) Options() Options {
	return Options{Iterations: p.Iterations, Warmup: -1}
}

// Standard is s under the profile: its flows, each of the profile's
// duration, and the options to measure them with, as an ENRT recipe
// hands them to MeasureFlows. Under full that is 5 iterations of 60 s.
//
// When s.Client or s.Server is emulated (lnsttest.Host.Emulated: a VM
// lab guest, a libvirt pool's TCG guest), the short profile's flows run
// at least EmulatedMinDuration and each UDP stream whose rate s leaves
// to the default is capped at EmulatedUDPBitrate: such a guest runs the
// set's flows on one emulated CPU, where a connection whose SYN was
// dropped waits out a 1 s retransmission timeout (which would leave a
// 1 s window empty for it: tcp_crr with no transaction), and four UDP
// streams at the default 200 Mbit/s each, past the 100-300 Mbit/s such
// a guest carries in all, starve the TCP flows (and themselves). A duration set by
// perf.duration or the full profile is kept as it is.
func (p Profile) Standard(s StandardSet) ([]Flow, Options) {
	return p.standard(s, s.emulated())
}

// standard is Standard with whether a host is emulated given.
func (p Profile) standard(s StandardSet, emulated bool) ([]Flow, Options) {
	s.Duration = p.Duration
	if emulated {
		if !p.durationSet {
			s.Duration = max(s.Duration, EmulatedMinDuration)
		}
		if s.UDPBitrate == "" {
			s.UDPBitrate = EmulatedUDPBitrate
		}
	}
	return s.Flows(), p.Options()
}

// EmulatedMinDuration is the shortest flow of Profile.Standard's short
// profile when a host is emulated: long enough that a connection that
// needed a SYN retransmission still carries data within the window.
const EmulatedMinDuration = 3 * time.Second

// EmulatedUDPBitrate caps each UDP stream of Profile.Standard (iperf3
// -b) when a host is emulated: a TCG guest carries some 100-300 Mbit/s
// in all, and beside the TCP streams that fill its CPU a 16000-byte
// datagram (eleven fragments, any one lost loses it) at 25 Mbit/s
// arrived not once in 3 s (an Open vSwitch bond: receive buffer errors
// and reassembly timeouts on a guest at 99% CPU).
const EmulatedUDPBitrate = "10M"

// SubConfigs are the sub-configuration axes of an ENRT recipe's
// standard measurement under the profile, for lnsttest.Matrix: none
// under short (one measurement, no matrix); under full every
// combination of gro, gso and tso on devs (the devices the flows cross
// on each end) and the CPU pinning policies none and split (the body
// pins its flows by Cell.Value("pin"), Flow.Pinned).
func (p Profile) SubConfigs(devs []*lnsttest.Device) []lnsttest.Axis {
	if !p.AllSubConfigs {
		return nil
	}
	return []lnsttest.Axis{lnsttest.Offloads(devs, "gro", "gso", "tso"), lnsttest.CPUPinning(lnsttest.PinNone, lnsttest.PinSplit)}
}
