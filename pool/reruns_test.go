package pool

import (
	"reflect"
	"testing"
)

// TestReruns: a recipe whose machine died runs again while attempts are
// left, each attempt saying why; one out of attempts, or failed for
// another reason, fails the run for good; a death noted is not also
// counted as a plain failure.
func TestReruns(t *testing.T) {
	r := &Reruns{Limit: 1}
	if n, again := r.Died("TestA", "m1 died"); n != 1 || !again {
		t.Fatalf("first death of TestA: attempt %d, again %v; want 1, true", n, again)
	}
	r.Failed("TestA") // its failure is the death's
	if r.FailedForGood() {
		t.Fatal("a death with an attempt left failed the run")
	}
	if _, ok := r.AttemptOf("TestA"); ok {
		t.Fatal("TestA is a rerun before Next")
	}
	got := r.Next()
	if want := []Rerun{{Name: "TestA", Why: "m1 died"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Next = %v, want %v", got, want)
	}
	if a, ok := r.AttemptOf("TestA"); !ok || a != (Attempt{N: 2, Why: "attempt 1: m1 died"}) {
		t.Fatalf("AttemptOf(TestA) = %v, %v; want attempt 2 saying why", a, ok)
	}
	if n, again := r.Died("TestA", "m2 died"); n != 2 || again {
		t.Fatalf("second death of TestA: attempt %d, again %v; want 2, false", n, again)
	}
	if got := r.Next(); len(got) != 0 {
		t.Fatalf("Next after the last attempt = %v, want none", got)
	}
	if !r.FailedForGood() {
		t.Fatal("TestA died on its last attempt and the run did not fail")
	}

	r = &Reruns{Limit: 3}
	r.Failed("TestB")
	if !r.FailedForGood() || len(r.Next()) != 0 {
		t.Fatal("a plain failure is rerun or does not fail the run")
	}
}
