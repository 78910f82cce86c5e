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
	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestE2EPoolKernelLogAgentLogs runs the kernel log fixture's failing
// case on a pool of two "machines" (lab hosts running lnst-agent with
// mutual TLS, as TestE2ELeaseAcrossControllers makes them): the WARNING
// fails the recipe, and its results directory gets each pool host's agent
// log of the recipe's window, fetched through the agent. The machines
// share this box's kernel, so each one's agent sees the line: a splat
// each, naming its own host, without the namespace lab's caveat (a pool
// machine's kernel is its own).
func TestE2EPoolKernelLogAgentLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lnst-agent and this test binary; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("requires the go command to build lnst-agent and this test binary")
	}
	machines := []string{"m1", "m2"}
	reqs := []lnsttest.Requirement{lnsttest.HostReq("ctl", lnsttest.IfaceReq("ctl0", lnsttest.Net("control")))}
	for _, m := range machines {
		reqs = append(reqs, lnsttest.HostReq(m, lnsttest.IfaceReq("ctl0", lnsttest.Net("control")), lnsttest.IfaceReq("eth0", lnsttest.Net("test"))))
	}
	lab := lnsttest.Require(t, reqs...)
	dir, err := os.MkdirTemp("", "lnst-kmsg-pool-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	root := moduleRoot(t, gobin)
	build(t, root, gobin, "build", "-o", filepath.Join(dir, "lnst-agent"), "./cmd/lnst-agent")
	build(t, root, gobin, "test", "-c", "-o", filepath.Join(dir, "lnsttest.test"), "./lnsttest")

	var addrs []string
	for i := range machines {
		addrs = append(addrs, fmt.Sprintf("198.18.103.%d", 11+i))
	}
	require.NoError(t, agentconn.GenerateCerts(dir, addrs, []string{"ctl"}, time.Hour))
	ctl := lab.Host("ctl")
	ctl.Iface("ctl0").AddIP(t, "198.18.103.1/24")
	var poolFile strings.Builder
	poolFile.WriteString("hosts:\n")
	for i, name := range machines {
		h := lab.Host(name)
		h.Iface("ctl0").AddIP(t, addrs[i]+"/24")
		job := h.StartArgv(t, []string{filepath.Join(dir, "lnst-agent"), "serve", "--listen", addrs[i] + ":7000", "--log-level", "debug",
			"--journal", filepath.Join(dir, name+".journal"),
			"--ca", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, addrs[i]+".pem"), "--key", filepath.Join(dir, addrs[i]+"-key.pem")},
			lnsttest.Desc("lnst-agent on "+name), lnsttest.ExitCodes(0, 1))
		waitListening(t, h, "7000", job)
		fmt.Fprintf(&poolFile, "  - name: %s\n    agent: %s:7000\n    tls: {ca: ca.pem, cert: ctl.pem, key: ctl-key.pem}\n    interfaces:\n      - {name: eth0, network: n1, driver: veth}\n", name, addrs[i])
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pool.yaml"), []byte(poolFile.String()), 0o644))

	resDir := filepath.Join(dir, "results")
	run := ctl.RunArgv(t, []string{filepath.Join(dir, "lnsttest.test"), "-test.v", "-test.count=1", "-test.run=^TestKmsgFixture$",
		"-lnst.pool=" + filepath.Join(dir, "pool.yaml"), "-lnst.results=" + resDir, "-lnst.kernel-log=all"},
		lnsttest.Env(kmsgCaseEnv+"=warn", kmsgMarkerEnv+"="+markerFor(t)), lnsttest.Dir(dir), lnsttest.Desc("controller"),
		lnsttest.Timeout(3*time.Minute), lnsttest.ExitCodes(0, 1))
	out := run.Result().Stdout + run.Result().Stderr
	require.Equal(t, 1, run.Result().ExitCode, out)
	assert.Contains(t, out, "kernel log: warning in the kernel of h1 during the recipe")
	res, err := results.Read(filepath.Join(resDir, results.FileName))
	require.NoError(t, err, out)
	r := fixtureRecipe(t, res)
	assert.Equal(t, results.Fail, r.Verdict)
	require.NotEmpty(t, r.KernelLog)
	for _, sp := range r.KernelLog {
		assert.False(t, sp.SharedKernel)
		assert.Len(t, sp.Hosts, 1, "a pool machine's splat names its own host")
	}
	require.Len(t, r.AgentLogs, 2, out)
	logs := map[string]string{}
	for _, l := range r.AgentLogs {
		assert.Equal(t, res.ID+"."+l.Host+".agent.log", filepath.Base(l.File), "the file carries the run's id")
		b, err := os.ReadFile(filepath.Join(resDir, l.File))
		require.NoError(t, err)
		logs[l.Host] = string(b)
	}
	assert.Regexp(t, `lnst-agent: job started: .*argv=.*/dev/kmsg`, logs["h1"], "h1's agent started the job writing the line")
	assert.Contains(t, logs["h2"], "lnst-agent", "h2's agent log of the window")
	require.Len(t, res.Hosts, 2)
	for _, h := range res.Hosts {
		require.NotNil(t, h.System, h.Name)
		require.Len(t, h.System.NICs, 1)
		assert.Equal(t, "veth", h.System.NICs[0].Driver)
	}
}
