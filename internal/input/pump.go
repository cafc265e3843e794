package input

import (
	"context"
	"time"

	"github.com/elastic/beats/v7/libbeat/beat"

	"github.com/teleportbeat/teleportbeat/internal/audit"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/event"
)

// observer sees every audit event before it is mapped (session.upload
// registration, the failed-login lock). Mapping takes the event's fields
// for the document, so observers must run first.
type observer func(e *event.Event)

// pump is the audit path's loop: observe, map, publish. The reader's
// batches come with complete positions (audit.Batch); the output's
// acknowledgements go from the publisher to the reader (Reader.Acked),
// not through here.
type pump struct {
	batches   <-chan audit.Batch
	observers []observer
	mapper    *ecs.Mapper
	pub       *cursor.Publisher[*cursor.Position]
	// hold waits while positions cannot be persisted; false when ctx ends.
	hold func(ctx context.Context) bool
	now  func() time.Time

	events []beat.Event
}

// run publishes batches until ctx is done.
func (p *pump) run(ctx context.Context) {
	for {
		if !p.hold(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case b := <-p.batches:
			p.handle(b)
		}
	}
}

// publishChunk is how many events are mapped before they are published.
const publishChunk = 64

// handle publishes one batch.
func (p *pump) handle(b audit.Batch) {
	if n := len(b.Events); n > 0 {
		now := p.now()
		// Published in chunks: only a chunk of mapped events is alive at
		// once (the queue keeps them encoded), not the whole page.
		for start := 0; start < n; start += publishChunk {
			end := min(start+publishChunk, n)
			p.events = p.events[:0]
			for _, e := range b.Events[start:end] {
				// The payload is decoded here, not when read: what is
				// read ahead holds only the event's bytes (event.Load).
				// An error is the mapper's to tag.
				_ = e.Load()
				for _, o := range p.observers {
					o(e)
				}
				p.events = append(p.events, p.mapper.Map(e, now))
			}
			p.pub.Publish(p.events, b.Positions[start:end])
			clear(p.events) // the queue holds them now
			for _, e := range b.Events[start:end] {
				e.Unload()
			}
		}
	}
	if b.Advance != nil {
		p.pub.Advance(b.Advance)
	}
}
