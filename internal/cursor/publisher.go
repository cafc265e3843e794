package cursor

import (
	"sync/atomic"

	"github.com/elastic/beats/v7/libbeat/beat"
)

// Publisher is the one place teleportbeat publishes events: every event
// carries, in beat.Event.Private, the position just after it, and the
// newest position whose events are all acknowledged is handed to commit,
// in publish order (Tracker). Positions reached without an event of their
// own go through Advance. Readers never see a beat.Client.
//
// Like Filebeat's input-cursor Publisher, the position rides on the event;
// unlike it, positions are committed by a Committer that writes at most
// once per flush interval, and a position that follows no event (a page
// of excluded events, a new search window) is queued behind the events
// published before it.
type Publisher[P comparable] struct {
	client    beat.Client
	tracker   *Tracker[P]
	published atomic.Int64
}

// PublisherConfig configures a Publisher.
type PublisherConfig[P comparable] struct {
	// Commit receives, in order, the newest position whose events are all
	// acknowledged. It runs on libbeat's ACK goroutine or on the caller of
	// Advance, never concurrently.
	Commit func(P)
	// OnACK, when set, is told how many events each acknowledgement
	// covers, in publish order, before Commit.
	OnACK func(n int)
}

// NewPublisher connects a client to the pipeline: guaranteed send (events
// are retried until the output takes them), the tracker's ACK listener,
// no host fields (host.* is the Teleport host an event is about, not the
// machine teleportbeat runs on: that is agent.* and observer.*), and no
// event normalization (the ECS mapper builds events of the types
// normalization would produce, TestMappedEventsAreAlreadyNormalized, so
// the copy it makes of every event is skipped).
func NewPublisher[P comparable](pipeline beat.Pipeline, cfg PublisherConfig[P]) (*Publisher[P], error) {
	t := NewTracker(cfg.Commit)
	t.onACK = cfg.OnACK
	off := false
	client, err := pipeline.ConnectWith(beat.ClientConfig{
		PublishMode:   beat.GuaranteedSend,
		EventListener: t.EventListener(),
		Processing: beat.ProcessingConfig{
			DisableHost:        true,
			EventNormalization: &off,
		},
	})
	if err != nil {
		return nil, err
	}
	return &Publisher[P]{client: client, tracker: t}, nil
}

// Publish publishes events, each with the position after it
// (len(positions) == len(events)). It blocks while the queue is full, until
// Close.
func (p *Publisher[P]) Publish(events []beat.Event, positions []P) {
	if len(events) == 0 {
		return
	}
	for i := range events {
		events[i].Private = positions[i]
	}
	p.tracker.Published(len(events))
	p.published.Add(int64(len(events)))
	p.client.PublishAll(events)
}

// PublishOne publishes one event with the position after it.
func (p *Publisher[P]) PublishOne(event beat.Event, pos P) {
	event.Private = pos
	p.tracker.Published(1)
	p.published.Add(1)
	p.client.Publish(event)
}

// Advance records a position reached after the events published so far: it
// is committed once they are acknowledged.
func (p *Publisher[P]) Advance(pos P) { p.tracker.Advance(pos) }

// Published is the number of events published.
func (p *Publisher[P]) Published() int64 { return p.published.Load() }

// Acked is the number of events acknowledged.
func (p *Publisher[P]) Acked() uint64 { return p.tracker.Acked() }

// InFlight is the number of events published and not yet acknowledged.
func (p *Publisher[P]) InFlight() uint64 { return p.tracker.InFlight() }

// Close closes the client; a Publish blocked on a full queue returns.
func (p *Publisher[P]) Close() error { return p.client.Close() }
