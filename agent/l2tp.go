package agent

import "fmt"

// undoL2tp applies an L2TP undo entry.
func (h *host) undoL2tp(u undo) error {
	return fmt.Errorf("undo entry %d: unknown operation %q", u.Seq, u.Op)
}
