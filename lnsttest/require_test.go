package lnsttest

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	eth0 := IfaceReq("eth0", Net("n1"))
	cases := []struct {
		name string
		reqs []Requirement
		err  string
	}{
		{"ok", []Requirement{HostReq("h1", eth0), HostReq("h2", eth0)}, ""},
		{"none", nil, "no host required"},
		{"duplicate host", []Requirement{HostReq("h1", eth0), HostReq("h1", eth0)}, `host "h1" is required twice: host names must be unique`},
		{"no name", []Requirement{HostReq("h1"), HostReq("")}, "HostReq #2 has no name"},
		{"no network", []Requirement{HostReq("h1", IfaceReq("eth0"))}, `host "h1": interface "eth0" has no network: give it lnsttest.Net(label)`},
		{"duplicate iface", []Requirement{HostReq("h1", eth0, eth0)}, `host "h1": interface "eth0" is required twice`},
		{"bad iface name", []Requirement{HostReq("h1", IfaceReq("eth/0", Net("n")))}, `host "h1": IfaceReq: device name "eth/0" has a character`},
		{"empty iface name", []Requirement{HostReq("h1", IfaceReq("", Net("n")))}, `host "h1": IfaceReq: device name is empty`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := validate(c.reqs)
			if c.err == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.err)
		})
	}
}

func TestLabUnmet(t *testing.T) {
	assert.Empty(t, labUnmet([]Requirement{HostReq("h1", Arch(labArch()), IfaceReq("eth0", Net("n"), Driver("veth")))}))
	assert.Equal(t, `host "h1" needs arch sparc64; local lab hosts are `+labArch(),
		labUnmet([]Requirement{HostReq("h1", Arch("sparc64"))}))
	assert.Equal(t, `host "h2" interface "eth0" needs driver ixgbe; local lab interfaces are veth`,
		labUnmet([]Requirement{HostReq("h1"), HostReq("h2", IfaceReq("eth0", Net("n"), Driver("ixgbe")))}))
	assert.Equal(t, `host "h1" needs param rack="a"; local lab hosts have no params (use a pool)`,
		labUnmet([]Requirement{HostReq("h1", Param("rack", "a"))}))
	assert.Equal(t, `host "h1" interface "eth0" needs param speed="10000"; local lab interfaces have no params (use a pool)`,
		labUnmet([]Requirement{HostReq("h1", IfaceReq("eth0", Net("n"), Param("speed", "10000")))}))
}

func TestTopologyFromRequirements(t *testing.T) {
	topo := topology([]Requirement{
		HostReq("h1", IfaceReq("eth0", Net("a")), IfaceReq("eth1", Net("b"))),
		HostReq("h2", IfaceReq("eth0", Net("b"))),
	})
	require.Len(t, topo.Hosts, 2)
	assert.Equal(t, "h1", topo.Hosts[0].Name)
	assert.Equal(t, "eth1", topo.Hosts[0].Ifaces[1].Name)
	assert.Equal(t, "b", topo.Hosts[0].Ifaces[1].Net)
	assert.Equal(t, "b", topo.Hosts[1].Ifaces[0].Net)
}

