package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testEntry = pool.HostEntry{
	Name:    "m2",
	Agent:   "198.18.0.12:7000",
	TLS:     pool.TLSFiles{CA: "certs/ca.pem", Cert: "certs/ctl.pem", Key: "certs/ctl-key.pem"},
	Arch:    "x86_64",
	Comment: "lnst-agent install root@198.18.0.12",
}

const testEntryText = `  # lnst-agent install root@198.18.0.12
  - name: m2
    agent: 198.18.0.12:7000
    tls: {ca: certs/ca.pem, cert: certs/ctl.pem, key: certs/ctl-key.pem}
    arch: x86_64
`

func TestAppendAndRemoveHost(t *testing.T) {
	for _, tc := range []struct {
		name, before, after string
	}{{
		name:   "new file",
		before: "",
		after:  newPoolHeader + testEntryText,
	}, {
		name: "comments kept, the last one after the entry",
		before: "# my lab\nhosts:\n  - name: m1 # the first\n    agent: unix:///run/m1.sock\n" +
			"    # the end of m1\n\n# the end of the file\n",
		after: "# my lab\nhosts:\n  - name: m1 # the first\n    agent: unix:///run/m1.sock\n" +
			"    # the end of m1\n" + testEntryText + "\n# the end of the file\n",
	}, {
		name:   "list at indent 0, no final newline",
		before: "hosts:\n- name: m1\n  agent: unix:///run/m1.sock",
		after: "hosts:\n- name: m1\n  agent: unix:///run/m1.sock\n" +
			"# lnst-agent install root@198.18.0.12\n- name: m2\n  agent: 198.18.0.12:7000\n" +
			"  tls: {ca: certs/ca.pem, cert: certs/ctl.pem, key: certs/ctl-key.pem}\n  arch: x86_64\n",
	}, {
		name:   "dash alone on its line",
		before: "hosts:\n  -\n    name: m1\n    agent: unix:///run/m1.sock\n",
		after:  "hosts:\n  -\n    name: m1\n    agent: unix:///run/m1.sock\n" + testEntryText,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := appendHost("lab.yaml", []byte(tc.before), testEntry)
			require.NoError(t, err)
			assert.Equal(t, tc.after, string(out))

			back, found, left, err := removeHost("lab.yaml", out, "m2")
			require.NoError(t, err)
			assert.True(t, found)
			if tc.before == "" {
				assert.False(t, left)
				assert.True(t, onlyHeader(back), "what is left of a file install made: %q", back)
				return
			}
			assert.True(t, left)
			want := tc.before
			if !strings.HasSuffix(want, "\n") {
				want += "\n"
			}
			assert.Equal(t, want, string(back))
		})
	}
}

func TestRemoveHostInTheMiddle(t *testing.T) {
	data := "hosts:\n  - name: m1\n    agent: unix:///run/m1.sock\n" + testEntryText +
		"  # m3 is the last\n  - name: m3\n    agent: unix:///run/m3.sock\n"
	out, found, left, err := removeHost("lab.yaml", []byte(data), "m2")
	require.NoError(t, err)
	assert.True(t, found)
	assert.True(t, left)
	assert.Equal(t, "hosts:\n  - name: m1\n    agent: unix:///run/m1.sock\n  # m3 is the last\n  - name: m3\n    agent: unix:///run/m3.sock\n", string(out))

	out, found, _, err = removeHost("lab.yaml", out, "nope")
	require.NoError(t, err)
	assert.False(t, found)
	assert.Contains(t, string(out), "name: m3")
}

func TestRemoveOnlyHostKeepsUserText(t *testing.T) {
	data := "# my own notes\nhosts:\n" + testEntryText
	out, found, left, err := removeHost("lab.yaml", []byte(data), "m2")
	require.NoError(t, err)
	assert.True(t, found)
	assert.False(t, left)
	assert.Equal(t, "# my own notes\n", string(out))
	assert.False(t, onlyHeader(out), "the user's notes are not install's header")
}

func TestAppendHostErrors(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"flow list", "hosts: [{name: m1, agent: \"unix:///run/m1.sock\"}]\n", "lab.yaml:1: hosts is a flow list ([...]): write it as a block list"},
		{"broken file", "hosts:\n  - name: m1\n", "fix it before adding a host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := appendHost("lab.yaml", []byte(tc.data), testEntry)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	bad := testEntry
	bad.Name = "two words"
	_, err := appendHost("lab.yaml", nil, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `the host to add is not valid`)
	assert.Contains(t, err.Error(), `name "two words": has white space`)
}

func TestAppendHostNotes(t *testing.T) {
	e := testEntry
	e.Notes = ifaceNotes([]string{"enp3s0 52:54:00:12:34:56 virtio_net", "enp4s0 52:54:00:12:34:57"})
	out, err := appendHost("lab.yaml", nil, e)
	require.NoError(t, err)
	assert.Contains(t, string(out), "    arch: x86_64\n"+
		"    # interfaces found on the host: uncomment those cabled for tests, with their network\n"+
		"    # interfaces:\n"+
		"    #   - {name: enp3s0, hwaddr: \"52:54:00:12:34:56\", driver: virtio_net, network: NET}\n"+
		"    #   - {name: enp4s0, hwaddr: \"52:54:00:12:34:57\", network: NET}\n")
	// Uncommented, with a network, the notes are a valid pool.
	text := strings.ReplaceAll(string(out), "    #   -", "      -")
	text = strings.ReplaceAll(text, "    # interfaces:", "    interfaces:")
	p, err := pool.Parse("lab.yaml", []byte(text))
	require.NoError(t, err)
	require.Len(t, p.Hosts[0].Ifaces, 2)
	assert.Equal(t, "virtio_net", p.Hosts[0].Ifaces[0].Driver)
}

// TestForgetKeepsTheCA refuses to forget a host named "ca": its
// certificate files would be the CA's (ca.pem, ca-key.pem), and the pool
// entry and the CA stay as they were.
func TestForgetKeepsTheCA(t *testing.T) {
	dir := t.TempDir()
	poolFile, certs := filepath.Join(dir, "lab.yaml"), filepath.Join(dir, "certs")
	const entry = "hosts:\n  - name: ca\n    agent: ca:7000\n" +
		"    tls: {ca: certs/ca.pem, cert: certs/ctl.pem, key: certs/ctl-key.pem}\n"
	require.NoError(t, os.WriteFile(poolFile, []byte(entry), 0o644))
	require.NoError(t, os.Mkdir(certs, 0o700))
	for _, f := range []string{"ca.pem", "ca-key.pem", "ctl.pem", "ctl-key.pem"} {
		require.NoError(t, os.WriteFile(filepath.Join(certs, f), []byte("x"), 0o600))
	}
	err := Forget(Target{User: "root", Host: "ca", Port: 22}, UninstallOptions{Pool: poolFile, CertsDir: certs})
	require.ErrorContains(t, err, `root@ca: its certificate in `+certs+`: name "ca" is the CA's`)
	for _, f := range []string{"ca.pem", "ca-key.pem"} {
		require.FileExists(t, filepath.Join(certs, f))
	}
	b, err := os.ReadFile(poolFile)
	require.NoError(t, err)
	require.Equal(t, entry, string(b))
	require.ErrorContains(t, removeHostCerts(certs, "ca"), `name "ca" is the CA's`)
	require.ErrorContains(t, removeHostCerts(certs, "../x"), "slash")
	require.FileExists(t, filepath.Join(certs, "ca.pem"))
}
