package results

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeEvents writes a run's events as lnsttest does: recipes r1 and r2
// ended, r3 still running a job. It returns the log, still open (the run
// lives), and the run's id.
func writeEvents(t *testing.T, dir string) (*EventLog, string) {
	t.Helper()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	id := NewRunID(start)
	l, err := CreateEventLog(dir, id)
	require.NoError(t, err)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	head := &Run{Schema: SchemaVersion, Start: start, Args: []string{"-test.v"}, Pool: "lab:netns", ID: id, State: StateRunning}
	require.NoError(t, l.Append(Event{Time: at(0), Type: EventRunStarted, Run: head, PID: 4242}))
	require.NoError(t, l.Append(Event{Time: at(0), Type: EventHost, Host: &HostInfo{Name: "lab:h1.1", Kernel: "6.12", Arch: "x86_64", AgentVersion: "v0"}}))
	key := 0
	for i, name := range []string{"r1", "r2", "r3"} {
		s := 10 * i
		require.NoError(t, l.Append(Event{Time: at(s), Type: EventRecipeStarted, Recipe: name}))
		require.NoError(t, l.Append(Event{Time: at(s + 1), Type: EventMatch, Recipe: name, Match: "h1=lab:h1.1"}))
		key++
		j := Job{Host: "h1", ID: i + 1, Command: "echo " + name, Start: at(s + 2)}
		require.NoError(t, l.Append(Event{Time: at(s + 2), Type: EventJobStarted, Recipe: name, Job: &EventJob{Key: key, Job: j}}))
		if name == "r3" {
			break
		}
		j.Verdict, j.Duration = Pass, Duration(time.Second)
		require.NoError(t, l.Append(Event{Time: at(s + 3), Type: EventJobEnded, Recipe: name, Job: &EventJob{Key: key, Job: j}}))
		rec := NewRecord("note", name)
		require.NoError(t, l.Append(Event{Time: at(s + 3), Type: EventRecord, Recipe: name, Record: &rec}))
		rc := &Recipe{Name: name, Match: "h1=lab:h1.1", Verdict: Pass, Start: at(s), Duration: Duration(4 * time.Second),
			Jobs: []Job{j}, Records: []Record{rec}}
		require.NoError(t, l.AppendSync(Event{Time: at(s + 4), Type: EventRecipeEnded, Recipe: name, Result: rc}))
	}
	require.NoError(t, l.Sync())
	return l, id
}

func TestEventsFoldAndLive(t *testing.T) {
	dir := t.TempDir()
	l, id := writeEvents(t, dir)
	files, err := ListRuns(dir)
	require.NoError(t, err)
	require.Equal(t, []RunFiles{{ID: id, Events: filepath.Join(dir, EventsName(id))}}, files)

	lr, err := LoadRun(files[0])
	require.NoError(t, err)
	assert.Equal(t, StateRunning, lr.State, "the log's lock is held")
	assert.Equal(t, 4242, lr.PID)
	assert.True(t, lr.Rebuilt, "no results file: from the events")
	require.Len(t, lr.Run.Recipes, 2)
	assert.Equal(t, "r2", lr.Run.Recipes[1].Name)
	require.Len(t, lr.Run.Running, 1)
	assert.Equal(t, "r3", lr.Run.Running[0].Name)
	assert.Equal(t, "h1=lab:h1.1", lr.Run.Running[0].Match)
	require.Len(t, lr.Run.Running[0].Jobs, 1)
	assert.Equal(t, "echo r3", lr.Run.Running[0].Jobs[0].Command)

	var b bytes.Buffer
	WriteStatus(&b, lr, lr.Last.Add(5*time.Second))
	assert.Equal(t, "run "+id+" (pid 4242, lab:netns): running for 27s; recipes: 2 pass, 0 fail, 0 skip\n"+
		"RUNNING\n"+
		"  r3          7s  h1=lab:h1.1\n"+
		"    h1 job 3  5s  echo r3\n"+
		"LAST RESULTS\n"+
		"  r1  PASS  4s  jobs 1\n"+
		"  r2  PASS  4s  jobs 1\n", b.String())

	_, _, err = Rebuild(dir, files[0])
	assert.ErrorContains(t, err, "is still running (pid 4242)")

	require.NoError(t, l.Close())
	lr, err = LoadRun(files[0])
	require.NoError(t, err)
	assert.Equal(t, StateDied, lr.State, "no run_ended event, and no process holds the lock")
	wrote, _, err := Rebuild(dir, files[0])
	require.NoError(t, err)
	assert.True(t, wrote)
	run, err := Read(dir)
	require.NoError(t, err, "results.json names the rebuilt run, the directory's latest")
	assert.Equal(t, StateDied, run.State)
	assert.Len(t, run.Recipes, 2)
	assert.Len(t, run.Running, 1)
	assert.Equal(t, id, run.ID)
	wrote, lr, err = Rebuild(dir, RunFiles{ID: id, Events: files[0].Events, Results: filepath.Join(dir, ResultsName(id))})
	require.NoError(t, err)
	assert.False(t, wrote, "up to date")
	assert.False(t, lr.Rebuilt)
}

func TestReadEventsTornAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	l, id := writeEvents(t, dir)
	require.NoError(t, l.Close())
	path := filepath.Join(dir, EventsName(id))
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	all, torn, err := ReadEvents(path)
	require.NoError(t, err)
	require.False(t, torn)

	for _, tc := range []struct {
		name string
		data []byte
		torn bool
		err  string
	}{
		{"cut last line", append(good, []byte(`{"time":"2026-03-01T12:00:30Z","type":"job_st`)...), true, ""},
		{"zeros after a power loss", append(good, make([]byte, 300)...), true, ""},
		{"garbage in the middle", bytes.Replace(good, []byte("\n"), []byte("\nnot json\n"), 1), false, EventsName(id) + ":2: not an event: "},
		{"a line with no type", append([]byte("{}\n"), good...), false, EventsName(id) + ":1: not an event: no event type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), EventsName(id))
			require.NoError(t, os.WriteFile(p, tc.data, 0o600))
			events, torn, err := ReadEvents(p)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.torn, torn)
			assert.Len(t, events, len(all))
		})
	}
}

