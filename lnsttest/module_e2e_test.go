package lnsttest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/agentconn"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// netInfo is the result of the netinfo module: where it ran.
type netInfo struct {
	Ifaces     []string `json:"ifaces"`
	NetnsInode uint64   `json:"netns_inode"`
	Exe        string   `json:"exe"`
	Echo       string   `json:"echo"`
}

// netinfoArgs are the netinfo module's arguments: Echo comes back in its
// result.
type netinfoArgs struct {
	Echo string `json:"echo"`
}

func init() {
	lnsttest.RegisterModule("netinfo", netinfo)
	lnsttest.RegisterModule("e2e-fail", func(context.Context, json.RawMessage) (any, error) {
		return nil, errors.New("no carrier on eth0")
	})
}

// netinfo is a custom module: the host's interface names and the inode
// of its network namespace.
func netinfo(_ context.Context, raw json.RawMessage) (any, error) {
	var a netinfoArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("netinfo: arguments: %w", err)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	res := netInfo{NetnsInode: fi.Sys().(*syscall.Stat_t).Ino, Exe: exe, Echo: a.Echo}
	for _, i := range ifs {
		res.Ifaces = append(res.Ifaces, i.Name)
	}
	return res, nil
}

// fatalRecorder is a testing.TB whose Fatal records the message and ends
// the goroutine, as testing's does, without failing the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalOf runs f with a fatalRecorder and returns what it failed with.
func fatalOf(t *testing.T, f func(t testing.TB)) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

func TestE2EModuleOnLabHosts(t *testing.T) {
	m := lnsttest.Require(t,
		lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
		lnsttest.HostReq("h2", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))),
	)
	self, err := netinfo(context.Background(), json.RawMessage("{}"))
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)

	var got [2]netInfo
	for i, name := range []string{"h1", "h2"} {
		h := m.Host(name)
		job := h.RunModule(t, "netinfo", netinfoArgs{Echo: "from " + name}, &got[i])
		assert.Zero(t, job.Result().ExitCode)
		assert.Contains(t, got[i].Ifaces, h.Iface("eth0").Name(), "%s lists its eth0", name)
		assert.Contains(t, got[i].Ifaces, "lo")
		assert.Equal(t, "from "+name, got[i].Echo, "the arguments reached the module")
		assert.Equal(t, exe, got[i].Exe, "on the lab the module runs this very binary")
		assert.NotEqual(t, self.(netInfo).NetnsInode, got[i].NetnsInode, "%s's module ran in the host's namespace", name)
	}
	assert.NotEqual(t, got[0].NetnsInode, got[1].NetnsInode, "each module ran on its own host")

	t.Run("large arguments", func(t *testing.T) {
		big := strings.Repeat("198.18.0.1 ", 8<<10) // 88 KiB: through a file, not the environment
		var res netInfo
		m.Host("h1").RunModule(t, "netinfo", netinfoArgs{Echo: big}, &res)
		assert.Equal(t, big, res.Echo)
	})
	t.Run("failures", func(t *testing.T) {
		h1 := m.Host("h1")
		msg := fatalOf(t, func(t testing.TB) { h1.RunModule(t, "e2e-fail", nil, nil) })
		assert.Regexp(t, `^h1: module e2e-fail: job \d+: no carrier on eth0`, msg)
		msg = fatalOf(t, func(t testing.TB) { h1.RunModule(t, "nosuch", nil, nil) })
		assert.Regexp(t, `^h1: module nosuch: job \d+: unknown module "nosuch"; registered modules: .*netinfo`, msg)
		msg = fatalOf(t, func(t testing.TB) { h1.RunModule(t, "netinfo", nil, new(int)) })
		assert.Contains(t, msg, "h1: module netinfo: decode its result into *int")
		msg = fatalOf(t, func(t testing.TB) { h1.RunModule(t, "netinfo", nil, netInfo{}) })
		assert.Contains(t, msg, "out must be a non-nil pointer")
		msg = fatalOf(t, func(t testing.TB) { h1.RunModule(t, "netinfo", nil, nil, lnsttest.ExpectFail()) })
		assert.Contains(t, msg, "ExpectFail and ExitCodes do not apply")
	})
}

// moduleFixtureEnv makes TestModuleFixture run: it is the inner test of
// TestE2EModuleOnPool.
const moduleFixtureEnv = "LNST_E2E_MODULE_FIXTURE"

// TestModuleFixture runs the netinfo module on a pool host, from two
// tests, and prints the results (and where the controller runs) for
// TestE2EModuleOnPool to check.
func TestModuleFixture(t *testing.T) {
	if os.Getenv(moduleFixtureEnv) == "" {
		t.Skip("fixture: runs only as a child of TestE2EModuleOnPool (requires " + moduleFixtureEnv + ")")
	}
	m := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1"))))
	self, err := netinfo(context.Background(), json.RawMessage("{}"))
	require.NoError(t, err)
	b, _ := json.Marshal(self)
	fmt.Printf("netinfo on the controller: %s\n", b)
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			var res netInfo
			m.Host("h1").RunModule(t, "netinfo", netinfoArgs{Echo: name}, &res)
			b, _ := json.Marshal(res)
			fmt.Printf("netinfo on the pool: %s\n", b)
		})
	}
}

