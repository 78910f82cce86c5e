package results_test

import (
	"fmt"
	"time"

	"github.com/lnst-go/lnst/results"
)

func ExampleMeasurement_String() {
	m := results.Measurement{
		Flow: "tcp", Protocol: "TCP", Unit: results.UnitBitsPerSecond,
		Iterations: []float64{9.3e9, 9.4e9, 9.53e9},
		Mean:       9.41e9, StdDev: 0.12e9, CILow: 9.30e9, CIHigh: 9.52e9, Confidence: 0.95,
		CPU: map[string]results.CPUStats{"h1": {Mean: 34}, "h2": {Mean: 29}},
	}
	fmt.Println(m)
	// Output: TCP 9.41 Gbit/s ± 0.12 (95% CI 9.30–9.52), 3 runs; cpu h1 34% h2 29%
}

func ExampleNewRecord() {
	m := results.Measurement{Flow: "tcp", Unit: results.UnitBitsPerSecond, Iterations: []float64{1e9},
		Mean: 1e9, CILow: 1e9, CIHigh: 1e9, Confidence: 0.95, Duration: results.Duration(2 * time.Second)}
	r := results.NewRecord("perf tcp", m)
	fmt.Println(r.Kind)
	fmt.Println(r.Text)
	// Output:
	// measurement
	// 1.00 Gbit/s ± 0.00 (95% CI 1.00–1.00), 1 run
}