func TestLoadConfig(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		err  string
	}{
		{"defaults", nil, nil, ""},
		{"env strict", nil, map[string]string{"LNST_STRICT": "true"}, ""},
		{"bad env bool", nil, map[string]string{"LNST_STRICT": "maybe"}, `environment variable LNST_STRICT="maybe": parse error`},
		{"bad log level flag", []string{"-lnst.log-level=loud"}, nil, `-lnst.log-level: unknown log level "loud" (want trace, debug, info, warn or error)`},
		{"bad log level env", nil, map[string]string{"LNST_LOG_LEVEL": "loud"}, `environment variable LNST_LOG_LEVEL: unknown log level "loud"`},
		{"flag beats env", []string{"-lnst.log-level=debug"}, map[string]string{"LNST_LOG_LEVEL": "loud"}, ""},
		{"bad lab", []string{"-lnst.lab=qemu"}, nil, `-lnst.lab: unknown lab "qemu" (want netns, rootless, vm or auto)`},
		{"vm lab", []string{"-lnst.lab=vm", "-lnst.vm.memory=256"}, nil, ""},
		{"bad vm memory", nil, map[string]string{"LNST_VM_MEMORY": "lots"}, `environment variable LNST_VM_MEMORY: "lots" is not a memory size in MiB from 128 to 65536`},
		{"vm memory too small", []string{"-lnst.vm.memory=64"}, nil, `-lnst.vm.memory: "64" is not a memory size`},
		{"vm cpus", []string{"-lnst.lab=vm", "-lnst.vm.cpus=2"}, nil, ""},
		{"vm ovs", []string{"-lnst.lab=vm", "-lnst.vm.ovs=true"}, nil, ""},
		{"vm maxboot", []string{"-lnst.lab=vm", "-lnst.vm.maxboot=4"}, nil, ""},
		{"bad vm maxboot", nil, map[string]string{"LNST_VM_MAXBOOT": "-1"}, `environment variable LNST_VM_MAXBOOT: "-1" is not a number of guests from 0 (one per CPU) to 1024`},
		{"vm accel kvm", []string{"-lnst.lab=vm", "-lnst.vm.accel=kvm"}, nil, ""},
		{"vm accel env", nil, map[string]string{"LNST_VM_ACCEL": "tcg"}, ""},
		{"bad vm accel", []string{"-lnst.vm.accel=hvf"}, nil, `-lnst.vm.accel: unknown accelerator "hvf" (want auto, kvm or tcg)`},
		{"bad vm ovs", []string{"-lnst.vm.ovs=yes please"}, nil, `-lnst.vm.ovs: "yes please" is neither true nor false`},
		{"bad vm cpus", nil, map[string]string{"LNST_VM_CPUS": "0"}, `environment variable LNST_VM_CPUS: "0" is not a number of CPUs from 1 to 64`},
		{"vm kernel missing", []string{"-lnst.vm.kernel=/nonexistent/bzImage"}, nil, `-lnst.vm.kernel: stat /nonexistent/bzImage: no such file or directory`},
		{"vm modules without kernel", []string{"-lnst.vm.modules=/tmp"}, nil, `-lnst.vm.modules: a modules tree needs its kernel: give -lnst.vm.kernel too`},
		{"reruns", []string{"-lnst.reruns=2"}, nil, ""},
		{"bad reruns env", nil, map[string]string{"LNST_RERUNS": "twice"}, `environment variable LNST_RERUNS: "twice" is not a number of reruns from 0 to 100`},
		{"negative reruns", []string{"-lnst.reruns=-1"}, nil, `-lnst.reruns: "-1" is not a number of reruns`},
		{"mapped ifnames", []string{"-lnst.lab.ifnames=mapped"}, nil, ""},
		{"mapped ifnames env", nil, map[string]string{"LNST_LAB_IFNAMES": "mapped"}, ""},
		{"bad ifnames env", nil, map[string]string{"LNST_LAB_IFNAMES": "enp"}, `environment variable LNST_LAB_IFNAMES: unknown interface naming "enp" (want same or mapped)`},
		{"bad agent log", nil, map[string]string{"LNST_AGENT_LOG": "x"}, `environment variable LNST_AGENT_LOG: unknown log level "x"`},
		{"capture all", []string{"-lnst.capture=all", "-lnst.results=/tmp/r"}, nil, ""},
		{"capture failed env", nil, map[string]string{"LNST_CAPTURE": "failed", "LNST_RESULTS": "/tmp/r"}, ""},
		{"capture without results", []string{"-lnst.capture=all"}, nil, `-lnst.capture: "all" keeps pcapng files in the results directory: give -lnst.results DIR too`},
		{"bad capture", []string{"-lnst.capture=some", "-lnst.results=/tmp/r"}, nil, `-lnst.capture: unknown capture mode "some" (want off, failed or all)`},
		{"profile perf", []string{"-lnst.profile=perf", "-lnst.profile.run=^TestPerfFlows$", "-lnst.results=/tmp/r"}, nil, ""},
		{"profile perf env", nil, map[string]string{"LNST_PROFILE": "perf", "LNST_RESULTS": "/tmp/r"}, ""},
		{"profile without results", []string{"-lnst.profile=perf"}, nil, `-lnst.profile: "perf" keeps perf.data files in the results directory: give -lnst.results DIR too`},
		{"bad profile", []string{"-lnst.profile=oprofile", "-lnst.results=/tmp/r"}, nil, `-lnst.profile: unknown profiler "oprofile" (want off or perf)`},
		{"bad profile run env", nil, map[string]string{"LNST_PROFILE_RUN": "Test(["}, `environment variable LNST_PROFILE_RUN: "Test([" is not a regular expression`},
	}
	saved := cfg
	defer func() { cfg = saved }()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg = config{}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.BoolVar(&cfg.strict, "lnst.strict", false, "")
			fs.StringVar(&cfg.lab, "lnst.lab", "netns", "")
			fs.StringVar(&cfg.pool, "lnst.pool", "", "")
			fs.StringVar(&cfg.logLevel, "lnst.log-level", "info", "")
			fs.StringVar(&cfg.agentLog, "lnst.agent-log", "warn", "")
			fs.BoolVar(&cfg.summary, "lnst.summary", true, "")
			fs.StringVar(&cfg.vmMemory, "lnst.vm.memory", "512", "")
			fs.StringVar(&cfg.vmCPUs, "lnst.vm.cpus", "1", "")
			fs.StringVar(&cfg.vmMaxBoot, "lnst.vm.maxboot", "0", "")
			fs.StringVar(&cfg.vmOvs, "lnst.vm.ovs", "false", "")
			fs.StringVar(&cfg.vmAccel, "lnst.vm.accel", "auto", "")
			fs.StringVar(&cfg.vmKernel, "lnst.vm.kernel", "", "")
			fs.StringVar(&cfg.vmModules, "lnst.vm.modules", "", "")
			fs.StringVar(&cfg.reruns, "lnst.reruns", "0", "")
			fs.StringVar(&cfg.ifnames, "lnst.lab.ifnames", "same", "")
			fs.StringVar(&cfg.capture, "lnst.capture", "off", "")
			fs.StringVar(&cfg.results, "lnst.results", "", "")
			fs.StringVar(&cfg.sysinfo, "lnst.sysinfo", "summary", "")
			fs.StringVar(&cfg.kernelLog, "lnst.kernel-log", "on", "")
			fs.StringVar(&cfg.profile, "lnst.profile", "off", "")
			fs.StringVar(&cfg.profRun, "lnst.profile.run", ".", "")
			require.NoError(t, fs.Parse(c.args))
			err := loadConfig(fs, func(k string) string { return c.env[k] })
			if c.err == "" {
				require.NoError(t, err)
				if c.env["LNST_STRICT"] == "true" {
					assert.True(t, cfg.strict)
				}
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.err)
		})
	}
}

