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
type Position struct {
	// WindowStart is the `from` of the current search window.
	WindowStart time.Time `json:"window_start"`
	// StartKey is the start key of the current page ("" for the first page
	// of the window).
	StartKey string `json:"start_key,omitempty"`
	// Done lists the ids of the page's events that are done.
	Done []string `json:"done,omitempty"`
	// LastEventTime is the time of the newest event acknowledged, for the
	// lag metric.
	LastEventTime time.Time `json:"last_event_time,omitzero"`
}

// Validate checks a position read back from the registry.
func (p *Position) Validate() error {
	if p.WindowStart.IsZero() {
		return fmt.Errorf("position has no window_start")
	}
	return nil
}
