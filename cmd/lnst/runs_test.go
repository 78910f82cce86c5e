package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lnst-go/lnst/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// diedRun writes into dir the files of a run that was killed while its
// third recipe ran: its events, and a results file written after its
// first recipe only (it died before rewriting it after the second).
func diedRun(t *testing.T, dir string) string {
	t.Helper()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	id := results.NewRunID(start)
	l, err := results.CreateEventLog(dir, id)
	require.NoError(t, err)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	run := &results.Run{Schema: results.SchemaVersion, Start: start, Args: []string{}, Pool: "lab:netns", ID: id, State: results.StateRunning}
	require.NoError(t, l.Append(results.Event{Time: at(0), Type: results.EventRunStarted, Run: run, PID: 99}))
	for i, name := range []string{"TestA", "TestB", "TestC"} {
		s := 10 * i
		require.NoError(t, l.Append(results.Event{Time: at(s), Type: results.EventRecipeStarted, Recipe: name}))
		require.NoError(t, l.Append(results.Event{Time: at(s), Type: results.EventMatch, Recipe: name, Match: "h1=lab:h1.1"}))
		j := results.Job{Host: "h1", ID: i + 1, Command: "sleep 600", Start: at(s + 1)}
		require.NoError(t, l.Append(results.Event{Time: at(s + 1), Type: results.EventJobStarted, Recipe: name, Job: &results.EventJob{Key: i + 1, Job: j}}))
		if name == "TestC" {
			break
		}
		j.Verdict = results.Pass
		require.NoError(t, l.Append(results.Event{Time: at(s + 2), Type: results.EventJobEnded, Recipe: name, Job: &results.EventJob{Key: i + 1, Job: j}}))
		rc := results.Recipe{Name: name, Match: "h1=lab:h1.1", Verdict: results.Pass, Start: at(s), Duration: results.Duration(3 * time.Second), Jobs: []results.Job{j}}
		require.NoError(t, l.AppendSync(results.Event{Time: at(s + 3), Type: results.EventRecipeEnded, Recipe: name, Result: &rc}))
		if i == 0 {
			run.Recipes = append(run.Recipes, rc)
			require.NoError(t, results.WriteRun(dir, run))
		}
	}
	require.NoError(t, l.Close())
	return id
}

func TestResultsListsRunsOfADir(t *testing.T) {
	dir := t.TempDir()
	id := diedRun(t, dir)
	code, out, errOut := runCmd("results", dir)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^`+id+` +2026-03-01 12:00:00 UTC +died +2 +0 +0 +1 +rebuilt from events-`+id+`\.jsonl$`, out)
	assert.Regexp(t, `TestA +PASS`, out)
	assert.Regexp(t, `TestB +PASS`, out, "the recipe only the events file holds")
	assert.Contains(t, out, "not ended: TestC (started 12:00:20, hosts h1=lab:h1.1)\n  h1 job 3: sleep 600\n")

	before, err := os.ReadFile(filepath.Join(dir, results.ResultsName(id)))
	require.NoError(t, err)
	assert.NotContains(t, string(before), "TestB", "lnst results rewrites nothing")

	code, out, errOut = runCmd("results", "rebuild", dir)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, id+": rebuilt results-"+id+".json from events-"+id+".jsonl: 2 recipes (died)\n", out)
	run, err := results.Read(dir)
	require.NoError(t, err)
	assert.Len(t, run.Recipes, 2)
	assert.Equal(t, results.StateDied, run.State)
	code, out, _ = runCmd("results", "rebuild", dir)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "is up to date (died)")

	code, out, errOut = runCmd("status", dir)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "run "+id+" (pid 99, lab:netns): died before its end")
	assert.Contains(t, out, "RUNNING WHEN IT ENDED\n  TestC")
	assert.Regexp(t, `(?m)^RESULTS SUMMARY\n  TestA +PASS +3s +jobs 1\n  TestB +PASS`, out)
}

func TestResultsCorruptEvents(t *testing.T) {
	dir := t.TempDir()
	id := diedRun(t, dir)
	ev := filepath.Join(dir, results.EventsName(id))
	data, err := os.ReadFile(ev)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(data), "\n")
	lines[2] = "{\"time\": oops\n"
	require.NoError(t, os.WriteFile(ev, []byte(strings.Join(lines, "")), 0o600))

	code, out, errOut := runCmd("results", dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "lnst: run "+id+": "+ev+":3: not an event: ")
	assert.Regexp(t, `TestA +PASS`, out, "what the results file holds is still shown")

	code, _, errOut = runCmd("results", "rebuild", dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, ev+":3: not an event")
	run, err := results.Read(filepath.Join(dir, results.ResultsName(id)))
	require.NoError(t, err)
	assert.Len(t, run.Recipes, 1, "the results file is left as it was")

	code, _, errOut = runCmd("status", dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, ev+":3: not an event")

	// A cut last line is what a killed run leaves: no error.
	require.NoError(t, os.WriteFile(ev, append(data, `{"time":"2026-03-01T12:00:3`...), 0o600))
	code, out, errOut = runCmd("results", dir)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "last event cut short")

	code, _, errOut = runCmd("status", filepath.Join(t.TempDir(), "none"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no such file or directory")
	code, _, errOut = runCmd("status")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "want a results directory")
}
