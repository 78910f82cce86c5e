package pool

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// userNS makes the process attr starts run as root in a new user
// namespace, with the caller's uid and gid mapped to 0.
func userNS(attr *syscall.SysProcAttr) {
	attr.Cloneflags |= syscall.CLONE_NEWUSER
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	attr.GidMappingsEnableSetgroups = false
}

// userNSSettings are the machine settings that can forbid unprivileged
// user namespaces, with the value that does, and how to allow them.
var userNSSettings = []struct {
	path, forbids, fix string
}{
	{"/proc/sys/kernel/unprivileged_userns_clone", "0", "sysctl -w kernel.unprivileged_userns_clone=1"},
	{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1", "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile allowing userns for the test binary)"},
	{"/proc/sys/user/max_user_namespaces", "0", "sysctl -w user.max_user_namespaces=15000"},
}

// userNSError explains why a user namespace could not be made, naming
// the machine setting that forbids it and the fix.
func userNSError(err error) error {
	return explainUserNS(err, func(p string) (string, error) {
		b, err := os.ReadFile(p)
		return strings.TrimSpace(string(b)), err
	})
}

func explainUserNS(err error, read func(string) (string, error)) error {
	if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	for _, s := range userNSSettings {
		if v, rerr := read(s.path); rerr == nil && v == s.forbids {
			name := strings.ReplaceAll(strings.TrimPrefix(s.path, "/proc/sys/"), "/", ".")
			return fmt.Errorf("%w: this machine forbids unprivileged user namespaces (%s = %s); as root, run: %s; or run the tests as root", err, name, v, s.fix)
		}
	}
	return fmt.Errorf("%w: could not create a user namespace (are unprivileged user namespaces allowed here? see kernel.unprivileged_userns_clone, kernel.apparmor_restrict_unprivileged_userns, user.max_user_namespaces); or run the tests as root", err)
}
