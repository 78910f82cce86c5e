package deploy

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]Target{
		"root@198.18.0.5":           {"root", "198.18.0.5", 22},
		"root@198.18.0.5:2222":      {"root", "198.18.0.5", 2222},
		"admin@m1.lab.example":      {"admin", "m1.lab.example", 22},
		"root@[2001:db8::5]":        {"root", "2001:db8::5", 22},
		"root@2001:db8::5":          {"root", "2001:db8::5", 22},
		"root@[2001:db8::5]:2222":   {"root", "2001:db8::5", 2222},
		"root@m1.lab.example:22222": {"root", "m1.lab.example", 22222},
	} {
		got, err := ParseTarget(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	assert.Equal(t, "root@[2001:db8::5]:2222", Target{"root", "2001:db8::5", 2222}.String())
	assert.Equal(t, "root@[2001:db8::5]", Target{"root", "2001:db8::5", 22}.String())
	for in, want := range map[string]string{
		"198.18.0.5":               "want user@host",
		"@198.18.0.5":              "want user@host",
		"root@":                    `bad host ""`,
		"root@198.18.0.5:0":        `bad port "0"`,
		"root@198.18.0.5:ssh":      `bad port "ssh"`,
		"root@m1:2:3":              "write an IPv6 address as user@[addr]",
		"root@m1/../etc":           `bad host "m1/../etc"`,
		"root@m1 ; reboot":         `bad host`,
		"root@[2001:db8::5]:99999": `bad port "99999"`,
	} {
		_, err := ParseTarget(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
		assert.Contains(t, err.Error(), in, "the error names the input")
	}
}

func TestArch(t *testing.T) {
	for machine, want := range map[string]string{"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"} {
		got, err := unameGOARCH(machine)
		require.NoError(t, err)
		assert.Equal(t, want, got, machine)
	}
	_, err := unameGOARCH("pdp11")
	assert.ErrorContains(t, err, `machine type "pdp11" (uname -m)`)

	exe, err := os.Executable()
	require.NoError(t, err)
	got, err := binaryGOARCH(exe)
	require.NoError(t, err)
	assert.Equal(t, runtime.GOARCH, got, "the test binary's architecture")

	other := map[string]string{"amd64": "aarch64", "arm64": "x86_64"}[runtime.GOARCH]
	if other == "" {
		t.Skipf("the mismatch check is written for amd64 and arm64, not %s: not supported", runtime.GOARCH)
	}
	err = checkArch("m1", other, exe)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "host m1 is "+other)
	assert.Contains(t, err.Error(), "agent binary "+exe+" is for "+runtime.GOARCH)
	assert.Contains(t, err.Error(), "--agent-binary")
	assert.NoError(t, checkArch("m1", map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH], exe))

	// A dynamically linked process has the dynamic loader mapped.
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	assert.Equal(t, strings.Contains(string(maps), "/ld-linux"), dynamicallyLinked(exe), "the test binary is dynamically linked")

	script := filepath.Join(t.TempDir(), "lnst-agent")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755))
	_, err = binaryGOARCH(script)
	assert.ErrorContains(t, err, "agent binary "+script+": not a Linux executable")
}

func TestLayout(t *testing.T) {
	require.NoError(t, defaultLayout.check())
	assert.Equal(t, "/etc/systemd/system/multi-user.target.wants/lnst-agent.service", defaultLayout.WantsLink())
	unit := defaultLayout.UnitText(7000)
	assert.Contains(t, unit, "\nExecStart=/usr/local/bin/lnst-agent serve --listen :7000 --ca /etc/lnst-agent/ca.pem --cert /etc/lnst-agent/agent.pem --key /etc/lnst-agent/agent-key.pem --journal /var/lib/lnst-agent/journal\n")
	assert.Contains(t, unit, "\nStateDirectory=lnst-agent\n")
	assert.Contains(t, unit, "\nKillMode=mixed\n")
	assert.Contains(t, unit, "\n[Install]\nWantedBy=multi-user.target\n")

	for _, p := range []string{"relative/x", "/", "/x", "/usr/local/../bin/x", "/opt/with space/x", "/opt/$HOME/x"} {
		l := defaultLayout
		l.Binary = p
		assert.ErrorContains(t, l.check(), "layout path "+`"`+p+`"`, p)
	}
}

