package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/devices"
	pb "github.com/lnst-go/lnst/internal/agentpb"
	"github.com/lnst-go/lnst/internal/benchratio"
)

// benchXfrmN is how many SAs BenchmarkXfrmAdd1k adds per round.
const benchXfrmN = 1000

// benchXfrmRounds is how many times each side runs per iteration,
// interleaved (ip, agent, then agent, ip).
const benchXfrmRounds = 6

// benchXfrmState is SA i: ESP transport, AES-CBC with HMAC-SHA256, SPI
// 0x1000+i, as the ip side adds it.
func benchXfrmState(i int) devices.XfrmState {
	return devices.XfrmState{
		Src: "198.18.200.1", Dst: "198.18.200.2", Proto: "esp", SPI: uint32(0x1000 + i), Mode: "transport",
		Crypt: &devices.XfrmAlgo{Name: "cbc(aes)", Key: []byte("0123456789abcdef")},
		Auth:  &devices.XfrmAlgo{Name: "hmac(sha256)", Key: []byte("0123456789abcdef0123456789abcdef")},
	}
}

// BenchmarkXfrmAdd1k adds 1,000 ESP SAs two ways, interleaved round by
// round:
//
//   - ip_xfrm: one shell running `ip -n NS xfrm state add ...` 1,000
//     times in a throwaway named namespace (what a recipe without the
//     agent's xfrm API would do), then a flush (not timed);
//   - agent: an in-process lab agent over gRPC on a unix socket adds them
//     to a namespace host in one XfrmAddStates call, each journaled; the
//     Restore that deletes them is timed apart.
//
// It prints the median ratio of the adds with its spread:
//
//	RATIO xfrm_add1k/ip_xfrm <x> (min, max, n)   agent / ip xfrm loop
//
// (target: 0.5 or less). A kernel without ESP (esp4) or its algorithms
// skips it, naming what is missing.
func BenchmarkXfrmAdd1k(b *testing.B) {
	if ok, why := probeXfrm("esp4"); !ok {
		b.Skipf("the kernel takes no ESP state (%s): the benchmark adds 1,000 of them", why)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		b.Skip("no ip command: the benchmark compares with ip xfrm")
	}
	ns := fmt.Sprintf("lnstxfrmbench%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	var script strings.Builder
	for i := range benchXfrmN {
		s := benchXfrmState(i)
		fmt.Fprintf(&script, "ip -n %s xfrm state add src %s dst %s proto esp spi %#x mode transport enc 'cbc(aes)' 0x%x auth-trunc 'hmac(sha256)' 0x%x 128\n",
			ns, s.Src, s.Dst, s.SPI, s.Crypt.Key, s.Auth.Key)
	}
	scriptPath := filepath.Join(b.TempDir(), "add.sh")
	if err := os.WriteFile(scriptPath, []byte("set -e\n"+script.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	ipOnce := func() (time.Duration, time.Duration) {
		start := time.Now()
		if out, err := exec.Command("sh", scriptPath).CombinedOutput(); err != nil {
			b.Fatalf("ip xfrm loop: %v: %s", err, out)
		}
		add := time.Since(start)
		start = time.Now()
		if out, err := exec.Command("ip", "-n", ns, "xfrm", "state", "flush").CombinedOutput(); err != nil {
			b.Fatalf("ip xfrm state flush: %v: %s", err, out)
		}
		return add, time.Since(start)
	}

	_, client := benchRoutesClient(b)
	ctx := context.Background()
	req := &pb.XfrmBatchRequest{Host: "bench", Group: "xfrm"}
	for i := range benchXfrmN {
		j, err := json.Marshal(benchXfrmState(i))
		if err != nil {
			b.Fatal(err)
		}
		req.States = append(req.States, j)
	}
	agentOnce := func() (time.Duration, time.Duration) {
		start := time.Now()
		if _, err := client.XfrmAddStates(ctx, req); err != nil {
			b.Fatalf("XfrmAddStates: %v", err)
		}
		add := time.Since(start)
		start = time.Now()
		r, err := client.Restore(ctx, &pb.RestoreRequest{Group: "xfrm"})
		if err != nil || r.Undone != benchXfrmN || len(r.Errors) > 0 {
			b.Fatalf("restore the states: %v (%d undone, errors %q)", err, r.GetUndone(), r.GetErrors())
		}
		return add, time.Since(start)
	}
	sides := []func() (time.Duration, time.Duration){ipOnce, agentOnce}
	for _, s := range sides {
		s() // warm up
	}
	adds := make([][]time.Duration, 2)
	dels := make([][]time.Duration, 2)
	round := 0
	for b.Loop() {
		for range benchXfrmRounds {
			for k := range sides {
				i := k
				if round%2 == 1 {
					i = 1 - k
				}
				a, d := sides[i]()
				adds[i] = append(adds[i], a)
				dels[i] = append(dels[i], d)
			}
			round++
		}
	}
	for i, name := range []string{"ip_xfrm", "agent"} {
		a, _, _ := benchratio.Durations(adds[i])
		b.ReportMetric(float64(a.Nanoseconds())/benchXfrmN, name+"-add-ns/sa")
	}
	benchratio.Print("xfrm_add1k/ip_xfrm", benchratio.Ratios(adds[1], adds[0]))
	fmt.Printf("xfrm_add1k restore (the agent deleting its 1,000 SAs) / ip xfrm adds: %s\n", benchratio.Spread(benchratio.Ratios(dels[1], adds[0])))
}
