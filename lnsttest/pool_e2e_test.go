package lnsttest_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/internal/agentconn"
	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// poolRecipes are the recipes TestE2EPoolOverMutualTLS runs on a pool.
var poolRecipes = []string{"TestPing", "TestIperf3TCP", "TestBridgeThreeHosts", "TestSysctlRestored", "TestRoutes", "TestHostBridge"}

// TestE2EPoolOverMutualTLS runs the foundation recipes, unchanged, against
// a pool file of three "machines" that are lab hosts, each running
// lnst-agent on TCP with mutual TLS on a control network, and a
// controller host running the recipe test binary with -lnst.pool.
func TestE2EPoolOverMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lnst-agent and the recipe suite; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("requires the go command to build lnst-agent and the recipes")
	}
	machines := []string{"m1", "m2", "m3"}
	reqs := []lnsttest.Requirement{lnsttest.HostReq("ctl", lnsttest.IfaceReq("ctl0", lnsttest.Net("control")))}
	for _, m := range machines {
		reqs = append(reqs, lnsttest.HostReq(m,
			lnsttest.IfaceReq("ctl0", lnsttest.Net("control")),
			lnsttest.IfaceReq("eth0", lnsttest.Net("test"))))
	}
	lab := lnsttest.Require(t, reqs...)

	// Binaries and files every lab host can read.
	dir, err := os.MkdirTemp("", "lnst-pool-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	root := moduleRoot(t, gobin)
	build(t, root, gobin, "build", "-o", filepath.Join(dir, "lnst-agent"), "./cmd/lnst-agent")
	build(t, root, gobin, "test", "-c", "-o", filepath.Join(dir, "recipes.test"), "./recipes")
	build(t, root, gobin, "test", "-c", "-o", filepath.Join(dir, "lnsttest.test"), "./lnsttest")

	var hosts []string
	for i := range machines {
		hosts = append(hosts, fmt.Sprintf("198.18.100.%d", 11+i))
	}
	require.NoError(t, agentconn.GenerateCerts(dir, hosts, []string{"ctl"}, time.Hour))

	var poolFile strings.Builder
	poolFile.WriteString("hosts:\n")
	ctl := lab.Host("ctl")
	ctl.Iface("ctl0").AddIP(t, "198.18.100.1/24")
	for i, name := range machines {
		h := lab.Host(name)
		h.Iface("ctl0").AddIP(t, hosts[i]+"/24")
		agentJob := h.StartArgv(t, []string{filepath.Join(dir, "lnst-agent"), "serve", "--listen", hosts[i] + ":7000", "--lease-ttl", leaseTTL.String(),
			"--journal", filepath.Join(dir, name+".journal"),
			"--ca", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, hosts[i]+".pem"), "--key", filepath.Join(dir, hosts[i]+"-key.pem")},
			lnsttest.Desc("lnst-agent on "+name), lnsttest.ExitCodes(0, 1))
		waitListening(t, h, "7000", agentJob)
		fmt.Fprintf(&poolFile, "  - name: %s\n    agent: %s:7000\n    tls: {ca: ca.pem, cert: ctl.pem, key: ctl-key.pem}\n    interfaces:\n      - {name: eth0, network: n1, driver: veth}\n", name, hosts[i])
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pool.yaml"), []byte(poolFile.String()), 0o644))

	run := ctl.RunArgv(t, []string{filepath.Join(dir, "recipes.test"), "-test.v", "-test.count=1",
		"-test.run=^(" + strings.Join(poolRecipes, "|") + ")$", "-lnst.pool=" + filepath.Join(dir, "pool.yaml")},
		lnsttest.Dir(filepath.Join(root, "recipes")), lnsttest.Timeout(5*time.Minute), lnsttest.Desc("recipes on the pool"),
		lnsttest.ExitCodes(0, 1))
	out := run.Result().Stdout + run.Result().Stderr
	require.Zero(t, run.Result().ExitCode, "the recipes failed on the pool:\n%s", out)
	for _, r := range poolRecipes {
		assert.Contains(t, out, "--- PASS: "+r+" ", "%s passed on the pool", r)
	}
	assert.Regexp(t, `match="h1=m\d h2=m\d"`, out, "recipes ran on pool hosts")

	t.Run("controller killed", func(t *testing.T) {
		controllerKilled(t, lab, machines, dir)
	})
}