func TestLineDiff(t *testing.T) {
	assert.Equal(t, "", lineDiff("a\nb\n", "a\nb\n"))
	assert.Equal(t, "", lineDiff("a\nb\n", "b\na\n"), "order does not matter")
	assert.Equal(t, "- b\n+ c", lineDiff("a\nb\n", "a\nc\n"))
	assert.Equal(t, "+ a", lineDiff("a\n", "a\na\n"), "a repeated line counts")
	assert.Equal(t, "- 1: lo    inet 127.0.0.1/8 scope host lo", lineDiff("1: lo    inet 127.0.0.1/8 scope host lo\n", "\n"))
}

func TestWithoutFallbacks(t *testing.T) {
	snap := "1: lo: <LOOPBACK,UP> mtu 65536\n" +
		"5: sit0@NONE: <NOARP> mtu 1480 link/sit\n" +
		"/proc/sys/net/ipv6/conf/sit0/mtu:1480\n" +
		"/proc/sys/net/ipv6/conf/lo/mtu:65536\n" +
		"fe80::/64 dev sit0 proto kernel metric 256\n"
	assert.Equal(t, "1: lo: <LOOPBACK,UP> mtu 65536\n/proc/sys/net/ipv6/conf/lo/mtu:65536\n", withoutFallbacks(snap))
}
