package perf

import (
	"slices"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProfileStandardWiring: what an ENRT recipe hands MeasureFlows
// (Profile.Standard of CurrentProfile, as recipes' enrtPerf calls it)
// under -lnst.set perf.profile=full is 5 iterations of 60 s flows with
// the offload and pinning sub-configs, under short the recipe's own
// quick figures and no matrix; perf.duration and perf.iterations
// override either. Nothing is run.
func TestProfileStandardWiring(t *testing.T) {
	set := StandardSet{Addr: "198.18.0.2"}
	devs := []*lnsttest.Device{{}, {}}

	t.Run("short", func(t *testing.T) {
		p := CurrentProfile(time.Second, 1)
		flows, opts := p.Standard(set)
		assert.Equal(t, Options{Iterations: 1, Warmup: -1}, opts)
		for _, f := range flows {
			assert.Equal(t, time.Second, f.Duration, f.Name)
		}
		assert.Nil(t, p.SubConfigs(devs))
	})
	t.Run("full", func(t *testing.T) {
		ProfileParam.SetForTest(t, "full")
		p := CurrentProfile(time.Second, 1)
		flows, opts := p.Standard(set)
		assert.Equal(t, Options{Iterations: 5, Warmup: -1}, opts)
		require.Len(t, flows, 10)
		for _, f := range flows {
			assert.Equal(t, 60*time.Second, f.Duration, f.Name)
		}
		o := opts.forFlows() // what MeasureFlows measures with
		assert.NoError(t, validateSet("enrt", o, withHosts(flows)), "MeasureFlows takes them")
		assert.Equal(t, 5, o.Iterations)
		assert.Equal(t, 0, o.Warmup, "no warm-up, as LNST's ENRT default")
		axes := p.SubConfigs(devs)
		require.Len(t, axes, 2)
		var names []string
		for _, a := range axes {
			for _, sc := range a {
				names = append(names, sc.Name)
			}
		}
		assert.Len(t, axes[0], 8, "every gro/gso/tso combination")
		assert.Contains(t, names, "gro=off,gso=off,tso=off")
		assert.Contains(t, names, "gro=on,gso=on,tso=on")
		assert.Equal(t, []string{"pin=none", "pin=split"}, names[8:])
	})
	t.Run("full with overrides", func(t *testing.T) {
		ProfileParam.SetForTest(t, "full")
		DurationParam.SetForTest(t, "10s")
		IterationsParam.SetForTest(t, "3")
		flows, opts := CurrentProfile(time.Second, 1).Standard(set)
		assert.Equal(t, 3, opts.Iterations)
		assert.Equal(t, 10*time.Second, flows[0].Duration)
	})
	t.Run("emulated", func(t *testing.T) {
		// A TCG guest among the hosts: the short profile's flows run
		// 3 s, UDP streams at 10 Mbit/s unless the set says otherwise.
		flows, _ := CurrentProfile(time.Second, 1).standard(set, true)
		for _, f := range flows {
			assert.Equal(t, EmulatedMinDuration, f.Duration, f.Name)
			if f.Kind == UDPStream {
				assert.Equal(t, "10M", f.Bitrate, f.Name)
			}
		}
		own := set
		own.UDPBitrate = "50M"
		flows, _ = CurrentProfile(time.Second, 1).standard(own, true)
		udp := slices.IndexFunc(flows, func(f Flow) bool { return f.Kind == UDPStream })
		require.Positive(t, udp)
		assert.Equal(t, "50M", flows[udp].Bitrate, "%s: the set's own rate is kept", flows[udp].Name)
		flows, _ = CurrentProfile(5*time.Second, 1).standard(set, true)
		assert.Equal(t, 5*time.Second, flows[0].Duration, "a recipe's longer short figure is kept")
		DurationParam.SetForTest(t, "1s")
		flows, _ = CurrentProfile(time.Second, 1).standard(set, true)
		assert.Equal(t, time.Second, flows[0].Duration, "perf.duration is kept as it is")
		flows, _ = CurrentProfile(time.Second, 1).standard(set, false)
		assert.Equal(t, "200M", flows[udp].Bitrate, "%s: not emulated", flows[udp].Name)
	})
	t.Run("restored", func(t *testing.T) {
		assert.Equal(t, "short", ProfileParam.Get(), "SetForTest puts the value back")
		assert.False(t, ProfileParam.IsSet())
	})
}
