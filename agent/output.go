package agent

import (
	"sort"
	"sync"
	"sync/atomic"

	pb "github.com/lnst-go/lnst/internal/agentpb"
)

// Limits of the job output the agent keeps (see Options.OutputCap and
// Options.OutputBudget).
const (
	// DefaultOutputCap is how many bytes of each stream of one job the
	// agent keeps by default: the last ones, when the job writes more.
	DefaultOutputCap = 256 << 20
	// DefaultOutputBudget is how many bytes of output the agent keeps of
	// all its jobs together by default.
	DefaultOutputBudget = 1 << 30
	// outputFloor is what a stream keeps of its tail even while the
	// budget is spent (when its cap is not smaller).
	outputFloor = 1 << 20
	// outputRead is the most a job's pipe is read in one go: one record,
	// and one message of WaitJobStream (a pipe holds 64 KiB).
	outputRead = 64 << 10
	// freeAfter is the size of output at whose release the agent returns
	// the memory freed to the system at once, rather than whenever the Go
	// runtime gets to it: an agent lives long, and should not stay at the
	// size of the biggest output it ever held.
	freeAfter = 16 << 20
	// resultOutputMax is the most WaitJob and RunJob return of a stream,
	// so that a whole result fits gRPC's default 4 MiB message limit.
	resultOutputMax = 2<<20 - 4<<10
)

// outputBudget is the agent-wide bound on the job output kept: the sum of
// the bytes kept by the jobs the agent still answers for.
type outputBudget struct {
	limit int64
	used  atomic.Int64
}

// over reports whether more than the budget is in use.
func (b *outputBudget) over() bool { return b != nil && b.used.Load() > b.limit }

func (b *outputBudget) add(n int64) {
	if b != nil {
		b.used.Add(n)
	}
}

// record is one read of a job's stream; seq orders the records of both
// streams as they were read. Its data is never changed once recorded, so
// that followers may send it without a copy.
type record struct {
	seq  uint64
	data []byte
}

// streamOutput is what the agent keeps of one stream: the tail of what
// the job wrote.
type streamOutput struct {
	recs    []record
	kept    int64 // bytes in recs
	written int64 // bytes the job wrote in all
}

// output keeps a job's stdout and stderr in order, so that streams can be
// replayed from the start to any number of followers. Of each stream it
// keeps the last limit bytes, and while the agent's budget is spent only
// the last outputFloor bytes (or limit, if smaller): the oldest bytes go
// first, and the stream is then truncated.
type output struct {
	limit  int64         // per stream; 0 is DefaultOutputCap
	budget *outputBudget // nil: no agent-wide bound

	mu       sync.Mutex
	streams  [2]streamOutput
	seq      uint64
	changed  chan struct{}
	closed   bool
	released bool
}

func (o *output) write(stream pb.JobOutput_Stream, p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := &o.streams[stream]
	s.written += int64(len(p))
	if len(p) == 0 || o.released {
		return
	}
	o.seq++
	s.recs = append(s.recs, record{seq: o.seq, data: append([]byte(nil), p...)})
	s.kept += int64(len(p))
	o.budget.add(int64(len(p)))
	o.trim(s)
	o.notify()
}

// trim drops the oldest bytes of s while it keeps more than its limit, or
// more than its floor while the budget is spent.
func (o *output) trim(s *streamOutput) {
	limit := o.limit
	if limit <= 0 {
		limit = DefaultOutputCap
	}
	floor := min(limit, outputFloor)
	for len(s.recs) > 0 {
		var excess int64
		switch {
		case s.kept > limit:
			excess = s.kept - limit
		case s.kept > floor && o.budget.over():
			excess = min(s.kept-floor, o.budget.used.Load()-o.budget.limit)
		default:
			return
		}
		r := &s.recs[0]
		n := min(excess, int64(len(r.data)))
		if n == int64(len(r.data)) {
			s.recs[0] = record{}
			s.recs = s.recs[1:]
		} else {
			r.data = r.data[n:]
		}
		s.kept -= n
		o.budget.add(-n)
	}
}

func (o *output) notify() {
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
}

func (o *output) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.notify()
}

// release drops the output and gives its bytes back to the budget: the
// agent no longer answers for the job. What followers hold stays theirs.
// It returns how many bytes it dropped.
func (o *output) release() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.released {
		return 0
	}
	o.released = true
	n := o.streams[0].kept + o.streams[1].kept
	o.budget.add(-n)
	for i := range o.streams {
		o.streams[i].recs, o.streams[i].kept = nil, 0
	}
	return n
}

// chunk is a record of a stream.
type chunk struct {
	stream pb.JobOutput_Stream
	record
}

// from returns the records numbered next or later, of both streams in
// order, whether the output is complete, and a channel closed when more
// arrives.
func (o *output) from(next uint64) ([]chunk, bool, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.changed == nil {
		o.changed = make(chan struct{})
	}
	var tails [2][]record
	for i := range o.streams {
		recs := o.streams[i].recs
		k := sort.Search(len(recs), func(k int) bool { return recs[k].seq >= next })
		tails[i] = recs[k:]
	}
	out := make([]chunk, 0, len(tails[0])+len(tails[1]))
	for len(tails[0])+len(tails[1]) > 0 {
		i := 0
		if len(tails[0]) == 0 || len(tails[1]) > 0 && tails[1][0].seq < tails[0][0].seq {
			i = 1
		}
		out = append(out, chunk{pb.JobOutput_Stream(i), tails[i][0]})
		tails[i] = tails[i][1:]
	}
	return out, o.closed, o.changed
}

// size returns how many bytes the job wrote to stream and whether the
// agent kept fewer.
func (o *output) size(stream pb.JobOutput_Stream) (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := &o.streams[stream]
	return s.written, s.kept < s.written
}

// tail returns the last max bytes kept of stream, and whether it left
// kept bytes out.
func (o *output) tail(stream pb.JobOutput_Stream, max int64) ([]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := &o.streams[stream]
	n := min(s.kept, max)
	b := make([]byte, n)
	at := n
	for i := len(s.recs) - 1; i >= 0 && at > 0; i-- {
		d := s.recs[i].data
		if int64(len(d)) > at {
			d = d[int64(len(d))-at:]
		}
		at -= int64(copy(b[at-int64(len(d)):], d))
	}
	return b, n < s.kept
}
