package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// jobOwnerEnv marks every process a job starts, its children included,
// with the agent that owns it. Pdeathsig reaches only a job's first
// process: its children outlive a killed agent, and the next agent with
// the same journal finds them by this mark and kills them.
const jobOwnerEnv = "LNST_JOB_OWNER"

// jobOwner is the mark of jobs of an agent with this journal: stable
// across restarts. Without a journal, the agent's pid.
func jobOwner(journalPath string) string {
	if journalPath == "" {
		return "pid:" + strconv.Itoa(os.Getpid())
	}
	if abs, err := filepath.Abs(journalPath); err == nil {
		journalPath = abs
	}
	return "journal:" + journalPath
}

// killOrphans kills every process marked as a job of owner: left by a
// previous agent with the same journal that was killed (this agent has
// started none yet). It returns how many it killed.
func killOrphans(owner string, log hclog.Logger) int {
	mark := []byte(jobOwnerEnv + "=" + owner + "\x00")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	killed := 0
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(d + "/environ")
		if err != nil || !bytes.Contains(append(env, 0), mark) {
			continue
		}
		cmd, _ := os.ReadFile(d + "/cmdline")
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			killed++
			log.Info("killed a job process a previous agent left", "pid", pid, "cmd", string(bytes.ReplaceAll(bytes.TrimRight(cmd, "\x00"), []byte{0}, []byte{' '})))
		}
	}
	return killed
}