// leaseTTL is the pool agents' lease TTL in TestE2EPoolOverMutualTLS.
const leaseTTL = 2 * time.Second

// controllerKilled runs the e2e fixture on the pool from the controller
// host, SIGKILLs it mid-recipe, and checks that the agents restore the
// machines on their own once its lease expires: addresses, MTU, the
// host-wide sysctl, and the job it left running.
func controllerKilled(t *testing.T, lab *lnsttest.Match, machines []string, dir string) {
	marker := fmt.Sprintf("pool-kill-%d", time.Now().UnixNano())
	state := func() string {
		var b strings.Builder
		for _, name := range machines {
			h := lab.Host(name)
			b.WriteString(name + ": " + h.Run(t, "ip -o addr show dev eth0 | grep -c 198.18.9.1 || true; cat /sys/class/net/eth0/mtu", lnsttest.Quiet()).Result().Stdout)
		}
		msgmax, err := os.ReadFile("/proc/sys/kernel/msgmax")
		require.NoError(t, err)
		return b.String() + "msgmax " + string(msgmax) + fmt.Sprintf("fixture processes %v, sleepers %d\n", processesWith(marker), sleepers())
	}
	before := state()
	ctl := lab.Host("ctl")
	job := ctl.StartArgv(t, []string{filepath.Join(dir, "lnsttest.test"), "-test.run=^TestFixture$", "-test.v",
		"-lnst.pool=" + filepath.Join(dir, "pool.yaml")},
		lnsttest.Env(caseEnv+"=wait", markerEnv+"="+marker), lnsttest.Dir(dir), lnsttest.Desc("fixture on the pool"))
	// The fixture's last step before it waits is its background sleeper.
	for deadline := time.Now().Add(60 * time.Second); sleepers() == 0; time.Sleep(50 * time.Millisecond) {
		require.False(t, time.Now().After(deadline), "the fixture never started its sleeper on the pool")
	}
	require.NotEqual(t, before, state())
	killed := time.Now()
	job.Kill(t, 9)
	var after string
	for deadline := killed.Add(leaseTTL + 5*time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if after = state(); after == before {
			t.Logf("the agents restored the pool hosts %v after the controller was killed (lease TTL %v)", time.Since(killed).Round(100*time.Millisecond), leaseTTL)
			return
		}
	}
	require.Equal(t, before, after, "the pool hosts are not restored within TTL + 5s")
}

// sleepers counts the processes running "sleep 600", the fixture's
// background job.
func sleepers() int {
	n := 0
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if b, err := os.ReadFile(d + "/cmdline"); err == nil && string(b) == "/bin/sh\x00-c\x00sleep 600\x00" {
			n++
		}
	}
	return n
}

func moduleRoot(t *testing.T, gobin string) string {
	t.Helper()
	out, err := exec.Command(gobin, "env", "GOMOD").Output()
	require.NoError(t, err)
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func build(t *testing.T, dir, gobin string, args ...string) {
	t.Helper()
	cmd := exec.Command(gobin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
}

// waitListening polls ss on h until a socket listens on port; it fails
// at once, with the server's output, if the server job ends.
func waitListening(t *testing.T, h *lnsttest.Host, port string, server *lnsttest.Job) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ss := h.RunArgv(t, []string{"ss", "-Hltn", "sport = :" + port}, lnsttest.Quiet())
		if strings.TrimSpace(ss.Result().Stdout) != "" {
			return
		}
		select {
		case <-server.Done():
			r := server.Result()
			t.Fatalf("%s: the server exited (code %d) before listening on port %s:\n%s%s", h.Name(), r.ExitCode, port, r.Stdout, r.Stderr)
		default:
		}
	}
	t.Fatalf("%s: nothing listens on port %s after 15s", h.Name(), port)
}
