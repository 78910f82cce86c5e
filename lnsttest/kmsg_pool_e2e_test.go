package lnsttest_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

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
	p := newAgentPool(t, "kmsg-pool", 103, "--log-level", "debug")
	dir, ctl := p.Dir, p.Ctl

	resDir := filepath.Join(dir, "results")
	run := ctl.RunArgv(t, []string{filepath.Join(dir, "lnsttest.test"), "-test.v", "-test.count=1", "-test.run=^TestKmsgFixture$",
		"-lnst.pool=" + p.PoolFile, "-lnst.results=" + resDir, "-lnst.kernel-log=all"},
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
