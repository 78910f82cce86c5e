package vmimage

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/internal/cpio"
)

// TestWarnModuleMissing: when lnst_warn.ko cannot be built, the image is
// still made, without the module and with the reason in
// WarnModuleMissing; a cancelled build is an error, not such an image.
func TestWarnModuleMissing(t *testing.T) {
	in := &inputs{release: "6.1.0-57-cloud-amd64", kernel: "linux-image-6.1.0-57-cloud-amd64",
		warnErr: "header packages: apt-cache depends linux-headers-x names no linux-kbuild-*"}
	tr := &tree{entries: map[string]cpio.File{}}
	if err := addWarnModule(context.Background(), tr, in, t.TempDir(), t.TempDir(), io.Discard); err != nil {
		t.Fatal(err)
	}
	dir := "/usr/lib/modules/6.1.0-57-cloud-amd64/"
	if tr.has(dir + WarnModulePath) {
		t.Errorf("%s in the image, though it was not built", WarnModulePath)
	}
	e, ok := tr.entries[dir+WarnModuleMissing]
	if !ok || !strings.Contains(string(e.Data), in.warnErr) {
		t.Errorf("%s: %q, want the reason %q", WarnModuleMissing, e.Data, in.warnErr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := addWarnModule(ctx, &tree{entries: map[string]cpio.File{}}, in, t.TempDir(), t.TempDir(), io.Discard); err == nil {
		t.Error("cancelled: want an error, not an image without the module")
	}
}
