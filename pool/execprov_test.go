package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// provYAML is a pool file with one exec provisioner and no hosts.
const provYAML = `provisioners:
  - name: cloud
    reserve: ./reserve.sh
    release: ./release.sh
    max: 2
    timeout: 90s
    idle: 5s
    insecure: true
    arch: x86_64
    params: {zone: z1}
    interfaces:
      - {name: eth0, network: lan1, driver: virtio_net}
`

func TestParseProvisioners(t *testing.T) {
	p, err := Parse("/etc/lnst/lab.yaml", []byte(provYAML))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hosts) != 0 || len(p.Provisioners) != 1 {
		t.Fatalf("hosts %d, provisioners %d; want 0 and 1", len(p.Hosts), len(p.Provisioners))
	}
	e := p.Provisioners[0]
	want := ExecSpec{Name: "cloud", Reserve: "./reserve.sh", Release: "./release.sh", Max: 2, Timeout: 90 * time.Second, Idle: 5 * time.Second,
		Insecure: true, Arch: "x86_64", Params: map[string]string{"zone": "z1"}, Dir: "/etc/lnst", Line: 2,
		Ifaces: []Iface{{Name: "eth0", Net: "lan1", Driver: "virtio_net", Line: 12}}}
	if fmt.Sprintf("%+v", e) != fmt.Sprintf("%+v", want) {
		t.Errorf("provisioner\n%+v\nwant\n%+v", e, want)
	}
	if h := e.Template(2); h.Name != "cloud#2" || h.Ifaces[0].Net != "lan1" || h.Arch != "x86_64" {
		t.Errorf("Template(2) = %+v", h)
	}
	// Beside hosts, with tls relative to the pool file.
	both := hostsYAML + "provisioners:\n  - {name: c, reserve: r, release: x, max: 1, tls: {ca: ca.pem}}\n"
	p, err = Parse("/etc/lnst/lab.yaml", []byte(both))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hosts) != 1 || p.Provisioners[0].TLS.CA != "/etc/lnst/ca.pem" {
		t.Errorf("hosts %d, provisioner tls %+v", len(p.Hosts), p.Provisioners[0].TLS)
	}
}

func TestParseProvisionerErrors(t *testing.T) {
	const head = "provisioners:\n  - name: c\n"
	const cmds = "    reserve: r\n    release: x\n"
	for _, tc := range []struct{ name, data, want string }{
		{"not a list", "provisioners: {a: b}\n", "lab.yaml:1: provisioners: want a list of provisioners, not a mapping"},
		{"unknown field", head + cmds + "    max: 1\n    colour: red\n", `lab.yaml:6: provisioner "c": unknown field "colour" (known: name, reserve, release, alive, max, timeout, idle, libvirt, tls, insecure, insecure_any_address, arch, params, interfaces, allow)`},
		{"missing name", "provisioners:\n  - reserve: r\n    release: x\n    max: 1\n", `lab.yaml:2: provisioner 1: missing name`},
		{"bad name", "provisioners:\n  - name: a/b\n" + cmds + "    max: 1\n", `lab.yaml:2: provisioner "a/b": name "a/b": want letters`},
		{"missing reserve", head + "    release: x\n    max: 1\n", `lab.yaml:2: provisioner "c": missing reserve: the command that reserves a machine`},
		{"empty release", head + "    reserve: r\n    release: ' '\n    max: 1\n", `lab.yaml:4: provisioner "c": missing release`},
		{"missing max", head + cmds, `lab.yaml:2: provisioner "c": max 0: want at least 1 machine`},
		{"max zero", head + cmds + "    max: 0\n", `lab.yaml:5: provisioner "c": max 0: want at least 1 machine`},
		{"max not a number", head + cmds + "    max: many\n", `lab.yaml:5: provisioner "c": max: want a number of machines, not "many"`},
		{"bad timeout", head + cmds + "    max: 1\n    timeout: soon\n", `lab.yaml:6: provisioner "c": timeout: "soon" is not a duration such as 90s or 10m`},
		{"negative idle", head + cmds + "    max: 1\n    idle: -1s\n", `lab.yaml:6: provisioner "c": idle -1s: must not be negative`},
		{"tls and insecure", head + cmds + "    max: 1\n    insecure: true\n    tls: {ca: a}\n", `lab.yaml:7: provisioner "c": tls and insecure: true contradict each other`},
		{"bad iface", head + cmds + "    max: 1\n    interfaces:\n      - {name: eth0, hwaddr: zz}\n", `lab.yaml:7: provisioner "c": interface "eth0": hwaddr "zz": not a MAC address`},
		{"iface twice", head + cmds + "    max: 1\n    interfaces:\n      - {name: eth0}\n      - {name: eth0}\n", `lab.yaml:8: provisioner "c": interface "eth0": name used twice on the host (first at line 7)`},
		{"name twice", head + cmds + "    max: 1\n" + "  - name: c\n" + cmds + "    max: 1\n", `lab.yaml:6: provisioner name "c" used twice (first at line 2)`},
		{"host clash", "hosts:\n  - name: c#2\n    agent: unix:///a\n" + head + cmds + "    max: 2\n", `lab.yaml:2: host name "c#2" is the name of a machine of provisioner "c" (line 5): rename one`},
		{"no hosts nor provisioners", "provisioners: []\n", "lab.yaml:1: no hosts: the pool file needs a list of hosts or provisioners"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("lab.yaml", []byte(tc.data))
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FileError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %q\nwant   %q", err, tc.want)
			}
		})
	}
}

