package lnsttest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// grubCfg is the shape of a grub.cfg update-grub writes on Debian 12: a
// default entry, then a submenu with each kernel and its recovery mode.
const grubCfg = `function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  fi
}
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
fi
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple-1234' {
	load_video
	linux	/boot/vmlinuz-6.1.0-56-cloud-amd64 root=UUID=1234 ro
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-1234' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-56-cloud-amd64' --class debian $menuentry_id_option 'gnulinux-6.1.0-56-cloud-amd64-advanced-1234' {
		linux	/boot/vmlinuz-6.1.0-56-cloud-amd64 root=UUID=1234 ro
	}
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-56-cloud-amd64 (recovery mode)' --class debian $menuentry_id_option 'gnulinux-6.1.0-56-cloud-amd64-recovery-1234' {
		linux	/boot/vmlinuz-6.1.0-56-cloud-amd64 root=UUID=1234 ro single
	}
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-47-cloud-amd64 (recovery mode)' --class debian $menuentry_id_option 'gnulinux-6.1.0-47-cloud-amd64-recovery-1234' {
		linux	/boot/vmlinuz-6.1.0-47-cloud-amd64 root=UUID=1234 ro single
	}
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-47-cloud-amd64' --class debian $menuentry_id_option 'gnulinux-6.1.0-47-cloud-amd64-advanced-1234' {
		linux	/boot/vmlinuz-6.1.0-47-cloud-amd64 root=UUID=1234 ro
	}
}
menuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {
	fwsetup
}
`

// TestGrubEntry finds the entry grub-reboot takes for a kernel: in its
// submenu, not the recovery mode, not the default entry.
func TestGrubEntry(t *testing.T) {
	e, err := grubEntry(grubCfg, "6.1.0-47-cloud-amd64")
	require.NoError(t, err)
	require.Equal(t, "gnulinux-advanced-1234>gnulinux-6.1.0-47-cloud-amd64-advanced-1234", e)
	e, err = grubEntry(grubCfg, "6.1.0-56-cloud-amd64")
	require.NoError(t, err)
	require.Equal(t, "gnulinux-advanced-1234>gnulinux-6.1.0-56-cloud-amd64-advanced-1234", e)
	_, err = grubEntry(grubCfg, "6.1.0-4")
	require.EqualError(t, err, "grub.cfg has no menu entry for Linux 6.1.0-4")
	top := "menuentry 'Debian GNU/Linux, with Linux 6.12.0-1-amd64' $menuentry_id_option 'gnulinux-6.12.0-1-amd64-advanced-9' {\n}\n"
	e, err = grubEntry(top, "6.12.0-1-amd64")
	require.NoError(t, err)
	require.Equal(t, "gnulinux-6.12.0-1-amd64-advanced-9", e)
}

// TestGrubBootPlan checks the commands of installing and booting a kernel
// package once with dpkg and grub, and of undoing it: a package that was
// installed before is neither installed nor purged.
func TestGrubBootPlan(t *testing.T) {
	g := grubBoot{pkg: "linux-image-6.1.0-47-cloud-amd64", deb: "/tmp/lnst-tmp-1/kernel.deb", release: "6.1.0-47-cloud-amd64"}
	require.Equal(t, []string{"dpkg", "-i", "/tmp/lnst-tmp-1/kernel.deb"}, g.install())
	require.Equal(t, []string{"grub-reboot", "gnulinux-advanced-1234>gnulinux-6.1.0-47-cloud-amd64-advanced-1234"},
		g.bootOnce("gnulinux-advanced-1234>gnulinux-6.1.0-47-cloud-amd64-advanced-1234"))
	require.Equal(t, [][]string{
		{"grub-editenv", "-", "unset", "next_entry"},
		{"dpkg", "--purge", "linux-image-6.1.0-47-cloud-amd64"},
	}, g.undo())
	require.Equal(t, []string{"dpkg-query", "-W", "-f=${Status}", "linux-image-6.1.0-47-cloud-amd64"}, g.query())
	g.installed = true
	require.Nil(t, g.install())
	require.Equal(t, [][]string{{"grub-editenv", "-", "unset", "next_entry"}}, g.undo())
}

// TestGrubPackageName refuses a .deb whose Package field is not a Debian
// package name: it reaches commands on the host, and a name such as
// "x; reboot" must never be a shell line there.
func TestGrubPackageName(t *testing.T) {
	for _, ok := range []string{"linux-image-6.1.0-47-cloud-amd64", "g++", "libc6.1", "0ad"} {
		require.NoError(t, checkDebPackage("k.deb", ok), ok)
	}
	for _, bad := range []string{"", "a", "x; reboot", "x$(id)", "Linux-image", "-x", ".x", "a b", "a\nb", "a'b", "a/b"} {
		err := checkDebPackage("k.deb", bad)
		require.Error(t, err, "%q", bad)
		require.Contains(t, err.Error(), "k.deb")
	}
}
