package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestGcCmd: gc wants a URI, and says which hypervisor it could not
// reach.
func TestGcCmd(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"gc"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: lnst gc --libvirt URI") {
		t.Errorf("gc without a URI: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	uri := "qemu+unix:///system?socket=" + filepath.Join(t.TempDir(), "none.sock")
	if code := run([]string{"gc", "--libvirt", uri}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "libvirt "+uri+": unreachable") {
		t.Errorf("gc of an unreachable hypervisor: exit %d, %q", code, errb.String())
	}
}