// fakeService is a directory with a reserve, release and alive script:
// held/ has a file per reservation held, released/ one per reservation
// released; LNST_FAKE_MODE picks how reserve behaves.
type fakeService struct {
	dir  string
	spec ExecSpec
}

const fakeReserve = `#!/bin/sh
# A fake external service. id= is printed only once held/ records it, and
# a SIGTERM before that undoes the reservation.
n=$(mkdir -p held released started; ls held released | wc -l)
id="r$$"
trap 'rm -f held/$id; exit 143' TERM
touch held/$id
echo "id=$id"
trap - TERM
case "$LNST_FAKE_MODE" in
ok) ;;
together) touch started/$id; i=0; while [ "$(ls started | wc -l)" -lt "$LNST_FAKE_N" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done ;;
hang) sleep 30 ;;
fail) echo "no capacity in zone z1" >&2; exit 3 ;;
noaddr) exit 0 ;;
tcp) echo "address=$LNST_FAKE_ADDR"; exit 0 ;;
esac
echo "log line that is not a key"
echo "address=unix://$PWD/$id.sock"
`

const fakeRelease = `#!/bin/sh
[ -n "$LNST_RESERVATION_ID" ] || { echo "no id" >&2; exit 1; }
rm -f "held/$LNST_RESERVATION_ID"
echo "$LNST_AGENT" > "released/$LNST_RESERVATION_ID"
`

func newFakeService(t *testing.T, mode string, max int) *fakeService {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"reserve.sh": fakeReserve, "release.sh": fakeRelease, "alive.sh": "#!/bin/sh\n[ -e held/$LNST_RESERVATION_ID ]\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("LNST_FAKE_MODE", mode)
	t.Setenv("LNST_FAKE_N", strconv.Itoa(max))
	return &fakeService{dir: dir, spec: ExecSpec{Name: "fake", Reserve: "./reserve.sh", Release: "./release.sh", Max: max, Timeout: 20 * time.Second, Dir: dir}}
}

