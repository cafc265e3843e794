package shipper

import (
	"context"
	"time"

	"github.com/elastic/beats/v7/libbeat/beat"

	"github.com/teleportbeat/teleportbeat/internal/auditlog"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/ecs"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/late"
)

// observer sees every audit event before it is mapped (session.upload
// registration, the failed-login lock). Mapping takes the event's fields
// for the document, so observers must run first.
type observer func(e *event.Event)

// pump is the audit path's loop: batches from the reader, observers,
// mapper, publisher with positions.
//
// Positions: every event of a batch from the head of the reader carries
// its own position; the late events of a sweep are published at the
// position of the head's last event (cur), and the sweep cursors reached
// after them ride on the positions that follow. A position that carries
// no sweep cursors gets the current ones; one that carries some keeps
// them (older cursors only make a restart sweep a little more), so no
// position is changed once it is handed over.
type pump struct {
	batches   <-chan auditlog.Batch
	observers []observer
	mapper    *ecs.Mapper
	pub       *cursor.Publisher[*cursor.Position]
	// acks marks published events acknowledged in the late-event set (nil
	// without sweeps).
	acks *late.Acks
	// hold waits while positions cannot be persisted; false when ctx ends.
	hold func(ctx context.Context) bool
	now  func() time.Time

	cur    *cursor.Position // the position of the last event published
	events []beat.Event
	posBuf []*cursor.Position
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

// handle publishes one batch.
// publishChunk is how many events are mapped before they are published.
const publishChunk = 64

func (p *pump) handle(b auditlog.Batch) {
	positions := b.Positions
	if b.Late {
		positions = p.posBuf[:0]
		for range b.Events {
			positions = append(positions, p.cur)
		}
		p.posBuf = positions
	} else {
		for _, pos := range positions {
			p.withSweeps(pos)
		}
	}
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
				if p.acks != nil {
					var ref late.Ref
					if !e.Time.IsZero() {
						ref = late.RefOf(e)
					}
					p.acks.Published(ref)
				}
				p.events = append(p.events, p.mapper.Map(e, now))
			}
			p.pub.Publish(p.events, positions[start:end])
			clear(p.events) // the queue holds them now
			for _, e := range b.Events[start:end] {
				e.Unload()
			}
		}
		if !b.Late {
			p.cur = positions[n-1]
		}
	}
	switch {
	case b.Late && b.Sweeps != nil:
		next := *p.cur
		next.Sweeps = b.Sweeps
		p.cur = &next
		p.pub.Advance(p.cur)
	case b.Sweeps != nil:
		// The sweeps' first word: their cursors, with the head's position.
		next := *p.cur
		next.Sweeps = b.Sweeps
		p.cur = &next
		p.pub.Advance(p.cur)
	case b.After != nil:
		p.withSweeps(b.After)
		p.cur = b.After
		p.pub.Advance(b.After)
	}
}

// withSweeps gives pos the current sweep cursors, unless it has some.
func (p *pump) withSweeps(pos *cursor.Position) {
	if pos.Sweeps == nil && p.cur != nil && p.cur.Sweeps != nil {
		pos.Sweeps = p.cur.Sweeps
	}
}
