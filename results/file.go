package results

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SchemaJSON is the JSON Schema (draft 2020-12) of results.json.
//
//go:embed schema.json
var SchemaJSON []byte

// schemaURL is the $id of schema.json.
const schemaURL = "https://lnst-go.github.io/schema/results/v1.json"

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaJSON))
	if err != nil {
		return nil, fmt.Errorf("read the results schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("load the results schema: %w", err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("compile the results schema: %w", err)
	}
	return s, nil
})

// Validate checks that data is a results.json document valid against
// SchemaJSON. Its error names each field at fault by its JSON pointer
// ("at '/recipes/0': missing property 'verdict'").
func Validate(data []byte) error {
	s, err := compiled()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("does not match the results schema %s: %w", SchemaVersion, err)
	}
	return nil
}

// Write writes r as dir/results.json, making dir if needed. The file is
// replaced atomically: a reader sees the old file or the new one, never a
// part of it, and once Write returns the new one stays after a power loss.
// r is validated first, so Write never leaves a file Read would refuse.
// The file is readable by its owner only (0600): it holds what jobs
// printed, which may be a root job's secrets.
func Write(dir string, r *Run) error {
	return writeFile(dir, FileName, r)
}

// WriteRun writes r as dir/ResultsName(r.ID), atomically as Write does,
// and makes dir/results.json another name of it: results.json is the
// latest run's.
func WriteRun(dir string, r *Run) error {
	if r.ID == "" {
		return fmt.Errorf("write results to %s: the run has no id", dir)
	}
	name := ResultsName(r.ID)
	if err := writeFile(dir, name, r); err != nil {
		return err
	}
	return linkLatest(dir, name, func() error { return writeFile(dir, FileName, r) })
}

// linkLatest makes dir/results.json another name of dir/name: a hard
// link, replaced atomically; where the file system has none, copy writes
// a copy.
func linkLatest(dir, name string, copy func() error) error {
	tmp := filepath.Join(dir, ".results-link-"+name)
	os.Remove(tmp)
	if err := os.Link(filepath.Join(dir, name), tmp); err != nil {
		return copy()
	}
	if err := os.Rename(tmp, filepath.Join(dir, FileName)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write results: %w", err)
	}
	return syncDir(dir)
}

func writeFile(dir, name string, r *Run) error {
	data, err := json.MarshalIndent(normalized(r), "", "  ")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	data = append(data, '\n')
	if err := Validate(data); err != nil {
		return fmt.Errorf("write results to %s: %w", dir, err)
	}
	return writeBytes(dir, name, data)
}

// writeBytes replaces dir/name with data atomically: a temporary file,
// synced, renamed, and the directory synced.
func writeBytes(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	f, err := os.CreateTemp(dir, ".results-*.json")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write results: %w", err)
	}
	return syncDir(dir)
}

// Read reads and validates a results.json file. A directory is taken as
// the directory holding one.
func Read(path string) (*Run, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, FileName)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	if err := Validate(data); err != nil {
		return nil, fmt.Errorf("read results %s: %w", path, err)
	}
	var r Run
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read results %s: %w", path, err)
	}
	return &r, nil
}

// normalized returns a copy of r with empty lists where r has nil ones,
// as the schema wants lists, never null.
func normalized(r *Run) *Run {
	n := *r
	n.Args = orEmpty(n.Args)
	n.Hosts = orEmpty(n.Hosts)
	n.Recipes = make([]Recipe, len(r.Recipes))
	for i, rc := range r.Recipes {
		rc.Jobs = orEmpty(rc.Jobs)
		rc.Records = slices.Clone(orEmpty(rc.Records))
		for j, rec := range rc.Records {
			if rec.Value == nil {
				rc.Records[j].Value = json.RawMessage("null")
			}
		}
		n.Recipes[i] = rc
	}
	if r.Running != nil {
		n.Running = make([]RunningRecipe, len(r.Running))
		for i, rr := range r.Running {
			rr.Jobs = orEmpty(rr.Jobs)
			n.Running[i] = rr
		}
	}
	return &n
}

// compiledRecipe is the schema of one recipe ($defs/recipe).
var compiledRecipe = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaJSON))
	if err != nil {
		return nil, fmt.Errorf("read the results schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("load the results schema: %w", err)
	}
	s, err := c.Compile(schemaURL + "#/$defs/recipe")
	if err != nil {
		return nil, fmt.Errorf("compile the results schema: %w", err)
	}
	return s, nil
})

// RunFile writes a run's results file again and again as its recipes end
// (WriteRun's file): each recipe is encoded and validated once, when it
// is added, so that a rewrite costs the copy of the bytes, not the
// encoding and validation of every recipe so far.
type RunFile struct {
	dir     string
	mu      sync.Mutex
	recipes [][]byte
}

// NewRunFile returns the RunFile of a run writing into dir.
func NewRunFile(dir string) *RunFile { return &RunFile{dir: dir} }

// AddRecipe encodes and validates rc, a recipe that ended, for the
// writes to come.
func (f *RunFile) AddRecipe(rc Recipe) error {
	one := normalized(&Run{Recipes: []Recipe{rc}}).Recipes[0]
	data, err := json.MarshalIndent(one, "    ", "  ")
	if err != nil {
		return fmt.Errorf("write results: recipe %s: %w", rc.Name, err)
	}
	s, err := compiledRecipe()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err == nil {
		err = s.Validate(inst)
	}
	if err != nil {
		return fmt.Errorf("write results: recipe %s does not match the results schema %s: %w", rc.Name, SchemaVersion, err)
	}
	f.mu.Lock()
	f.recipes = append(f.recipes, data)
	f.mu.Unlock()
	return nil
}

// Write writes r, with the recipes added so far in the place of
// r.Recipes, as WriteRun does.
func (f *RunFile) Write(r *Run) error {
	if r.ID == "" {
		return fmt.Errorf("write results to %s: the run has no id", f.dir)
	}
	head := *r
	head.Recipes = nil
	data, err := json.MarshalIndent(normalized(&head), "", "  ")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := Validate(data); err != nil {
		return fmt.Errorf("write results to %s: %w", f.dir, err)
	}
	// No string holds a newline: this is the top-level key.
	const empty = "\n  \"recipes\": [],"
	i := bytes.Index(data, []byte(empty))
	if i < 0 {
		return fmt.Errorf("write results to %s: no recipes list in the encoded run", f.dir)
	}
	f.mu.Lock()
	var b bytes.Buffer
	b.Grow(len(data) + len(f.recipes)*1024)
	b.Write(data[:i])
	b.WriteString("\n  \"recipes\": [")
	for k, rc := range f.recipes {
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    ")
		b.Write(rc)
	}
	if len(f.recipes) > 0 {
		b.WriteString("\n  ")
	}
	f.mu.Unlock()
	b.WriteString("],")
	b.Write(data[i+len(empty):])
	b.WriteByte('\n')
	name := ResultsName(r.ID)
	if err := writeBytes(f.dir, name, b.Bytes()); err != nil {
		return err
	}
	return linkLatest(f.dir, name, func() error { return writeBytes(f.dir, FileName, b.Bytes()) })
}
