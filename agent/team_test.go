package agent

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestTeamdArgs(t *testing.T) {
	argv, err := teamdArgs(devices.Team{Name: "team0", Runner: "activebackup"}, "/tmp/x/team0.pid")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"teamd", "-t", "team0", "-c", "", "-p", "/tmp/x/team0.pid"}
	if len(argv) != len(want) {
		t.Fatalf("argv = %q, want the shape %q", argv, want)
	}
	for i, w := range want {
		if w != "" && argv[i] != w {
			t.Errorf("argv[%d] = %q, want %q (argv %q)", i, argv[i], w, argv)
		}
	}
	var cfg struct {
		Device    string `json:"device"`
		Runner    struct{ Name string }
		LinkWatch struct{ Name string } `json:"link_watch"`
	}
	if err := json.Unmarshal([]byte(argv[4]), &cfg); err != nil {
		t.Fatalf("config %q: %v", argv[4], err)
	}
	if cfg.Device != "team0" || cfg.Runner.Name != "activebackup" || cfg.LinkWatch.Name != "ethtool" {
		t.Errorf("config = %+v from %s", cfg, argv[4])
	}
}

func TestTeamdConfigDefaults(t *testing.T) {
	argv, err := teamdArgs(devices.Team{Name: "t1"}, "/p")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(argv[4]), &cfg); err != nil {
		t.Fatal(err)
	}
	if got := cfg["runner"].(map[string]any)["name"]; got != "roundrobin" {
		t.Errorf("runner = %v, want roundrobin", got)
	}
	if got := cfg["link_watch"].(map[string]any)["name"]; got != "ethtool" {
		t.Errorf("link_watch = %v, want ethtool", got)
	}
}

func TestTeamdArgsInvalid(t *testing.T) {
	for _, tc := range []struct {
		team devices.Team
		pid  string
	}{
		{devices.Team{Name: ""}, "/p"},
		{devices.Team{Name: "a/b"}, "/p"},
		{devices.Team{Name: "averyveryverylongname"}, "/p"},
		{devices.Team{Name: "team0", Runner: "nope"}, "/p"},
		{devices.Team{Name: "team0", LinkWatch: "nope"}, "/p"},
		{devices.Team{Name: "team0"}, ""},
	} {
		if argv, err := teamdArgs(tc.team, tc.pid); err == nil {
			t.Errorf("teamdArgs(%+v, %q) = %q, want an error", tc.team, tc.pid, argv)
		}
	}
}

func TestCreateUndo(t *testing.T) {
	if got := createUndo(devices.Team{Name: "t"}); got != opStopTeamd {
		t.Errorf("createUndo(Team) = %q, want %q", got, opStopTeamd)
	}
	if got := createUndo(devices.Bridge{Name: "b"}); got != opDeleteLink {
		t.Errorf("createUndo(Bridge) = %q, want %q", got, opDeleteLink)
	}
	u := undo{Op: opStopTeamd, Link: "team0", Host: "h1"}
	if s := u.String(); !strings.Contains(s, "teamd") || !strings.Contains(s, "team0") {
		t.Errorf("String() = %q", s)
	}
}

func TestTail(t *testing.T) {
	var tl tail
	if got := tl.String(); got != "(no output)" {
		t.Errorf("empty tail = %q", got)
	}
	tl.Write([]byte(strings.Repeat("x", teamdTailSize)))
	tl.Write([]byte("line one\nend\n"))
	got := tl.String()
	if !strings.HasSuffix(got, "line one; end") || len(tl.buf) != teamdTailSize {
		t.Errorf("tail keeps %d bytes ending %q", len(tl.buf), got[max(0, len(got)-20):])
	}
}

// fakeTeamd stands in for teamd where the kernel lacks the team kind: it
// makes a veth of the team's name, and serves its control socket as teamd
// does (removing the socket it finds there), answering with its network
// namespace.
const fakeTeamd = `#!/usr/bin/env python3
import os, signal, socket, subprocess, sys
args = sys.argv[1:]
name, pidfile = args[args.index("-t") + 1], args[args.index("-p") + 1]
open(pidfile, "w").write(str(os.getpid()))
subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True)
path = "/run/teamd/" + name + ".sock"
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen()
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
me = os.readlink("/proc/self/ns/net").encode()
while True:
    c, _ = s.accept()
    c.sendall(me)
    c.close()
`

// testFakeTool puts an executable script named name first in PATH, for
// the rest of the test.
func testFakeTool(t *testing.T, name, script string) {
	t.Helper()
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755))
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

// TestTeamSameNameTwoHosts makes a team of one name on two namespace
// hosts: each host's teamd control socket is its own (a private
// /run/teamd), so a client on each host reaches its own teamd. The kernel
// here lacks the team kind, so a fake teamd makes the device and the
// socket; what is tested is where the socket lives.
func TestTeamSameNameTwoHosts(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("requires root: makes network and mount namespaces")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("requires python3 for the fake teamd")
	}
	testFakeTool(t, "teamd", fakeTeamd)
	_, c := testServerOpts(t, Options{Lab: true})
	ctx := testCtx(t)
	kind, data, err := devices.Marshal(devices.Team{Name: "team0"})
	require.NoError(t, err)
	client := `python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect("/run/teamd/team0.sock"); print(s.recv(100).decode())'`
	for _, h := range []string{"h1", "h2"} {
		testHost(t, c, h)
		_, err := c.CreateLink(ctx, &pb.CreateLinkRequest{Host: h, Group: "g", Spec: &pb.CreateLinkRequest_Generic{Generic: &pb.GenericSpec{Kind: kind, Json: data}}})
		require.NoError(t, err, "team0 on %s", h)
	}
	for _, h := range []string{"h1", "h2"} {
		own := testSh(t, c, h, "readlink /proc/self/ns/net")
		assert.Equal(t, own, testSh(t, c, h, client), "the teamd %s's client reaches is its own", h)
	}
	_, err = os.Stat("/run/teamd/team0.sock")
	assert.ErrorIs(t, err, os.ErrNotExist, "the agent's own /run/teamd is untouched")

	_, err = c.Restore(ctx, &pb.RestoreRequest{Group: "g"})
	require.NoError(t, err)
	for _, h := range []string{"h1", "h2"} {
		assert.NotContains(t, testLinkNames(t, c, h), "team0", "the undo stopped teamd and removed team0 on %s", h)
	}
}

func TestMountPoints(t *testing.T) {
	f := filepath.Join(t.TempDir(), "mountinfo")
	require.NoError(t, os.WriteFile(f, []byte(
		"22 1 0:21 / /run rw,nosuid shared:5 - tmpfs tmpfs rw\n"+
			"99 22 0:50 / /run/teamd rw - tmpfs tmpfs rw\n"+
			"100 1 0:51 / /mnt/a\\040b rw - tmpfs tmpfs rw\n"), 0o644))
	got, err := mountPoints(f)
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"/run": true, "/run/teamd": true, "/mnt/a b": true}, got)
	_, err = mountPoints(filepath.Join(t.TempDir(), "none"))
	assert.Error(t, err)
}
