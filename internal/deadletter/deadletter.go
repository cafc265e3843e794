// Package deadletter keeps the events an output can never deliver: each is
// appended, whole, with its uid and the reason, to an NDJSON file of the
// day under path.data/dead-letter, so that nothing teleportbeat read is
// lost silently. The files are the operator's to inspect and to replay
// (each line's "document" is the event as the output would have sent it).
package deadletter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Dir is the directory, below path.data, of the dead-letter files.
const Dir = "dead-letter"

// Writer appends dead letters to the day's file in its directory.
type Writer struct {
	dir string
	now func() time.Time

	mu sync.Mutex
}

// New returns a writer into dir (created on the first write, 0700; files
// 0600: events can hold what the audit log holds).
func New(dir string) *Writer { return &Writer{dir: dir, now: time.Now} }

// Dir is the writer's directory.
func (w *Writer) Dir() string { return w.dir }

// Record is one line of a dead-letter file.
type Record struct {
	Time    time.Time       `json:"@timestamp"`
	EventID string          `json:"event_id"`
	Output  string          `json:"output"`
	Reason  string          `json:"reason"`
	Doc     json.RawMessage `json:"document"`
}

// Write appends the document (JSON) of the event with the given uid, and
// returns the file written.
func (w *Writer) Write(output, eventID, reason string, doc []byte) (string, error) {
	if !json.Valid(doc) {
		// Keep it anyway, as a JSON string.
		doc, _ = json.Marshal(string(doc))
	}
	rec := Record{Time: w.now().UTC(), EventID: eventID, Output: output, Reason: reason, Doc: doc}
	line, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode dead letter of event %s: %w", eventID, err)
	}
	line = append(line, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return "", fmt.Errorf("create dead-letter directory %s: %w", w.dir, err)
	}
	path := filepath.Join(w.dir, "teleportbeat-"+rec.Time.Format("2006-01-02")+".ndjson")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("open dead-letter file: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return "", fmt.Errorf("write dead-letter file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("sync dead-letter file %s: %w", path, err)
	}
	return path, f.Close()
}

// Read returns every record of the files in dir (for tests and tools).
func Read(dir string) ([]Record, error) {
	files, err := filepath.Glob(filepath.Join(dir, "teleportbeat-*.ndjson"))
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		for dec.More() {
			var r Record
			if err := dec.Decode(&r); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}
