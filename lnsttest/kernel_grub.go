package lnsttest

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A Debian machine whose root is on disk boots a kernel under test through
// its own boot loader: InstallKernel installs the package with dpkg -i
// (its postinst scripts build the initramfs and update grub.cfg) and makes
// it grub's next entry, once, with grub-reboot. Cleanup makes the
// machine's own kernel the next entry, reboots into it, clears grub's
// next_entry and purges the package unless it was installed before.
// The commands are unit-tested here (kernel_grub_test.go); no machine with
// grub is part of this project's CI.

// grubBoot is the plan of installing and booting one kernel package with
// dpkg and grub on a host.
type grubBoot struct {
	pkg     string // the package's name, e.g. linux-image-6.1.0-47-cloud-amd64
	deb     string // the .deb's path on the host
	release string // the kernel's release
	// installed is set when the package was installed before: it is
	// neither installed nor purged then.
	installed bool
}

// dpkgEnv keeps dpkg's maintainer scripts from asking questions.
var dpkgEnv = []string{"DEBIAN_FRONTEND=noninteractive"}

// install is the command that installs the package ("" when it was
// installed before).
func (g grubBoot) install() []string {
	if g.installed {
		return nil
	}
	return []string{"dpkg", "-i", g.deb}
}

// query is the command that prints the package's dpkg status; it is
// argv, never a shell line: the name comes from a .deb.
func (g grubBoot) query() []string { return []string{"dpkg-query", "-W", "-f=${Status}", g.pkg} }

// debPackageName is the form Debian policy (5.6.1) gives a package name.
var debPackageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// checkDebPackage checks that name, read from a .deb's Package field, is a
// Debian package name: anything else is refused before it reaches a
// command on the host.
func checkDebPackage(deb, name string) error {
	if !debPackageName.MatchString(name) {
		return fmt.Errorf("%s: Package field %q is not a Debian package name (lower-case letters, digits, +, - and ., at least two, starting with a letter or digit)", deb, name)
	}
	return nil
}

// bootOnce is the command that makes entry grub's next boot entry, once.
func (g grubBoot) bootOnce(entry string) []string { return []string{"grub-reboot", entry} }

// undo are the commands that leave no trace once the machine runs its own
// kernel again: grub's next_entry cleared, the package purged.
func (g grubBoot) undo() [][]string {
	cmds := [][]string{{"grub-editenv", "-", "unset", "next_entry"}}
	if !g.installed {
		cmds = append(cmds, []string{"dpkg", "--purge", g.pkg})
	}
	return cmds
}

var (
	grubTitle = regexp.MustCompile(`^\s*(menuentry|submenu)\s+'([^']*)'`)
	grubID    = regexp.MustCompile(`\$menuentry_id_option\s+'([^']+)'`)
)

// grubEntry finds in cfg, a grub.cfg made by update-grub, the entry that
// boots release (not its recovery mode), as grub-reboot names it: its id,
// after the id of its submenu and ">" when it is in one.
func grubEntry(cfg, release string) (string, error) {
	type block struct{ kind, id string }
	var stack []block
	want := "Linux " + release
	for _, line := range strings.Split(cfg, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "}" {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if !strings.HasSuffix(trimmed, "{") {
			continue
		}
		m := grubTitle.FindStringSubmatch(line)
		if m == nil {
			stack = append(stack, block{}) // a function or another block
			continue
		}
		id := ""
		if i := grubID.FindStringSubmatch(line); i != nil {
			id = i[1]
		}
		title := m[2]
		if m[1] == "menuentry" && id != "" && strings.HasSuffix(title, want) {
			path := id
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].kind == "submenu" {
					path = stack[i].id + ">" + path
				}
			}
			return path, nil
		}
		stack = append(stack, block{kind: m[1], id: id})
	}
	return "", fmt.Errorf("grub.cfg has no menu entry for Linux %s", release)
}

// debField reads a control field of a .deb on this machine.
func debField(deb, field string) (string, error) {
	out, err := exec.Command("dpkg-deb", "-f", deb, field).Output()
	if err != nil {
		return "", fmt.Errorf("dpkg-deb -f %s %s: %w", deb, field, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// hasGrubDpkg reports whether the host is a Debian machine booting with
// grub: dpkg and grub-reboot are there.
func (h *Host) hasGrubDpkg(t testing.TB) bool {
	t.Helper()
	j := h.Run(t, "command -v dpkg >/dev/null && command -v grub-reboot >/dev/null && test -f /boot/grub/grub.cfg",
		ExitCodes(0, 1, 127), Desc("probe dpkg and grub"))
	return j.Result().ExitCode == 0
}

// installKernelGrub installs the kernel package deb (on this machine) on
// the host and makes it grub's next boot entry, once.
func (h *Host) installKernelGrub(t testing.TB, deb, release, before string) {
	t.Helper()
	pkg, err := debField(deb, "Package")
	if err == nil {
		err = checkDebPackage(deb, pkg)
	}
	if err != nil {
		t.Fatalf("%s: InstallKernel: %v", h.name, err)
	}
	g := grubBoot{pkg: pkg, release: release}
	status := h.RunArgv(t, g.query(), ExitCodes(0, 1), Desc("is "+pkg+" installed"))
	g.installed = strings.Contains(status.Result().Stdout, "install ok installed")
	dir := h.TempDir(t)
	g.deb = dir + "/kernel.deb"
	h.PutFile(t, deb, g.deb)
	t.Cleanup(func() { h.kernelBackGrub(t, g, before) })
	if cmd := g.install(); cmd != nil {
		h.RunArgv(t, cmd, Env(dpkgEnv...), Timeout(15*time.Minute), Desc("install "+pkg))
	}
	entry, err := grubEntry(h.Output(t, "cat /boot/grub/grub.cfg", Desc("read grub.cfg")), release)
	if err != nil {
		t.Fatalf("%s: InstallKernel %s: %v", h.name, pkg, err)
	}
	h.RunArgv(t, g.bootOnce(entry), Desc("boot "+release+" once"))
	h.s.state(t).logger().Info("kernel is grub's next entry", "host", h.name, "release", release, "entry", entry)
}

// kernelBackGrub puts a grub machine back on its own kernel: it reboots it
// into that kernel if it runs another, then clears next_entry and purges
// the package it installed.
func (h *Host) kernelBackGrub(t testing.TB, g grubBoot, before string) {
	t.Helper()
	hello, err := h.waitUp(time.Now().Add(time.Minute))
	if err != nil {
		t.Errorf("%s: InstallKernel cleanup: the agent does not answer: %v", h.name, err)
		return
	}
	if hello.Kernel != before {
		entry, err := grubEntry(h.Output(t, "cat /boot/grub/grub.cfg", Desc("read grub.cfg")), before)
		if err != nil {
			t.Errorf("%s: InstallKernel cleanup: %v", h.name, err)
			return
		}
		h.RunArgv(t, g.bootOnce(entry), Desc("boot "+before+" once"))
		if !h.rebootBack(t, before) {
			return
		}
	}
	for _, cmd := range g.undo() {
		h.RunArgv(t, cmd, Env(dpkgEnv...), Timeout(15*time.Minute), Desc("undo InstallKernel "+g.release))
	}
}
