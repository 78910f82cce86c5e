package benchratio

import (
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	got := Line("a/b", []float64{1.5, 1.1, 1.2})
	want := "RATIO a/b 1.200 (min 1.100 max 1.500, n=3)"
	if got != want {
		t.Fatalf("Line = %q, want %q", got, want)
	}
	if Line("a/b", nil) != "" {
		t.Fatal("Line of no rounds is not empty")
	}
}

func TestLineCI(t *testing.T) {
	got := LineCI("a/b", []float64{1, 2, 3})
	// mean 2, sd 1, t(2) 4.303: half width 4.303/sqrt(3) = 2.484
	want := "RATIO a/b 2.000 (min 1.000 max 3.000, n=3) [mean 2.000, 95% CI -0.484..4.484]"
	if got != want {
		t.Fatalf("LineCI = %q, want %q", got, want)
	}
	if !strings.HasPrefix(LineCI("x", []float64{2}), "RATIO x 2.000 ") {
		t.Fatal("LineCI of one round is not its Line")
	}
}

func TestRatios(t *testing.T) {
	rs := Ratios([]time.Duration{2, 6, 9}, []time.Duration{1, 3})
	if len(rs) != 2 || rs[0] != 2 || rs[1] != 2 {
		t.Fatalf("Ratios = %v, want [2 2]", rs)
	}
}

func TestLineOf(t *testing.T) {
	got := LineOf("rss", 1.05, []float64{1.1, 0.9})
	want := "RATIO rss 1.050 (min 0.900 max 1.100, n=2)"
	if got != want {
		t.Fatalf("LineOf = %q, want %q", got, want)
	}
}
