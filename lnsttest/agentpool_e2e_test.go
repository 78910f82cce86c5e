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
	"github.com/stretchr/testify/require"
)

// agentPool is a pool of two "machines": lab hosts m1 and m2 each running
// an lnst-agent built from this module with mutual TLS, on a control
// network with host ctl, where a test binary built from ./lnsttest runs
// recipes on them as a controller.
type agentPool struct {
	// Dir holds the binaries ("lnst-agent", "lnsttest.test"), the
	// certificates, each machine's journal and PoolFile.
	Dir string
	// Ctl is the controller's host.
	Ctl *lnsttest.Host
	// PoolFile is the pool file naming the machines for -lnst.pool.
	PoolFile string
	// Machines are the machines' lab host names.
	Machines []string
}

// newAgentPool builds the agent and the test binary and starts an agent on
// each machine, listening on 198.18.<subnet>.11 and .12 (ctl is .1), with
// agentArgs after "serve"'s own. It skips under -short and without the go
// command.
func newAgentPool(t *testing.T, name string, subnet int, agentArgs ...string) agentPool {
	t.Helper()
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
	dir, err := os.MkdirTemp("", "lnst-"+name+"-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	root := moduleRoot(t, gobin)
	build(t, root, gobin, "build", "-o", filepath.Join(dir, "lnst-agent"), "./cmd/lnst-agent")
	build(t, root, gobin, "test", "-c", "-o", filepath.Join(dir, "lnsttest.test"), "./lnsttest")

	var addrs []string
	for i := range machines {
		addrs = append(addrs, fmt.Sprintf("198.18.%d.%d", subnet, 11+i))
	}
	require.NoError(t, agentconn.GenerateCerts(dir, addrs, []string{"ctl"}, time.Hour))
	ctl := lab.Host("ctl")
	ctl.Iface("ctl0").AddIP(t, fmt.Sprintf("198.18.%d.1/24", subnet))
	var poolFile strings.Builder
	poolFile.WriteString("hosts:\n")
	for i, name := range machines {
		h := lab.Host(name)
		h.Iface("ctl0").AddIP(t, addrs[i]+"/24")
		argv := append([]string{filepath.Join(dir, "lnst-agent"), "serve", "--listen", addrs[i] + ":7000"}, agentArgs...)
		argv = append(argv, "--journal", filepath.Join(dir, name+".journal"),
			"--ca", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, addrs[i]+".pem"), "--key", filepath.Join(dir, addrs[i]+"-key.pem"))
		job := h.StartArgv(t, argv, lnsttest.Desc("lnst-agent on "+name), lnsttest.ExitCodes(0, 1))
		waitListening(t, h, "7000", job)
		fmt.Fprintf(&poolFile, "  - name: %s\n    agent: %s:7000\n    tls: {ca: ca.pem, cert: ctl.pem, key: ctl-key.pem}\n    interfaces:\n      - {name: eth0, network: n1, driver: veth}\n", name, addrs[i])
	}
	pool := filepath.Join(dir, "pool.yaml")
	require.NoError(t, os.WriteFile(pool, []byte(poolFile.String()), 0o644))
	return agentPool{Dir: dir, Ctl: ctl, PoolFile: pool, Machines: machines}
}
