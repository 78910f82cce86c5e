// Package results is the schema of results.json, the file a recipe run
// writes under -lnst.results=DIR: the run (when, with which arguments, on
// which hosts), each recipe with its verdict, every job it ran and every
// value it recorded, among them perf Measurements.
//
// The Go types here are the schema; schema.json (JSON Schema draft
// 2020-12, embedded as SchemaJSON) describes the same file for tools in
// other languages, and Validate checks a file against it. Conventions:
//
//   - Field names are snake_case.
//   - Times are RFC 3339 strings with nanoseconds, as time.Time marshals.
//   - Durations (the Duration type) are JSON numbers of seconds
//     ("duration": 2.0051).
//   - Rates are in the Measurement's Unit, "bit/s", not scaled.
//   - CPU utilisation is a percentage of every CPU of the host, 0 to 100.
//
// A file is written with Write (atomically) and read with Read, which
// validates it first:
//
//	r := &results.Run{Schema: results.SchemaVersion, Start: start, End: time.Now()}
//	if err := results.Write(dir, r); err != nil { ... }
//	r, err := results.Read(filepath.Join(dir, results.FileName))
//
// A run with an id (Run.ID) also writes, as it goes, its events file
// (EventsName: one Event a JSON line, appended with an EventLog, which
// holds an flock while the run lives) and its results file (ResultsName,
// written with WriteRun after every recipe; results.json is another name
// of the latest run's). ListRuns lists the runs of a directory, LoadRun
// reads one (rebuilt from its events when the run died before writing
// them all), Rebuild writes that back, and WriteStatus shows a run as
// lnst status does.
package results
