package results

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// A run writes what happens, as it happens, to its events file in the
// results directory, EventsName(id): one JSON Event a line, appended and
// never rewritten. The run holds an exclusive flock(2) on the file while
// it lives, so a reader tells a running run from one that died (the
// kernel drops the lock with the process, SIGKILL included).

// Types of events (Event.Type).
const (
	// EventRunStarted: Run holds the run's header (id, start, args,
	// pool), PID the test binary's process id. Always the first event.
	EventRunStarted = "run_started"
	// EventHost: Host is a machine the run uses, on its first use.
	EventHost = "host"
	// EventRecipeStarted: Recipe started to use lnsttest.
	EventRecipeStarted = "recipe_started"
	// EventMatch: Recipe got the hosts Match describes.
	EventMatch = "match"
	// EventJobStarted: Job (Key, Host, ID, Command, Desc, Start) started
	// in Recipe. ID is 0 for a foreground job; when its agent tells the
	// job's number at its start, a second job_started of the same Key
	// has it (an older agent tells it only at the end).
	EventJobStarted = "job_started"
	// EventJobEnded: the job of the same Key ended; Job is the whole
	// results.json job.
	EventJobEnded = "job_ended"
	// EventRecord: Recipe recorded Record (Kind KindMeasurement for a
	// measurement).
	EventRecord = "record"
	// EventRecipeEnded: Result is the recipe as results.json holds it.
	EventRecipeEnded = "recipe_ended"
	// EventDeadline: the test binary's deadline (-test.timeout) is near;
	// Running are the recipes and jobs still running.
	EventDeadline = "deadline"
	// EventRunEnded: the run ended; State is StateEnded or
	// StateInterrupted. Always the last event of a run that ended.
	EventRunEnded = "run_ended"
)

// Event is one line of an events file.
type Event struct {
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Type is one of the Event* constants.
	Type string `json:"type"`
	// Recipe is the name of the recipe the event is about.
	Recipe  string          `json:"recipe,omitempty"`
	Run     *Run            `json:"run,omitempty"`
	PID     int             `json:"pid,omitempty"`
	Host    *HostInfo       `json:"host,omitempty"`
	Match   string          `json:"match,omitempty"`
	Job     *EventJob       `json:"job,omitempty"`
	Record  *Record         `json:"record,omitempty"`
	Result  *Recipe         `json:"result,omitempty"`
	State   string          `json:"state,omitempty"`
	Running []RunningRecipe `json:"running,omitempty"`
}

// EventJob is the job of a job_started or job_ended event.
type EventJob struct {
	// Key pairs a job's started and ended events: unique in the run
	// (job ids are per host, and a foreground job's is not known when it
	// starts).
	Key int `json:"key"`
	Job
}

// NewRunID returns a new run id: the UTC time and a random suffix,
// "20260301-120000-a1b2c3", so that ids sort by start.
func NewRunID(now time.Time) string {
	var r [3]byte
	rand.Read(r[:])
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(r[:])
}

// EventsName is the file name of run id's events file.
func EventsName(id string) string { return "events-" + id + ".jsonl" }

// ResultsName is the file name of run id's results file; FileName
// (results.json) is another name of the latest run's.
func ResultsName(id string) string { return "results-" + id + ".json" }

// EventLog appends events to a run's events file.
type EventLog struct {
	path string
	f    *os.File

	mu      sync.Mutex
	written int64 // events written
	err     error // the first write error

	syncMu sync.Mutex
	synced int64 // events known on disk
	kick   chan struct{}
	done   chan struct{}
}

// CreateEventLog creates run id's events file in dir (which must exist)
// and takes its lock. The file is the run's own: it fails if the file
// exists, if dir is not writable, or if another process holds it.
func CreateEventLog(dir, id string) (*EventLog, error) {
	path := filepath.Join(dir, EventsName(id))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	l := &EventLog{path: path, f: f, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go l.flusher()
	return l, nil
}

// Path is the events file's path.
func (l *EventLog) Path() string { return l.path }

// Append writes e as a line of the file at once (a process killed after
// Append returns has it in the file) and has it synced to disk soon
// after, with any other events appended meanwhile: Sync waits for that.
// A zero e.Time is now.
func (l *EventLog) Append(e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("event %s: %w", e.Type, err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	if l.err == nil {
		if _, err := l.f.Write(line); err != nil {
			l.err = fmt.Errorf("write %s: %w", l.path, err)
		}
		l.written++
	}
	err = l.err
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return err
}

// flusher syncs the file after appends, one fsync for every event
// appended while the previous one ran.
func (l *EventLog) flusher() {
	for {
		select {
		case <-l.kick:
			l.Sync()
		case <-l.done:
			return
		}
	}
}

// Sync returns once every event appended before it is on disk.
func (l *EventLog) Sync() error {
	l.mu.Lock()
	want := l.written
	err := l.err
	l.mu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err != nil || l.synced >= want {
		return err
	}
	// Everything written until now is covered, not only want.
	l.mu.Lock()
	upto := l.written
	l.mu.Unlock()
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", l.path, err)
	}
	l.synced = upto
	return nil
}

// AppendSync appends e and waits until it is on disk.
func (l *EventLog) AppendSync(e Event) error {
	if err := l.Append(e); err != nil {
		return err
	}
	return l.Sync()
}

// Close syncs the file, releases its lock and closes it.
func (l *EventLog) Close() error {
	err := l.Sync()
	close(l.done)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadEvents reads an events file. A last line cut short (the run was
// killed, or the machine lost power, while writing it) is left out and
// reported by torn; any other line that is not an event is an error
// naming the file and line.
func ReadEvents(path string) (events []Event, torn bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("read events: %w", err)
	}
	defer f.Close()
	return readEvents(path, f)
}

func readEvents(path string, r io.Reader) ([]Event, bool, error) {
	br := bufio.NewReader(r)
	var events []Event
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return events, false, fmt.Errorf("read events %s: %w", path, err)
		}
		last := errors.Is(err, io.EOF)
		if last && len(line) == 0 {
			return events, false, nil
		}
		var e Event
		perr := json.Unmarshal(line, &e)
		if perr == nil && e.Type == "" {
			perr = errors.New("no event type")
		}
		if perr != nil {
			// What a cut write leaves: a line without its newline, or
			// (a power loss, the size on disk ahead of the data) zeros.
			if last || len(bytes.Trim(line, "\x00\n")) == 0 {
				if rest, _ := io.ReadAll(br); len(bytes.Trim(rest, "\x00\n")) == 0 {
					return events, true, nil
				}
			}
			return events, false, fmt.Errorf("%s:%d: not an event: %v", path, n, perr)
		}
		events = append(events, e)
		if last {
			return events, false, nil
		}
	}
}

// syncDir syncs directory dir, so that a file made or renamed in it
// stays after a power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
