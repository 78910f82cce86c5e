package results

import (
	"fmt"
	"math"
)

// WelchResult is the outcome of Welch's unequal-variances t-test of two
// samples.
type WelchResult struct {
	// T is the t statistic, (mean(b) - mean(a)) / sqrt(va/na + vb/nb).
	T float64
	// DF is the Welch–Satterthwaite degrees of freedom.
	DF float64
	// P is the two-sided p-value: the chance of a |T| this large if the
	// two means were equal.
	P float64
	// MeanA and MeanB are the samples' means.
	MeanA, MeanB float64
}

// WelchTTest runs Welch's t-test on samples a and b (each of at least 2
// values). Two samples with no variance at all give P 1 when their means
// are equal and 0 otherwise.
func WelchTTest(a, b []float64) (WelchResult, error) {
	if len(a) < 2 || len(b) < 2 {
		return WelchResult{}, fmt.Errorf("welch t-test: want at least 2 values in each sample, have %d and %d", len(a), len(b))
	}
	ma, va := meanVar(a)
	mb, vb := meanVar(b)
	r := WelchResult{MeanA: ma, MeanB: mb}
	na, nb := float64(len(a)), float64(len(b))
	sa, sb := va/na, vb/nb
	se := math.Sqrt(sa + sb)
	if se == 0 {
		r.P = 1
		if ma != mb {
			r.P, r.T = 0, math.Copysign(math.Inf(1), mb-ma)
		}
		r.DF = na + nb - 2
		return r, nil
	}
	r.T = (mb - ma) / se
	r.DF = (sa + sb) * (sa + sb) / (sa*sa/(na-1) + sb*sb/(nb-1))
	r.P = 2 * (1 - StudentTCDF(math.Abs(r.T), r.DF))
	return r, nil
}

// meanVar is the mean and sample variance (n-1) of xs.
func meanVar(xs []float64) (mean, variance float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		variance += (x - mean) * (x - mean)
	}
	return mean, variance / float64(len(xs)-1)
}

// StudentTCDF is the cumulative distribution function of Student's t
// distribution with df (> 0, not necessarily whole) degrees of freedom:
// for t >= 0, 1 - I_x(df/2, 1/2)/2 with x = df/(df+t²), I the regularized
// incomplete beta function; symmetric for t < 0.
func StudentTCDF(t, df float64) float64 {
	if math.IsInf(t, 0) {
		if t > 0 {
			return 1
		}
		return 0
	}
	tail := 0.5 * RegIncBeta(df/(df+t*t), df/2, 0.5)
	if t < 0 {
		return tail
	}
	return 1 - tail
}

// RegIncBeta is the regularized incomplete beta function I_x(a, b) for x
// in [0, 1] and a, b > 0, by its continued fraction (Numerical Recipes,
// betai and betacf, with the modified Lentz method).
func RegIncBeta(x, a, b float64) float64 {
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
// function.
func betaCF(x, a, b float64) float64 {
	const (
		eps  = 1e-15
		tiny = 1e-300
	)
	clamp := func(v float64) float64 {
		if math.Abs(v) < tiny {
			return tiny
		}
		return v
	}
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1/clamp(1-qab*x/qap)
	h := d
	for m := 1; m <= 500; m++ {
		fm := float64(m)
		m2 := 2 * fm
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 / clamp(1+aa*d)
		c = clamp(1 + aa/c)
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 / clamp(1+aa*d)
		c = clamp(1 + aa/c)
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}