// ls lists a directory of the service.
func (f *fakeService) ls(t *testing.T, sub string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.dir, sub))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestExecProvisionerReserveRelease(t *testing.T) {
	f := newFakeService(t, "ok", 2)
	f.spec.Alive = "./alive.sh"
	e := NewExecProvisioner(f.spec, nil)
	m, err := e.Reserve(context.Background(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Provisioner != "fake" || !strings.HasPrefix(m.ID, "r") || m.Host.Agent != "unix://"+f.dir+"/"+m.ID+".sock" {
		t.Errorf("machine %+v: want provisioner fake, an id r<pid> and the printed address", m)
	}
	if held := f.ls(t, "held"); len(held) != 1 || held[0] != m.ID {
		t.Errorf("held = %v, want [%s]", held, m.ID)
	}
	if err := e.Alive(context.Background(), m); err != nil {
		t.Errorf("Alive of a held machine: %v", err)
	}
	if err := e.Release(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := e.Release(context.Background(), m); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if held := f.ls(t, "held"); len(held) != 0 {
		t.Errorf("held after Release = %v", held)
	}
	got, _ := os.ReadFile(filepath.Join(f.dir, "released", m.ID))
	if strings.TrimSpace(string(got)) != m.Host.Agent {
		t.Errorf("release got LNST_AGENT=%q, want %q", got, m.Host.Agent)
	}
	if err := e.Alive(context.Background(), m); err == nil || !strings.Contains(err.Error(), "alive") {
		t.Errorf("Alive of a released machine = %v, want an error of the alive command", err)
	}
}

func TestExecProvisionerFailures(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"fail", `provisioner fake: reserve: reserve command "./reserve.sh": exit status 3; stderr: no capacity in zone z1 (reservation r`},
		{"noaddr", `provisioner fake: reserve: the reserve command printed no address= line`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			f := newFakeService(t, tc.mode, 1)
			var log bytes.Buffer
			e := NewExecProvisioner(f.spec, &syncWriter{w: &log})
			_, err := e.Reserve(context.Background(), Request{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(err.Error(), "released)") {
				t.Fatalf("err = %v\nwant one starting %q, saying the reservation was released", err, tc.want)
			}
			if held := f.ls(t, "held"); len(held) != 0 {
				t.Errorf("a failed reservation is still held: %v", held)
			}
			if len(f.ls(t, "released")) != 1 {
				t.Errorf("released = %v, want the failed reservation", f.ls(t, "released"))
			}
			if tc.mode == "fail" && !strings.Contains(log.String(), "fake reserve: no capacity") {
				t.Errorf("log = %q, want the command's stderr", log.String())
			}
			// The failed reservation gave its place back.
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			select {
			case e.held <- struct{}{}:
				<-e.held
			case <-ctx.Done():
				t.Error("the failed reservation still takes one of Max places")
			}
		})
	}
}

// TestExecProvisionerInsecure: insecure: true takes a reserved machine
// whose agent address is loopback; any other address is refused (and the
// reservation released) unless insecure_any_address says so.
func TestExecProvisionerInsecure(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		anyAddr bool
		want    string
	}{
		{"127.0.0.1:7000", false, ""},
		{"[::1]:7000", false, ""},
		{"198.18.0.7:7000", false, `provisioner fake: reserve: insecure: true is for agents on loopback addresses (127.0.0.0/8, ::1, localhost) and unix sockets; agent "198.18.0.7:7000" is not one`},
		{"[2001:db8::7]:7000", false, `agent "[2001:db8::7]:7000" is not one`},
		{"198.18.0.7:7000", true, ""},
	} {
		f := newFakeService(t, "tcp", 1)
		t.Setenv("LNST_FAKE_ADDR", tc.addr)
		f.spec.Insecure, f.spec.InsecureAnyAddress = !tc.anyAddr, tc.anyAddr
		m, err := NewExecProvisioner(f.spec, nil).Reserve(context.Background(), Request{})
		if tc.want == "" {
			if err != nil || m.Host.Agent != tc.addr {
				t.Errorf("%s: Reserve = %+v, %v; want the machine", tc.addr, m, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Reserve error = %v, want %q", tc.addr, err, tc.want)
		}
		if held := f.ls(t, "held"); len(held) != 0 {
			t.Errorf("%s: the refused reservation is still held: %v", tc.addr, held)
		}
	}
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestExecProvisionerCancel cancels a reservation in the middle of its
// command: Reserve returns, the reservation is released, and no process
// of the command is left.
func TestExecProvisionerCancel(t *testing.T) {
	f := newFakeService(t, "hang", 1)
	marker := "LNST_EXECPROV_TEST=" + filepath.Base(f.dir)
	t.Setenv("LNST_EXECPROV_TEST", filepath.Base(f.dir))
	e := NewExecProvisioner(f.spec, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.Reserve(ctx, Request{})
		done <- err
	}()
	waitFor(t, 10*time.Second, "the reservation to be held", func() bool { return len(f.ls(t, "held")) == 1 })
	waitFor(t, 10*time.Second, "the reserve command to sleep", func() bool {
		for _, pid := range processesWithEnv(marker) {
			if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.HasPrefix(cmd, []byte("sleep\x0030")) {
				return true
			}
		}
		return false
	})
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(execKillGrace + 10*time.Second):
		t.Fatal("Reserve did not return after its context was cancelled")
	}
	if err == nil || !strings.Contains(err.Error(), "context canceled") || !strings.Contains(err.Error(), "released)") {
		t.Errorf("err = %v, want a cancelled reservation that was released", err)
	}
	if d := time.Since(start); d > execKillGrace+5*time.Second {
		t.Errorf("Reserve took %v to return after cancel", d)
	}
	if held := f.ls(t, "held"); len(held) != 0 {
		t.Errorf("held after a cancelled reservation: %v", held)
	}
	waitFor(t, 5*time.Second, "the reserve command's processes to end", func() bool { return len(processesWithEnv(marker)) == 0 })
}

// TestExecProvisionerMax runs Max reservations together (each waits for
// the others to start) and makes one more wait for a free place.
func TestExecProvisionerMax(t *testing.T) {
	f := newFakeService(t, "together", 3)
	e := NewExecProvisioner(f.spec, nil)
	ms := make([]*Machine, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range ms {
		wg.Go(func() { ms[i], errs[i] = e.Reserve(context.Background(), Request{}) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.ls(t, "started")); n != 3 {
		t.Fatalf("%d reserve commands ran together, want 3", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := e.Reserve(ctx, Request{})
	if err == nil || !strings.Contains(err.Error(), "waiting for one of its 3 machines to be free") {
		t.Errorf("a fourth Reserve with max 3: err = %v, want it to wait for a free machine", err)
	}
	if err := e.Release(context.Background(), ms[0]); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LNST_FAKE_MODE", "ok")
	m, err := e.Reserve(context.Background(), Request{})
	if err != nil {
		t.Fatalf("Reserve after a Release: %v", err)
	}
	for _, m := range append(ms[1:], m) {
		if err := e.Release(context.Background(), m); err != nil {
			t.Error(err)
		}
	}
	if held := f.ls(t, "held"); len(held) != 0 {
		t.Errorf("held = %v", held)
	}
}

func TestExecProvisionerTimeout(t *testing.T) {
	f := newFakeService(t, "hang", 1)
	f.spec.Timeout = 500 * time.Millisecond
	e := NewExecProvisioner(f.spec, nil)
	_, err := e.Reserve(context.Background(), Request{})
	if err == nil || !strings.Contains(err.Error(), "reserve took longer than the timeout, 500ms") {
		t.Errorf("err = %v, want the timeout", err)
	}
	if held := f.ls(t, "held"); len(held) != 0 {
		t.Errorf("held after a timed out reservation: %v", held)
	}
}

func TestStaticProvisioner(t *testing.T) {
	p, err := Parse("/lab.yaml", []byte(hostsYAML))
	if err != nil {
		t.Fatal(err)
	}
	sp := &StaticProvisioner{Pool: p, LeaseDir: t.TempDir()}
	other := &StaticProvisioner{Pool: p, LeaseDir: sp.LeaseDir}
	m, err := sp.Reserve(context.Background(), Request{Host: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Host.Agent != "unix:///run/a.sock" || m.ID != "m1" {
		t.Errorf("machine %+v", m)
	}
	if _, err := other.Reserve(context.Background(), Request{Host: "m1"}); !errors.Is(err, ErrBusy) {
		t.Errorf("second lease of m1: err = %v, want ErrBusy", err)
	}
	if _, err := sp.Reserve(context.Background(), Request{Host: "m9"}); err == nil || !strings.Contains(err.Error(), `no host "m9"`) {
		t.Errorf("lease of an unknown host: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := sp.Alive(ctx, m); err == nil {
		t.Error("Alive of a host without an agent = nil")
	}
	if err := sp.Release(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	m2, err := other.Reserve(context.Background(), Request{Host: "m1"})
	if err != nil {
		t.Fatalf("lease after Release: %v", err)
	}
	other.Release(context.Background(), m2)
}

// TestLabProvisioner reserves a topology on the namespace lab, twice: the
// second reservation reuses the first instance once it is released. A
// lab that does not start fails it; it skips only when not root and the
// machine refuses the rootless lab its user namespace.
func TestLabProvisioner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the lab agent; skipped with -short")
	}
	rootless := os.Geteuid() != 0
	lab, err := StartLab(LabOptions{AgentLogLevel: "warn", UserNS: rootless})
	if rootless && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)) {
		// Only the rootless lab depends on the machine's settings.
		t.Skipf("the rootless lab needs a user namespace, which this machine refuses: %v", err)
	}
	if err != nil {
		t.Fatalf("start the lab: %v", err)
	}
	defer lab.Close()
	lp := &LabProvisioner{Lab: lab}
	if lp.Name() != "lab" || lp.Max() != 0 {
		t.Errorf("Name %q Max %d", lp.Name(), lp.Max())
	}
	topo := Topology{Hosts: []TopoHost{{Name: "h1", Ifaces: []TopoIface{{Name: "eth0", Net: "n1"}}}}}
	m, err := lp.Reserve(context.Background(), Request{Topology: topo})
	if err != nil {
		t.Fatal(err)
	}
	if m.Instance == nil || m.Instance.Hosts["h1"] == "" {
		t.Fatalf("reservation %+v has no instance with h1", m)
	}
	if err := lp.Alive(context.Background(), m); err != nil {
		t.Errorf("Alive: %v", err)
	}
	if err := lp.Release(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	again, err := lp.Reserve(context.Background(), Request{Topology: topo})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != m.ID || again.Instance.Fresh {
		t.Errorf("second reservation %s (fresh %v), want instance %s reused", again.ID, again.Instance.Fresh, m.ID)
	}
	lp.Release(context.Background(), again)
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := lp.Alive(ctx, again); err == nil {
		t.Error("Alive after the lab closed = nil")
	}
}

// waitFor polls cond every 20ms until it holds, failing after d with what.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
	}
}

// processesWithEnv lists the pids whose environment holds kv.
func processesWithEnv(kv string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		env, err := os.ReadFile(d + "/environ")
		if err == nil && bytes.Contains(append([]byte{0}, env...), []byte("\x00"+kv+"\x00")) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			if pid != os.Getpid() {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
