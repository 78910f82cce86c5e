package modules

import (
	"strings"
	"testing"

	"github.com/lnst-go/lnst/lnsttest"
)

// Run pings p.Dst from h and returns what it measured. Lost packets are a
// result, not a failure: the recipe asserts on Lost. Run fails the test when
// p is invalid, when ping cannot run (exit code other than 0 or 1, such as
// "Network is unreachable") or when its output cannot be read.
func (p Ping) Run(t testing.TB, h *lnsttest.Host) PingResult {
	t.Helper()
	argv, err := p.argv()
	if err != nil {
		t.Fatalf("host %s: %v", h.Name(), err)
	}
	job := h.RunArgv(t, argv,
		lnsttest.ExitCodes(0, 1),
		lnsttest.Desc("ping "+p.Dst),
		lnsttest.Timeout(p.jobTimeout()),
	)
	out := job.Result()
	res, err := parsePing(out.Stdout)
	if err != nil {
		t.Fatalf("host %s: %s: %v\nstdout:\n%s\nstderr:\n%s",
			h.Name(), strings.Join(argv, " "), err, out.Stdout, out.Stderr)
	}
	job.SetVerdict(res.Verdict(), res.String())
	return res
}
