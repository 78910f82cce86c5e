package pool

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestExplainUserNS(t *testing.T) {
	files := func(m map[string]string) func(string) (string, error) {
		return func(p string) (string, error) {
			if v, ok := m[p]; ok {
				return v, nil
			}
			return "", os.ErrNotExist
		}
	}
	err := explainUserNS(syscall.EPERM, files(map[string]string{"/proc/sys/kernel/unprivileged_userns_clone": "0"}))
	assert.ErrorIs(t, err, syscall.EPERM)
	assert.Contains(t, err.Error(), "kernel.unprivileged_userns_clone = 0")
	assert.Contains(t, err.Error(), "sysctl -w kernel.unprivileged_userns_clone=1")

	err = explainUserNS(syscall.EACCES, files(map[string]string{
		"/proc/sys/kernel/unprivileged_userns_clone":             "1",
		"/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1",
	}))
	assert.Contains(t, err.Error(), "kernel.apparmor_restrict_unprivileged_userns = 1")

	err = explainUserNS(syscall.ENOSPC, files(map[string]string{"/proc/sys/user/max_user_namespaces": "0"}))
	assert.Contains(t, err.Error(), "user.max_user_namespaces = 0")

	err = explainUserNS(syscall.EPERM, files(nil))
	assert.Contains(t, err.Error(), "could not create a user namespace")

	other := errors.New("exec format error")
	assert.Equal(t, other, explainUserNS(other, files(nil)))
}
