// Package perf measures throughput between two hosts the way a
// performance recipe needs it: the same iperf3 flow run several times
// after a warm-up, with its mean, deviation and confidence interval, the
// CPU load of both hosts, and a check against a stored baseline.
//
//	m := perf.Measure(t, perf.Flow{Name: "tcp", Client: h1, Server: h2,
//		ServerAddr: "198.18.3.2", Duration: 2 * time.Second}, perf.Options{})
//	perf.ZeroThroughput(t, m)
//	perf.CheckBaseline(t, m, perf.BaselineOptions{})
//
// Measure records the measurement with lnsttest.Record as "perf <flow>",
// so it shows in the RESULTS SUMMARY and in results.json as a
// results.Measurement; CheckBaseline adds its comparison to that same
// record.
package perf
