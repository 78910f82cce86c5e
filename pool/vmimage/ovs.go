package vmimage

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/lnst-go/lnst/internal/cpio"
)

// ovsFiles are the files of Open vSwitch the image carries, by package:
// its daemons (the guest's agent starts them for the first OvsBridge),
// ovs-vsctl and the database schema. Only these are taken from the
// packages (not their Python tools), with their shared libraries.
var ovsFiles = map[string][]string{
	"openvswitch-common": {"/usr/sbin/ovsdb-server", "/usr/bin/ovsdb-tool", "/usr/bin/ovs-appctl", "/usr/bin/ovs-ofctl"},
	"openvswitch-switch": {"/usr/bin/ovs-vsctl", "/usr/bin/ovs-dpctl", ovsVswitchd, "/usr/share/openvswitch/vswitch.ovsschema"},
}

// ovsVswitchd is where Debian installs ovs-vswitchd (its postinst links
// /usr/sbin/ovs-vswitchd to it with update-alternatives); the image links
// it the same way.
const ovsVswitchd = "/usr/lib/openvswitch-switch/ovs-vswitchd"

// ovsPackages returns the packages of ovsFiles, sorted.
func ovsPackages() []string { return slices.Sorted(maps.Keys(ovsFiles)) }

// addOvs adds ovsFiles, unpacked under stage/pkg/<package>, to the tree,
// with the shared libraries of the programs, resolved in libRoot.
func (t *tree) addOvs(stage, libRoot string, done map[string]bool) error {
	for _, pkg := range ovsPackages() {
		root := filepath.Join(stage, "pkg", pkg)
		for _, f := range ovsFiles[pkg] {
			host, err := t.addStaged(root, f, 0)
			if err != nil {
				return fmt.Errorf("package %s: %w", pkg, err)
			}
			if path.Ext(f) == ".ovsschema" {
				continue
			}
			if err := t.addELFClosure(libRoot, host, done); err != nil {
				return fmt.Errorf("package %s: %w", pkg, err)
			}
		}
	}
	t.add(cpio.File{Path: "/usr/sbin/ovs-vswitchd", Mode: os.ModeSymlink | 0o777, Data: []byte(ovsVswitchd)})
	return nil
}
