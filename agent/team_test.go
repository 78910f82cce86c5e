package agent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lnst-go/lnst/devices"
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
