package lnsttest

import (
	"fmt"
	"testing"
)

// undoCommand registers the cleanup of j's Undo command, which its agent
// journaled as entry seq: a Restore of the test's group since seq runs
// it, with what the test changed after it (already undone by then, their
// cleanups coming first). An agent that answers seq 0 for a job that
// started did not journal it: an agent older than Undo. The test then
// fails, and the command is run at cleanup from here, so the machine is
// still cleaned, but not after a crash of this process or of the agent.
func (h *Host) undoCommand(t testing.TB, j *Job, seq uint64) {
	t.Helper()
	if j.opts.undo == "" && len(j.opts.undoArgv) == 0 {
		return
	}
	what := fmt.Sprintf("Undo %q of job %d on %s", j.opts.undo, j.id, h.name)
	if len(j.opts.undoArgv) > 0 {
		what = fmt.Sprintf("UndoArgv %q of job %d on %s", j.opts.undoArgv, j.id, h.name)
	}
	if seq != 0 {
		h.s.state(t).undoAt(t, h.client, what, seq)
		return
	}
	t.Cleanup(func() {
		t.Helper()
		<-j.done
		j.mu.Lock()
		unstarted := j.unstarted
		j.mu.Unlock()
		if unstarted {
			// Nothing ran, nothing to take back; the job's own
			// failure says why.
			return
		}
		t.Errorf("%s: the agent did not journal it (an lnst-agent older than Undo?): it runs now, but would not after a crash of this test or of the agent", what)
		if len(j.opts.undoArgv) > 0 {
			h.RunArgv(t, j.opts.undoArgv, Desc(fmt.Sprintf("undo of job %d", j.id)))
			return
		}
		h.Run(t, j.opts.undo, Desc(fmt.Sprintf("undo of job %d", j.id)))
	})
}
