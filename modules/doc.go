// Package modules holds the test modules recipes run on hosts: typed
// wrappers around network tools whose results are Go values a recipe can
// assert on, not text to grep.
//
// Each module is a small struct of options with a method that takes the
// current test first, runs the tool on a host through the agent, fails the
// test (naming the host and showing the tool's output) when the tool cannot
// run or its output cannot be read, records a one-line formatted result in
// the RESULTS SUMMARY, and returns the parsed result:
//
//	res := modules.Ping{Dst: "198.18.1.2", Count: 5}.Run(t, h1)
//	require.Zero(t, res.Lost)
//
//	srv := modules.Iperf3Server{}.Start(t, h2)
//	defer srv.Stop(t)
//	tput := modules.Iperf3Client{Server: "198.18.1.2", Duration: 5 * time.Second}.Run(t, h1)
//	require.Greater(t, tput.BitsPerSecond, 1e9)
//
// A result that is a measurement (packets lost, a low throughput) is returned
// to the recipe, which decides what passes; only a module that could not
// measure fails the test by itself.
//
// The modules run argv directly (no shell) and expect iputils ping and
// iperf3 3.x on the host.
package modules
