package perf_test

import (
	"fmt"

	"github.com/lnst-go/lnst/modules/perf"
)

func ExampleCompute() {
	s, _ := perf.Compute([]float64{9.3e9, 9.4e9, 9.5e9}, 0.95)
	fmt.Printf("mean %.2f sd %.2f ci %.3f..%.3f Gbit/s\n", s.Mean/1e9, s.StdDev/1e9, s.CILow/1e9, s.CIHigh/1e9)
	// Output: mean 9.40 sd 0.10 ci 9.152..9.648 Gbit/s
}

func ExampleTQuantile() {
	// The two-sided 95% critical value for 3 samples (2 degrees of freedom).
	fmt.Printf("%.3f\n", perf.TQuantile(0.975, 2))
	// Output: 4.303
}
