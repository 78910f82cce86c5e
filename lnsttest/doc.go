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
// Flags (each also read from the environment variable in brackets, so an
// IDE can run one recipe with no flags):
//
//	-lnst.strict      [LNST_STRICT]     fail, instead of skip, a recipe whose requirements cannot be met
//	-lnst.lab         [LNST_LAB]        which local lab to use: netns (the default; rootless when not root) or rootless
//	-lnst.pool        [LNST_POOL]       a pool file of real machines (not supported yet)
//	-lnst.log-level   [LNST_LOG_LEVEL]  trace, debug, info (default), warn, error: what recipes log via t.Log
//	-lnst.agent-log   [LNST_AGENT_LOG]  log level of the lab agent (stderr), default warn
//	-lnst.summary     [LNST_SUMMARY]    print the RESULTS SUMMARY of each recipe (default true)
//	-lnst.results     [LNST_RESULTS]    write results.json and job outputs into this directory
//	-lnst.history     [LNST_HISTORY]    results.json of an earlier run: on a pool, the most host-time first
//
// modules/perf adds -lnst.baselines and -lnst.baseline-record to test
// binaries that import it.
package lnsttest
