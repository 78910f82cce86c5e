package lnsttest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSummaryShowsModuleVerdict: a ping that lost every packet exits 1,
// which its module allows (the recipe judges the loss): the RESULTS
// SUMMARY shows the module's verdict, not PASS for the allowed exit code,
// and a job that failed still shows FAIL.
func TestSummaryShowsModuleVerdict(t *testing.T) {
	ended := func(id int64, code int, allowed ...int) *Job {
		j := &Job{host: &Host{name: "h1"}, id: id, cmd: "ping 198.18.0.9", opts: runOpts{codes: allowed}, done: make(chan struct{})}
		j.res.ExitCode = code
		close(j.done)
		return j
	}
	lost := ended(1, 1, 0, 1)
	lost.SetVerdict("NO REPLY", "sent 3 received 0 lost 3")
	plain := ended(2, 1, 0, 1)
	failed := ended(3, 2, 0, 1)
	failed.SetVerdict("LOSS", "sent 3 received 1 lost 2")
	out := summary("TestX", []*Job{lost, plain, failed}, nil)
	assert.Regexp(t, `h1\s+1\s+NO REPLY\s+ping 198.18.0.9\s+sent 3 received 0 lost 3\n`, out)
	assert.Regexp(t, `h1\s+2\s+PASS\s+ping 198.18.0.9\s+exit 1 in 0s\n`, out, "a job without a module verdict passes on an allowed exit code")
	assert.Regexp(t, `h1\s+3\s+FAIL\s+ping 198.18.0.9\s+exit code 2, want 0 1\n`, out, "a failed job is FAIL whatever its module said")
}
