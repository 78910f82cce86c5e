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

// poolRecipes are the recipes TestE2EPoolOverMutualTLS runs on a pool:
// among them those that once wrote eth0 into sysctl keys, sysfs paths,
// device parents and expected output, which the pool's NIC names
// (machineNIC) catch.
var poolRecipes = []string{"TestPing", "TestIperf3TCP", "TestBridgeThreeHosts", "TestSysctlRestored", "TestRoutes", "TestHostBridge",
	"TestBridgeTwoHosts", "TestMTU", "TestVxlanUnicast", "TestTrafficControl",
	"TestImpairedLinkRate"}

// machineNIC is what the pool machines call their test NIC: as real
// machines name theirs, unlike the recipes' requirements (eth0).
const machineNIC = "enp1s0"

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
			lnsttest.IfaceReq(machineNIC, lnsttest.Net("test"))))
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
	p := &poolLab{lab: lab, machines: machines, addrs: hosts, dir: dir, agents: map[string]*lnsttest.Job{}, agentArgv: map[string][]string{}}
	for i, name := range machines {
		h := lab.Host(name)
		h.Iface("ctl0").AddIP(t, hosts[i]+"/24")
		p.agentArgv[name] = []string{filepath.Join(dir, "lnst-agent"), "serve", "--listen", hosts[i] + ":7000", "--lease-ttl", leaseTTL.String(),
			"--journal", filepath.Join(dir, name+".journal"),
			"--ca", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, hosts[i]+".pem"), "--key", filepath.Join(dir, hosts[i]+"-key.pem")}
		// A qdisc the machine has of its own, which the recipes leave
		// there (tcbaseline.go would put it back).
		// (Attaching it sets a transmit queue length of 0 to 1000.)
		nic := h.Iface(machineNIC).Name()
		qlen := strings.TrimSpace(h.Output(t, "cat /sys/class/net/"+nic+"/tx_queue_len"))
		h.Run(t, "tc qdisc add dev "+nic+" clsact")
		t.Cleanup(func() {
			assert.Contains(t, h.Output(t, "tc qdisc show dev "+nic), "qdisc clsact ffff:", "%s keeps its own qdisc through the run", name)
			h.Run(t, "tc qdisc del dev "+nic+" clsact && ip link set "+nic+" txqueuelen "+qlen)
		})
		p.agents[name] = h.StartArgv(t, p.agentArgv[name], lnsttest.Desc("lnst-agent on "+name), lnsttest.ExitCodes(0, 1))
		waitListening(t, h, "7000", p.agents[name])
		// m1's NIC may be impaired (TestImpairedLinkRate).
		params := ""
		if i == 0 {
			params = ", params: {" + lnsttest.ImpairParam + ": \"true\"}"
		}
		fmt.Fprintf(&poolFile, "  - name: %s\n    agent: %s:7000\n    tls: {ca: ca.pem, cert: ctl.pem, key: ctl-key.pem}\n    interfaces:\n      - {name: %s, network: n1, driver: veth%s}\n", name, hosts[i], h.Iface(machineNIC).Name(), params)
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

	poolFaults(t, p) // faults_e2e_test.go
}

// leaseTTL is the pool agents' lease TTL in TestE2EPoolOverMutualTLS.
const leaseTTL = 2 * time.Second

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
	lnsttest.WaitFor(t, h.Name()+": a listener on port "+port, 15*time.Second, func() bool {
		if strings.TrimSpace(h.OutputArgv(t, []string{"ss", "-Hltn", "sport = :" + port}, lnsttest.Quiet())) != "" {
			return true
		}
		select {
		case <-server.Done():
			r := server.Result()
			t.Fatalf("%s: the server exited (code %d) before listening on port %s:\n%s%s", h.Name(), r.ExitCode, port, r.Stdout, r.Stderr)
		default:
		}
		return false
	})
}
