// Package lnsttest is the recipe context of lnst-go: a recipe is an
// ordinary Go test that declares the hosts and interfaces it needs with
// Require, and drives them through their agents.
//
//	func TestMain(m *testing.M) { lnsttest.Main(m) }
//
//	func TestPing(t *testing.T) {
//		m := lnsttest.Require(t,
//			lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
//			lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
//		)
//		h1, h2 := m.Host("h1"), m.Host("h2")
//		h1.Iface("eth0").AddIP(t, "198.18.1.1/24")
//		h2.Iface("eth0").AddIP(t, "198.18.1.2/24")
//		h1.Run(t, "ping -c 3 198.18.1.2")
//	}
//
// With no pool configured, hosts come from the local lab: network
// namespaces on this machine, served by the test binary re-executed as an
// agent. Every method that acts takes the current test first, fails it on
// error with a message naming host, job and command, and registers the undo
// of what it changed with t.Cleanup. At the end of each recipe a RESULTS
// SUMMARY lists its jobs.
//
// What a recipe changes with a raw command, the agent cannot take back on
// its own; Undo gives the command that does, journaled on the agent like
// every other undo (at cleanup, on lease expiry, after an agent crash):
//
//	h.Run(t, "ovs-vsctl add-br br9", lnsttest.Undo("ovs-vsctl del-br br9"))
//
// Flags (each also read from the environment variable in brackets, so an
// IDE can run one recipe with no flags; go test -args -h lists them with
// their defaults; a test checks this list against them):
//
//	-lnst.strict           [LNST_STRICT]           fail, instead of skip, a recipe whose requirements cannot be met
//	-lnst.lab              [LNST_LAB]              the local lab: netns (the default; rootless when not root), rootless,
//	                                               vm (QEMU guests) or auto (netns, and VMs for recipes needing kernel kinds this kernel lacks)
//	-lnst.lab.ifnames      [LNST_LAB_IFNAMES]      the lab's interface names: same (as required, eth0) or mapped (lnst1p0, as on real machines)
//	-lnst.vm.cache         [LNST_VM_CACHE]         directory the VM lab's image is built and cached in
//	-lnst.vm.kernel        [LNST_VM_KERNEL]        bzImage the VM lab boots instead of Debian's cloud kernel: a kernel under test
//	-lnst.vm.modules       [LNST_VM_MODULES]       modules tree of -lnst.vm.kernel
//	-lnst.vm.memory        [LNST_VM_MEMORY]        memory of each VM lab guest, in MiB (default 512)
//	-lnst.vm.cpus          [LNST_VM_CPUS]          virtual CPUs of each VM lab guest (default 1)
//	-lnst.vm.maxboot       [LNST_VM_MAXBOOT]       how many guests boot at once (default 0: one per host CPU)
//	-lnst.vm.accel         [LNST_VM_ACCEL]         how QEMU runs the guests: auto (KVM where it works, else TCG), kvm or tcg
//	-lnst.vm.ovs           [LNST_VM_OVS]           add Open vSwitch to the VM lab's image
//	-lnst.pool             [LNST_POOL]             pool file of machines running lnst-agent, instead of the local lab
//	-lnst.reruns           [LNST_RERUNS]           how many times a recipe whose provisioned machine died is run again elsewhere
//	-lnst.log-level        [LNST_LOG_LEVEL]        trace, debug, info (default), warn, error: what recipes log via t.Log
//	-lnst.agent-log        [LNST_AGENT_LOG]        log level of the lab agent (stderr), default warn
//	-lnst.summary          [LNST_SUMMARY]          print the RESULTS SUMMARY of each recipe (default true)
//	-lnst.results          [LNST_RESULTS]          write results.json, the run's events and job outputs into this directory, as the run goes
//	-lnst.capture          [LNST_CAPTURE]          off (default), failed, all: pcapng of every matched interface per recipe in -lnst.results
//	-lnst.history          [LNST_HISTORY]          results.json of an earlier run: on a pool, the longest of a width first
//	-lnst.set              [LNST_SET_*]            set a recipe parameter (NewParam): NAME=VALUE, repeatable; LNST_SET_PERF_DURATION sets perf.duration
//	-lnst.params           [LNST_PARAMS]           list the recipe parameters with type, default and doc, and exit
//	-lnst.sysinfo          [LNST_SYSINFO]          off, summary (default) or full: hosts' counters before and after each recipe
//	-lnst.kernel-log       [LNST_KERNEL_LOG]       on (default): fail a recipe whose hosts' kernel logs a WARNING, BUG, Oops...; all; off
//	-lnst.profile          [LNST_PROFILE]          off (default) or perf: perf record -a -g on every host over each measured window, into -lnst.results
//	-lnst.profile.run      [LNST_PROFILE_RUN]      regular expression of the recipes -lnst.profile profiles (default: all)
//
// modules/perf adds -lnst.baselines and -lnst.baseline-record to test
// binaries that import it.
package lnsttest
