package results

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkResultsRewrite times the rewrite of a run's results file after
// a recipe, late in a long run (100 recipes of 16 jobs), as lnsttest does
// it (RunFile.Write: recipes encoded and validated once) against encoding
// and validating the whole run each time (WriteRun), one of each per
// iteration, and prints the ratio of their total times:
//
//	RATIO results_rewrite/results_write_whole <x>
func BenchmarkResultsRewrite(b *testing.B) {
	r := fullRun()
	r.ID = "20260301-120000-aaaaaa"
	rc := r.Recipes[0]
	for range 4 {
		rc.Jobs = append(rc.Jobs, rc.Jobs...)
	}
	for range 100 {
		r.Recipes = append(r.Recipes, rc)
	}
	f := NewRunFile(b.TempDir())
	for _, rc := range r.Recipes {
		if err := f.AddRecipe(rc); err != nil {
			b.Fatal(err)
		}
	}
	head := *r
	head.Recipes = nil
	whole := b.TempDir()
	var re, wh time.Duration
	for b.Loop() {
		start := time.Now()
		if err := f.Write(&head); err != nil {
			b.Fatal(err)
		}
		re += time.Since(start)
		start = time.Now()
		if err := WriteRun(whole, r); err != nil {
			b.Fatal(err)
		}
		wh += time.Since(start)
	}
	if wh > 0 {
		fmt.Printf("RATIO results_rewrite/results_write_whole %.3f\n", float64(re)/float64(wh))
	}
}
