package vmimage

import (
	"errors"
	"fmt"
	"os/exec"
)

// Check reports what this machine lacks to build and boot images: the
// error names each missing command and how to install it.
func Check() error {
	var errs []error
	for _, c := range []struct{ cmd, pkg string }{
		{"qemu-system-x86_64", "qemu-system-x86"},
		{"apt-get", "apt"},
		{"apt-cache", "apt"},
		{"dpkg-deb", "dpkg"},
	} {
		if _, err := exec.LookPath(c.cmd); err != nil {
			errs = append(errs, fmt.Errorf("%s not found: install it with apt-get install --no-install-recommends %s", c.cmd, c.pkg))
		}
	}
	return errors.Join(errs...)
}
