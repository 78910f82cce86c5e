package agent

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// TestTunHint: a permission error creating a tun/tap says how to fix
// /dev/net/tun when it is not open to everyone; other errors, and any
// error when it is, pass unchanged.
func TestTunHint(t *testing.T) {
	other := errors.New("no such device")
	if got := tunHint(other); got != other {
		t.Errorf("tunHint(%v) = %v, want it unchanged", other, got)
	}
	perm := &fs.PathError{Op: "open", Path: "/dev/net/tun", Err: fs.ErrPermission}
	got := tunHint(perm)
	if !errors.Is(got, fs.ErrPermission) {
		t.Errorf("tunHint(%v) = %v: no longer a permission error", perm, got)
	}
	fi, err := os.Stat("/dev/net/tun")
	if err != nil {
		if got != error(perm) {
			t.Errorf("no /dev/net/tun (%v): tunHint(%v) = %v, want it unchanged", err, perm, got)
		}
		return
	}
	open := fi.Mode().Perm()&0o006 == 0o006
	if hinted := strings.Contains(got.Error(), "chmod 0666 /dev/net/tun"); hinted == open {
		t.Errorf("/dev/net/tun is %04o; tunHint says %q", fi.Mode().Perm(), got)
	}
}
