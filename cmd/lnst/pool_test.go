package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/lnst-go/lnst/agent"
	"github.com/lnst-go/lnst/internal/agentconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// TestPoolCheck checks a pool of one agent on a unix socket: lo exists and
// has link, nosuch0 is missing, and an unreachable agent is a failure.
func TestPoolCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the agent requires root for its netlink handle")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	srv, err := agent.NewServer(agent.Options{})
	require.NoError(t, err)
	lis, err := agentconn.Listen("unix://" + sock)
	require.NoError(t, err)
	g := grpc.NewServer()
	srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(func() { g.Stop(); srv.Shutdown() })

	write := func(body string) string {
		p := filepath.Join(dir, "pool.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	good := write(fmt.Sprintf("hosts:\n  - name: local\n    agent: unix://%s\n    interfaces:\n      - {name: lo, network: n1}\n", sock))
	var out, errOut bytes.Buffer
	code := run([]string{"pool", "check", good}, &out, &errOut)
	assert.Equal(t, 0, code, "%s%s", out.String(), errOut.String())
	assert.Contains(t, out.String(), "host local (unix://"+sock+"): agent "+agent.Version)
	assert.Regexp(t, `lo\s+\S+\s+\S+\s+up\s+up\s+ok`, out.String())
	assert.Contains(t, out.String(), "all 1 host(s) ready")

	bad := write(fmt.Sprintf("hosts:\n  - name: local\n    agent: unix://%s\n    interfaces:\n      - {name: nosuch0, network: n1}\n  - name: gone\n    agent: unix://%s/none.sock\n", sock, dir))
	out.Reset()
	code = run([]string{"pool", "check", "-timeout=1s", bad}, &out, &errOut)
	assert.Equal(t, 1, code)
	assert.Regexp(t, `nosuch0\s+-\s+-\s+-\s+-\s+FAIL: missing`, out.String())
	assert.Contains(t, out.String(), "host gone (unix://"+dir+"/none.sock): FAIL:")
	assert.Contains(t, out.String(), "2 problem(s)")

	out.Reset()
	errOut.Reset()
	assert.Equal(t, 2, run([]string{"pool", "check"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "usage: lnst pool check [-timeout D] FILE")
}
