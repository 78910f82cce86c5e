package lnsttest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/lnsttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leaseFixtureEnv makes TestLeaseFixture run, appending what each of its
// recipes held to the file it names.
const leaseFixtureEnv = "LNST_E2E_LEASE_FIXTURE"

// leaseFixtureRecipes is how many recipes TestLeaseFixture runs at once.
const leaseFixtureRecipes = 4

// TestLeaseFixture is the inner test of TestE2ELeaseAcrossControllers: its
// recipes each hold one pool host for a second, and append to the file
// leaseFixtureEnv names a line "<machine's network namespace> <pid>
// <start> <end>" (O_APPEND: the lines of two processes do not mix).
func TestLeaseFixture(t *testing.T) {
	log := os.Getenv(leaseFixtureEnv)
	if log == "" {
		t.Skip("fixture: runs only in the children TestE2ELeaseAcrossControllers starts (requires " + leaseFixtureEnv + ")")
	}
	for i := range leaseFixtureRecipes {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			h := lnsttest.Require(t, lnsttest.HostReq("h1", lnsttest.IfaceReq("eth0", lnsttest.Net("n1")))).Host("h1")
			start := time.Now()
			ns := strings.TrimSpace(h.RunArgv(t, []string{"readlink", "/proc/self/ns/net"}).Result().Stdout)
			h.RunArgv(t, []string{"sleep", "1"})
			end := time.Now()
			f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			require.NoError(t, err)
			_, err = fmt.Fprintf(f, "%s %d %d %d\n", ns, os.Getpid(), start.UnixNano(), end.UnixNano())
			require.NoError(t, err)
			require.NoError(t, f.Close())
		})
	}
}

// TestE2ELeaseAcrossControllers: two controllers (test processes with
// their own TMPDIR, so their lease files do not meet) run recipes at once
// on one pool of two machines; the machines' agents keep them from ever
// holding one machine at once.
func TestE2ELeaseAcrossControllers(t *testing.T) {
	p := newAgentPool(t, "lease", 102, "--lease-ttl", leaseTTL.String())
	dir, ctl := p.Dir, p.Ctl

	log := filepath.Join(dir, "held.log")
	var controllers []*lnsttest.Job
	for _, c := range []string{"a", "b"} {
		tmp := filepath.Join(dir, "tmp-"+c)
		require.NoError(t, os.Mkdir(tmp, 0o755))
		controllers = append(controllers, ctl.StartArgv(t, []string{filepath.Join(dir, "lnsttest.test"), "-test.v", "-test.count=1", "-test.run=^TestLeaseFixture$",
			"-lnst.pool=" + p.PoolFile},
			lnsttest.Env(leaseFixtureEnv+"="+log, "TMPDIR="+tmp), lnsttest.Dir(dir), lnsttest.Desc("controller "+c),
			lnsttest.ExitCodes(0, 1)))
	}
	for _, c := range controllers {
		r := c.Wait(t)
		require.Zero(t, r.ExitCode, "a controller failed:\n%s%s", r.Stdout, r.Stderr)
		require.Equal(t, leaseFixtureRecipes, strings.Count(r.Stdout, "    --- PASS: TestLeaseFixture/"), "every recipe ran:\n%s", r.Stdout)
	}
	for _, c := range []string{"a", "b"} {
		locks, _ := filepath.Glob(filepath.Join(dir, "tmp-"+c, "lnst-go-leases", "*"))
		assert.Empty(t, locks, "controller %s left lease files", c)
	}

	type hold struct {
		pid        string
		start, end int64
	}
	data, err := os.ReadFile(log)
	require.NoError(t, err)
	byMachine := map[string][]hold{}
	pids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 4, "line %q", line)
		start, err1 := strconv.ParseInt(f[2], 10, 64)
		end, err2 := strconv.ParseInt(f[3], 10, 64)
		require.NoError(t, err1)
		require.NoError(t, err2)
		byMachine[f[0]] = append(byMachine[f[0]], hold{f[1], start, end})
		pids[f[1]] = true
	}
	require.Len(t, pids, 2, "both controllers ran recipes:\n%s", data)
	require.LessOrEqual(t, len(byMachine), len(p.Machines), "recipes ran on the pool's machines:\n%s", data)
	for machine, holds := range byMachine {
		sort.Slice(holds, func(i, j int) bool { return holds[i].start < holds[j].start })
		for i := 1; i < len(holds); i++ {
			assert.LessOrEqual(t, holds[i-1].end, holds[i].start, "machine %s: process %s held it until %d, process %s from %d",
				machine, holds[i-1].pid, holds[i-1].end, holds[i].pid, holds[i].start)
		}
	}
}