// TestE2EModuleOnPool runs a module of this test package on a pool host:
// lab host m1 runs lnst-agent with mutual TLS, and the controller host
// runs this package's test binary with -lnst.pool, whose fixture calls
// RunModule on m1. The test binary is shipped to m1 once and removed when
// the run ends.
func TestE2EModuleOnPool(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lnst-agent and this test binary; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("requires the go command to build lnst-agent and this test binary")
	}
	lab := lnsttest.Require(t,
		lnsttest.HostReq("ctl", lnsttest.IfaceReq("ctl0", lnsttest.Net("control"))),
		lnsttest.HostReq("m1", lnsttest.IfaceReq("ctl0", lnsttest.Net("control")), lnsttest.IfaceReq("eth0", lnsttest.Net("test"))),
	)
	dir, err := os.MkdirTemp("", "lnst-module-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	root := moduleRoot(t, gobin)
	build(t, root, gobin, "build", "-o", filepath.Join(dir, "lnst-agent"), "./cmd/lnst-agent")
	build(t, root, gobin, "test", "-c", "-o", filepath.Join(dir, "lnsttest.test"), "./lnsttest")

	const ctlAddr, m1Addr = "198.18.101.1", "198.18.101.11"
	require.NoError(t, agentconn.GenerateCerts(dir, []string{m1Addr}, []string{"ctl"}, time.Hour))
	ctl, m1 := lab.Host("ctl"), lab.Host("m1")
	ctl.Iface("ctl0").AddIP(t, ctlAddr+"/24")
	m1.Iface("ctl0").AddIP(t, m1Addr+"/24")
	agentJob := m1.StartArgv(t, []string{filepath.Join(dir, "lnst-agent"), "serve", "--listen", m1Addr + ":7000", "--lease-ttl", leaseTTL.String(),
		"--journal", filepath.Join(dir, "m1.journal"),
		"--ca", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, m1Addr+".pem"), "--key", filepath.Join(dir, m1Addr+"-key.pem")},
		lnsttest.Desc("lnst-agent on m1"), lnsttest.ExitCodes(0, 1))
	waitListening(t, m1, "7000", agentJob)
	poolFile := fmt.Sprintf("hosts:\n  - name: m1\n    agent: %s:7000\n    tls: {ca: ca.pem, cert: ctl.pem, key: ctl-key.pem}\n    interfaces:\n      - {name: eth0, network: n1, driver: veth}\n", m1Addr)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pool.yaml"), []byte(poolFile), 0o644))

	run := ctl.RunArgv(t, []string{filepath.Join(dir, "lnsttest.test"), "-test.v", "-test.count=1", "-test.run=^TestModuleFixture$",
		"-lnst.pool=" + filepath.Join(dir, "pool.yaml")},
		lnsttest.Env(moduleFixtureEnv+"=1"), lnsttest.Dir(dir), lnsttest.Timeout(2*time.Minute), lnsttest.Desc("module fixture on the pool"),
		lnsttest.ExitCodes(0, 1))
	out := run.Result().Stdout + run.Result().Stderr
	require.Zero(t, run.Result().ExitCode, "the fixture failed on the pool:\n%s", out)
	require.Contains(t, out, "--- PASS: TestModuleFixture ", "the fixture ran:\n%s", out)

	controller := fixtureResults(t, out, "netinfo on the controller: ")
	remote := fixtureResults(t, out, "netinfo on the pool: ")
	require.Len(t, controller, 1, out)
	require.Len(t, remote, 2, out)

	// Where ctl and m1 are, as seen by modules run from this lab.
	var ctlInfo, m1Info netInfo
	ctl.RunModule(t, "netinfo", netinfoArgs{}, &ctlInfo)
	m1.RunModule(t, "netinfo", netinfoArgs{}, &m1Info)
	assert.Equal(t, ctlInfo.NetnsInode, controller[0].NetnsInode, "the controller ran on ctl")
	for i, r := range remote {
		assert.Equal(t, []string{"first", "second"}[i], r.Echo, "the arguments reached the module")
		assert.Equal(t, m1Info.NetnsInode, r.NetnsInode, "the module ran on the pool host m1")
		assert.NotEqual(t, controller[0].NetnsInode, r.NetnsInode, "the module did not run on the controller")
		assert.Contains(t, r.Ifaces, "eth0")
		assert.NotEqual(t, filepath.Join(dir, "lnsttest.test"), r.Exe, "the module ran a shipped copy of the test binary")
		assert.Equal(t, remote[0].Exe, r.Exe, "the binary is shipped once per session")
	}
	assert.Len(t, regexp.MustCompile(`shipped the test binary for modules.*host=m1`).FindAllString(out, -1), 1, "shipped once:\n%s", out)
	_, err = os.Stat(remote[0].Exe) // m1 shares this machine's filesystem
	assert.True(t, errors.Is(err, os.ErrNotExist), "the shipped binary %s is removed when the run ends: %v", remote[0].Exe, err)
}

// fixtureResults reads the netInfo results printed after prefix.
func fixtureResults(t *testing.T, out, prefix string) []netInfo {
	t.Helper()
	var res []netInfo
	for _, line := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(line, prefix); ok {
			var r netInfo
			require.NoError(t, json.Unmarshal([]byte(s), &r), "%q", line)
			res = append(res, r)
		}
	}
	return res
}