// TestCorruptEventsLoseNothing: with an events file corrupt in the
// middle, the results file is what a run shows, and Rebuild leaves it.
func TestCorruptEventsLoseNothing(t *testing.T) {
	dir := t.TempDir()
	l, id := writeEvents(t, dir)
	require.NoError(t, l.Close())
	f := RunFiles{ID: id, Events: filepath.Join(dir, EventsName(id)), Results: filepath.Join(dir, ResultsName(id))}
	wrote, _, err := Rebuild(dir, f)
	require.NoError(t, err)
	require.True(t, wrote)
	before, err := os.ReadFile(f.Results)
	require.NoError(t, err)

	data, err := os.ReadFile(f.Events)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(data), "\n")
	lines[3] = "\x01garbage\n"
	require.NoError(t, os.WriteFile(f.Events, []byte(strings.Join(lines, "")), 0o600))

	lr, err := LoadRun(f)
	require.ErrorContains(t, err, EventsName(id)+":4: not an event")
	require.NotNil(t, lr, "the results file is still shown")
	assert.Len(t, lr.Run.Recipes, 2)
	_, _, err = Rebuild(dir, f)
	require.ErrorContains(t, err, ":4: not an event")
	after, err := os.ReadFile(f.Results)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "Rebuild wrote nothing")
}

func TestCreateEventLogErrors(t *testing.T) {
	dir := t.TempDir()
	l, id := writeEvents(t, dir)
	defer l.Close()
	_, err := CreateEventLog(dir, id)
	assert.ErrorIs(t, err, os.ErrExist, "a run's events file is its own")
	_, err = CreateEventLog(filepath.Join(dir, "missing"), "x")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestWriteRunLinksResultsJSON: results.json is the latest run's results
// file, replaced with it.
func TestWriteRunLinksResultsJSON(t *testing.T) {
	dir := t.TempDir()
	r := fullRun()
	r.ID = "20260301-120000-aaaaaa"
	require.NoError(t, WriteRun(dir, r))
	r.Recipes = append(r.Recipes, r.Recipes[0])
	require.NoError(t, WriteRun(dir, r))
	got, err := Read(dir)
	require.NoError(t, err)
	assert.Len(t, got.Recipes, 2)
	a, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	b, err := os.Stat(filepath.Join(dir, ResultsName(r.ID)))
	require.NoError(t, err)
	assert.True(t, os.SameFile(a, b))
	assert.Equal(t, os.FileMode(0o600), a.Mode().Perm())
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 2, "no temporary file left")
	r.ID = ""
	assert.ErrorContains(t, WriteRun(dir, r), "the run has no id")
}

// TestRunFileWritesAsWriteRun: a RunFile's rewrite, made of recipes
// encoded once, is byte for byte the file WriteRun writes.
func TestRunFileWritesAsWriteRun(t *testing.T) {
	r := fullRun()
	r.ID = "20260301-120000-aaaaaa"
	r.State = StateDeadline
	r.Running = []RunningRecipe{{Name: "TestX", Start: r.Start, Jobs: []RunningJob{{Host: "h1", Command: "sleep 600", Start: r.Start}}}}
	r.Recipes = append(r.Recipes, Recipe{Name: "TestEmpty", Verdict: Skip, Start: r.Start})
	a, b := t.TempDir(), t.TempDir()
	f := NewRunFile(b)
	head := *r
	head.Recipes = nil
	require.NoError(t, f.Write(&head), "no recipe yet")
	got, err := Read(b)
	require.NoError(t, err)
	assert.Empty(t, got.Recipes)
	for _, rc := range r.Recipes {
		require.NoError(t, f.AddRecipe(rc))
	}
	require.NoError(t, f.Write(&head))
	require.NoError(t, WriteRun(a, r))
	want, err := os.ReadFile(filepath.Join(a, ResultsName(r.ID)))
	require.NoError(t, err)
	have, err := os.ReadFile(filepath.Join(b, FileName))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(have))

	bad := r.Recipes[0]
	bad.Verdict = "maybe"
	assert.ErrorContains(t, f.AddRecipe(bad), "recipe TestPerfTCP does not match the results schema")
}

// TestFoldForegroundJobNamed: a foreground job's job_started comes
// again, with the same key and the id its agent told at its start; the
// running job is then listed once, with that id.
func TestFoldForegroundJobNamed(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	j := Job{Host: "h2", Command: "sleep 600", Start: start.Add(time.Second)}
	named := j
	named.ID = 7
	run, _, _, _ := Fold([]Event{
		{Time: start, Type: EventRunStarted, Run: &Run{ID: "x", Start: start}},
		{Time: start, Type: EventRecipeStarted, Recipe: "r"},
		{Time: j.Start, Type: EventJobStarted, Recipe: "r", Job: &EventJob{Key: 1, Job: j}},
		{Time: j.Start, Type: EventJobStarted, Recipe: "r", Job: &EventJob{Key: 1, Job: named}},
	})
	require.Len(t, run.Running, 1)
	require.Len(t, run.Running[0].Jobs, 1)
	assert.Equal(t, 7, run.Running[0].Jobs[0].ID)
	assert.Equal(t, "sleep 600", run.Running[0].Jobs[0].Command)
}
