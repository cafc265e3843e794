// Package samples holds teleportbeat's sample Teleport audit events: the
// corpus of real events collected from Teleport's own fixtures, and a
// generator of realistic events in volume. They are field maps, as
// Teleport's JSON has them: the Teleport double (internal/testkit/teleporttest)
// serves them, the build (internal/build/generate) maps them into the Fleet
// package's sample documents, the tests and the benchmark read them.
package samples

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// The sample events are real Teleport audit events collected from
// Teleport's own fixtures (see corpus/SOURCES.md). They are embedded so the
// double, the demo and the tests work on a fresh machine.
//
//go:embed corpus/*.ndjson
var corpusFS embed.FS

// CorpusFiles lists the embedded sample files.
func CorpusFiles() []string {
	entries, _ := fs.Glob(corpusFS, "corpus/*.ndjson")
	sort.Strings(entries)
	return entries
}

// CorpusBytes returns the raw content of one embedded sample file.
func CorpusBytes(name string) ([]byte, error) {
	return corpusFS.ReadFile(name)
}

// CorpusFields returns every sample event as decoded JSON fields, in file
// order. Numbers are decoded as float64, as Teleport's JSON decoding does.
func CorpusFields() ([]map[string]any, error) {
	var out []map[string]any
	for _, name := range CorpusFiles() {
		b, err := corpusFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		line := 0
		for sc.Scan() {
			line++
			text := strings.TrimSpace(sc.Text())
			if text == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(text), &m); err != nil {
				return nil, fmt.Errorf("%s line %d: %w", name, line, err)
			}
			out = append(out, m)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	return out, nil
}