// testHostKey is a fresh ed25519 public key.
func testHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	k, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return k
}

func TestHostKeyChecker(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ssh", "known_hosts")
	remote := &net.TCPAddr{IP: net.ParseIP("198.18.0.5"), Port: 22}
	key, other := testHostKey(t), testHostKey(t)

	_, err := newHostKeyChecker(file, false, nil)
	assert.ErrorContains(t, err, "known_hosts file "+file+": missing: give --known-hosts FILE, or --accept-new-host-key")

	// Missing, with accept-new: created with the key.
	var log strings.Builder
	hk, err := newHostKeyChecker(file, true, &log)
	require.NoError(t, err)
	assert.Nil(t, hk.algorithms("198.18.0.5:22", remote), "no known key: the default algorithms")
	require.NoError(t, hk.callback("198.18.0.5:22", remote, key))
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "198.18.0.5 "+string(ssh.MarshalAuthorizedKey(key)), string(data))
	assert.Contains(t, log.String(), "added host key ssh-ed25519 "+ssh.FingerprintSHA256(key)+" of 198.18.0.5:22 to "+file)
	fi, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// Known: accepted; the known key's algorithm is asked for.
	hk, err = newHostKeyChecker(file, false, nil)
	require.NoError(t, err)
	require.NoError(t, hk.callback("198.18.0.5:22", remote, key))
	assert.Equal(t, []string{ssh.KeyAlgoED25519}, hk.algorithms("198.18.0.5:22", remote))

	// Changed: refused, even with accept-new, naming the file and line.
	hk, err = newHostKeyChecker(file, true, nil)
	require.NoError(t, err)
	err = hk.callback("198.18.0.5:22", remote, other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HOST KEY MISMATCH: 198.18.0.5:22 offers ssh-ed25519 "+ssh.FingerprintSHA256(other)+", but known_hosts file "+file+" line 1 has ssh-ed25519 "+ssh.FingerprintSHA256(key))

	// Unknown host, without accept-new: refused, naming host and file.
	hk, err = newHostKeyChecker(file, false, nil)
	require.NoError(t, err)
	remote6 := &net.TCPAddr{IP: net.ParseIP("198.18.0.6"), Port: 22}
	err = hk.callback("198.18.0.6:22", remote6, other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "host 198.18.0.6:22 is not in known_hosts file "+file+" (it offers ssh-ed25519 "+ssh.FingerprintSHA256(other)+")")
	assert.Contains(t, err.Error(), "--accept-new-host-key")

	// A file without a final newline gets one before the added line.
	require.NoError(t, os.WriteFile(file, []byte("# no newline"), 0o600))
	require.NoError(t, appendKnownHost(file, "198.18.0.7:2222", key))
	data, err = os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "# no newline\n[198.18.0.7]:2222 "+string(ssh.MarshalAuthorizedKey(key)), string(data))
}

func TestAuthMethodErrors(t *testing.T) {
	_, _, err := authMethod(SSHConfig{Identity: filepath.Join(t.TempDir(), "nope")})
	assert.ErrorContains(t, err, "ssh identity file")
	notKey := filepath.Join(t.TempDir(), "id")
	require.NoError(t, os.WriteFile(notKey, []byte("hello\n"), 0o600))
	_, _, err = authMethod(SSHConfig{Identity: notKey})
	assert.ErrorContains(t, err, "ssh identity file "+notKey+": not a private key")

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	require.NoError(t, err)
	locked := filepath.Join(t.TempDir(), "id_locked")
	require.NoError(t, os.WriteFile(locked, pemEncode(block), 0o600))
	_, _, err = authMethod(SSHConfig{Identity: locked})
	assert.ErrorContains(t, err, "the key has a passphrase: load it into the SSH agent (ssh-add "+locked+")")

	t.Setenv("SSH_AUTH_SOCK", "")
	_, _, err = authMethod(SSHConfig{})
	assert.ErrorContains(t, err, "no key: give --identity FILE, or run an SSH agent (SSH_AUTH_SOCK is not set)")
	_, _, err = authMethod(SSHConfig{AgentSocket: filepath.Join(t.TempDir(), "agent.sock")})
	assert.ErrorContains(t, err, "agent.sock (SSH_AUTH_SOCK)")
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
