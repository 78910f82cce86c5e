package perf

import (
	"fmt"
	"math"
)

// Stats are the statistics of a sample.
type Stats struct {
	N int
	// Mean is the sample mean; StdDev the sample standard deviation
	// (divided by n-1), 0 when N is 1.
	Mean, StdDev float64
	// CILow and CIHigh bound the Student t confidence interval of the
	// mean; both are the Mean when N is 1.
	CILow, CIHigh float64
}

// Compute returns the statistics of xs with a confidence interval at
// level confidence (0.95). It returns an error when xs is empty or
// confidence is not strictly between 0 and 1.
func Compute(xs []float64, confidence float64) (Stats, error) {
	if len(xs) == 0 {
		return Stats{}, fmt.Errorf("statistics of no values")
	}
	if !(confidence > 0 && confidence < 1) {
		return Stats{}, fmt.Errorf("confidence %v is not between 0 and 1", confidence)
	}
	n := float64(len(xs))
	var sum float64
	for _, x := range xs {
		sum += x
	}
	s := Stats{N: len(xs), Mean: sum / n}
	s.CILow, s.CIHigh = s.Mean, s.Mean
	if len(xs) == 1 {
		return s, nil
	}
	var sq float64
	for _, x := range xs {
		sq += (x - s.Mean) * (x - s.Mean)
	}
	s.StdDev = math.Sqrt(sq / (n - 1))
	half := TQuantile((1+confidence)/2, len(xs)-1) * s.StdDev / math.Sqrt(n)
	s.CILow, s.CIHigh = s.Mean-half, s.Mean+half
	return s, nil
}

// TQuantile returns the p quantile of Student's t distribution with df
// degrees of freedom: TQuantile(0.975, 2) = 4.303, the critical value of
// a two-sided 95% interval of 3 samples. p must be in (0, 1) and df >= 1.
func TQuantile(p float64, df int) float64 {
	if p == 0.5 {
		return 0
	}
	if p < 0.5 {
		return -TQuantile(1-p, df)
	}
	// Bisection on the CDF: monotonic, and 200 halvings reach the
	// precision of a float64 from any bracket.
	lo, hi := 0.0, 1.0
	for tCDF(hi, df) < p {
		lo, hi = hi, hi*2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if tCDF(mid, df) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// tCDF is the CDF of Student's t distribution at t >= 0:
// 1 - I_x(df/2, 1/2) / 2 with x = df / (df + t²).
func tCDF(t float64, df int) float64 {
	v := float64(df)
	return 1 - 0.5*regIncBeta(v/(v+t*t), v/2, 0.5)
}

// regIncBeta is the regularized incomplete beta function I_x(a, b), by
// its continued fraction (Numerical Recipes, betai and betacf).
func regIncBeta(x, a, b float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab - la - lb + a*math.Log(x) + b*math.Log(1-x))
	if x < (a+1)/(a+b+2) {
		return front * betaCF(x, a, b) / a
	}
	return 1 - front*betaCF(1-x, b, a)/b
}

// betaCF evaluates the continued fraction of the incomplete beta
// function with the modified Lentz method.
func betaCF(x, a, b float64) float64 {
	const (
		eps  = 1e-15
		tiny = 1e-300
	)
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= 300; m++ {
		fm := float64(m)
		m2 := 2 * fm
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}
