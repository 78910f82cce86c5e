package debpkg

import "testing"

func TestParseCandidates(t *testing.T) {
	out := "'http://x/busybox.deb' busybox-static_1%3a1.35.0-4_amd64.deb 928188 SHA256:3d3f\n"
	debs, err := parseCandidates(out, []string{"busybox-static"})
	if err != nil || debs["busybox-static"].File != "busybox-static_1%3a1.35.0-4_amd64.deb" || debs["busybox-static"].SHA256 != "3d3f" {
		t.Errorf("got %+v, %v", debs, err)
	}
	if _, err := parseCandidates(out, []string{"busybox-static", "ip"}); err == nil {
		t.Error("no error for a package without a file")
	}
}
