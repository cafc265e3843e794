// Package cursor keeps teleportbeat's place in the Teleport audit log: the
// position type, the ACK tracker that turns output acknowledgements into
// positions in publish order, and the store that persists the latest
// acknowledged position in libbeat's registry.
package cursor

import (
	"fmt"
	"time"
)

// Position is where reading resumes: the search window's start, the start
// key of the page being read within it, and the ids of the events of that
// page that are done (acknowledged by the output, or skipped by the event
// type filter).
//
// Teleport only returns a next-page key when a page is full, so the reader
// keeps re-reading the last, partial page of a window (with the same start
// key) until it fills up. The ids of the page's finished events are what
// lets a restart, or that re-read, skip exactly what was already sent, even
// when a late event was inserted in the middle of the page.
//
// Two stores keep it: the registry, as a record with the same field names
// (store.go: libbeat's statestore encodes with `struct` tags, and the
// export progress is flattened there into export, export_chunks and
// export_done_chunks); and the backup file (backup.go), whose copy of the
// position is this struct as JSON (the tags below), read back when the
// registry cannot be.
type Position struct {
	// WindowStart is the `from` of the current search window.
	WindowStart time.Time `json:"window_start"`
	// WindowEnd is the `to` of the current search window when it is a
	// closed window read in parts (a backfill); zero for the open window,
	// whose end moves with the clock. A start key is valid for the search
	// it came from and any later `to`, so a restart resumes the part with
	// the same bounds.
	WindowEnd time.Time `json:"window_end,omitzero"`
	// StartKey is the start key of the current page ("" for the first page
	// of the window).
	StartKey string `json:"start_key,omitempty"`
	// Done lists the ids of the page's events that are done.
	Done []string `json:"done,omitempty"`
	// LastEventTime is the time of the newest event acknowledged, for the
	// lag metric.
	LastEventTime time.Time `json:"last_event_time,omitzero"`
	// Export, when set, is the progress through the UTC day that starts at
	// WindowStart, read with Teleport's export API instead of searches.
	Export *ExportProgress `json:"export,omitempty"`
	// Sweeps are the cursors of the late-event sweeps, one per sweep age:
	// the event time up to which each has read the recent past, with every
	// late event found before it acknowledged.
	Sweeps []time.Time `json:"sweeps,omitempty"`
}

// ExportProgress is where the export of one day stands. The export API
// serves a day as chunks (Athena's Parquet files), in no order and in
// parallel, each with a cursor after every event; so the progress is per
// chunk: the chunks finished, and the cursor after the last acknowledged
// event of each chunk begun.
type ExportProgress struct {
	// Chunks maps a chunk begun but not finished to the cursor to resume
	// it from.
	Chunks map[string]string `json:"chunks,omitempty"`
	// DoneChunks lists the chunks whose events are all done.
	DoneChunks []string `json:"done_chunks,omitempty"`
}

// Validate checks a position read back from the registry.
func (p *Position) Validate() error {
	if p.WindowStart.IsZero() {
		return fmt.Errorf("position has no window_start")
	}
	if !p.WindowEnd.IsZero() && !p.WindowEnd.After(p.WindowStart) {
		return fmt.Errorf("position has window_end %s not after window_start %s", p.WindowEnd.Format(time.RFC3339Nano), p.WindowStart.Format(time.RFC3339Nano))
	}
	if p.Export != nil && !p.WindowStart.Equal(p.WindowStart.UTC().Truncate(24*time.Hour)) {
		return fmt.Errorf("position has export progress, but window_start %s is not a UTC midnight", p.WindowStart.Format(time.RFC3339Nano))
	}
	return nil
}
