package pool

import (
	"context"
	"errors"
	"os"
	"testing"
)

// TestStaticProvisionerRemovesLeaseFiles: a released lease leaves no file
// behind, and the host can be leased again, by this process or another.
func TestStaticProvisionerRemovesLeaseFiles(t *testing.T) {
	p, err := Parse("/lab.yaml", []byte(hostsYAML))
	if err != nil {
		t.Fatal(err)
	}
	sp := &StaticProvisioner{Pool: p, LeaseDir: t.TempDir()}
	other := &StaticProvisioner{Pool: p, LeaseDir: sp.LeaseDir}
	for range 3 {
		m, err := sp.Reserve(context.Background(), Request{Host: "m1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Reserve(context.Background(), Request{Host: "m1"}); !errors.Is(err, ErrBusy) {
			t.Fatalf("second lease of m1: err = %v, want ErrBusy", err)
		}
		if err := sp.Release(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		left, err := os.ReadDir(sp.LeaseDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Fatalf("lease files left after Release: %v", left)
		}
		sp, other = other, sp
	}
}
