package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJobsCarryOwnerMark: a job's processes, its children included, carry
// the agent's mark, and killOrphans kills exactly the processes with it.
func TestJobsCarryOwnerMark(t *testing.T) {
	_, c := testServer(t)
	r := testRun(t, c, "", "sh", "-c", "sh -c 'echo $"+jobOwnerEnv+"'")
	assert.Equal(t, "pid:"+strconv.Itoa(os.Getpid())+"\n", string(r.Stdout), "a grandchild of the job carries the mark")

	owner := "journal:" + filepath.Join(t.TempDir(), "journal")
	marked := exec.Command("sleep", "100")
	marked.Env = append(os.Environ(), jobOwnerEnv+"="+owner)
	other := exec.Command("sleep", "100")
	other.Env = append(os.Environ(), jobOwnerEnv+"="+owner+"-not")
	require.NoError(t, marked.Start())
	require.NoError(t, other.Start())
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })

	assert.Equal(t, 1, killOrphans(owner, hclog.NewNullLogger()))
	done := make(chan error, 1)
	go func() { done <- marked.Wait() }()
	select {
	case <-done:
		ws := marked.ProcessState.Sys().(syscall.WaitStatus)
		assert.Equal(t, syscall.SIGKILL, ws.Signal())
	case <-time.After(5 * time.Second):
		t.Fatal("the marked process was not killed")
	}
	assert.NoError(t, other.Process.Signal(syscall.Signal(0)), "the process with another mark lives")
}
