package audit

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/gravitational/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gravitational/teleport/api/internalutils/stream"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/teleportbeat/teleportbeat/internal/cursor"
	"github.com/teleportbeat/teleportbeat/internal/event"
	"github.com/teleportbeat/teleportbeat/internal/retry"
)

// Exporter is the bulk export API of teleport/api's client, with the events
// decoded by package event (AuditLog). Teleport 16+ serves it with the
// Athena backend; other backends answer NotImplemented.
type Exporter interface {
	GetEventExportChunks(ctx context.Context, req *auditlogpb.GetEventExportChunksRequest) stream.Stream[*auditlogpb.EventExportChunk]
	ExportUnstructuredEvents(ctx context.Context, req *auditlogpb.ExportUnstructuredEventsRequest) stream.Stream[event.Exported]
}

// exportResult is how the export of a day ended.
type exportResult int

const (
	exportDone        exportResult = iota // every chunk of the day is read
	exportUnsupported                     // the cluster has no export API
	exportCancelled                       // ctx is done
)

// errExportUnsupported marks the answer of a cluster without the export API.
var errExportUnsupported = errors.New("the cluster does not offer the audit export API")

// canExport reports whether the reader should read the day at st.from with
// the export API: the API is enabled and not known to be missing, the
// reader stands at the start of a UTC day, and the whole day is behind
// limit (so no more events are expected in it).
func (r *Reader) canExport(st *readState, limit time.Time) bool {
	if !r.cfg.Export || r.noExport.Load() {
		return false
	}
	day := st.from.UTC().Truncate(24 * time.Hour)
	if !st.from.Equal(day) || st.page.startKey != "" {
		return false
	}
	return !day.Add(24 * time.Hour).After(limit)
}

// chunkBatch is what a chunk reader hands to the forwarder: events of one
// chunk, the cursor after the last of them, and whether the chunk is
// finished.
type chunkBatch struct {
	chunk  string
	events []*event.Event
	cursor string
	done   bool
}

// readExportDay reads the complete UTC day at st.from with the export API:
// it lists the day's chunks, reads up to BackfillConcurrency of them at once,
// and forwards their events as they come. Chunks are unordered, so the
// position is per chunk; every batch carries, as its After position, a
// snapshot of the progress of all chunks up to and including it. As the
// output acknowledges events in publish order, a committed snapshot never
// claims an event that is not acknowledged.
//
// A day is done when every chunk listed is read and a fresh listing brings
// no new one (a late event is written into a new chunk). The events already
// sent from the end of the previous search window (st.page) are skipped.
func (r *Reader) readExportDay(ctx context.Context, st *readState, out chan<- Batch) exportResult {
	d := newDayExport(r, st)
	started := time.Now()
	for listing := 0; ; listing++ {
		chunks, err := r.listChunks(ctx, d.day)
		if errors.Is(err, errExportUnsupported) {
			return exportUnsupported
		}
		if err != nil {
			return exportCancelled
		}
		todo := d.todo(chunks)
		if len(todo) == 0 {
			break
		}
		if listing == 0 {
			r.log.Debugw("Exporting a day of the audit log", "day", d.day.Format(time.DateOnly), "chunks", len(chunks), "chunks_left", len(todo))
		} else {
			r.log.Infow("New export chunks appeared in the day", "day", d.day.Format(time.DateOnly), "chunks", len(todo))
		}
		if res := d.readChunks(ctx, todo, out); res != exportDone {
			return res
		}
	}
	next := &cursor.Position{WindowStart: d.day.Add(24 * time.Hour), LastEventTime: st.lastTime}
	if !r.send(ctx, out, readBatch{After: next}) {
		return exportCancelled
	}
	// A backfill over years has many empty days: only the days with events
	// are said at info level (the progress line counts the rest).
	logf := r.log.Infow
	if d.events == 0 {
		logf = r.log.Debugw
	}
	logf("Exported a day of the audit log", "day", d.day.Format(time.DateOnly), "events", d.events, "chunks", len(d.doneChunks), "took", time.Since(started).Round(time.Millisecond).String())
	st.from, st.page, st.export = next.WindowStart, newPageState("", nil), nil
	return exportDone
}

// dayExport is the progress through one exported day: each chunk's cursor,
// the chunks done, and the page carried from the search window before
// (whose events are not sent again).
type dayExport struct {
	r            *Reader
	st           *readState
	day          time.Time
	carried      *pageState
	chunkCursors map[string]string
	doneChunks   []string
	finished     map[string]bool
	// prev is the progress after the last batch: the position of the
	// events of the next one, so each batch makes one snapshot, not two.
	prev   *cursor.Position
	events int64
}

func newDayExport(r *Reader, st *readState) *dayExport {
	prog := st.export
	if prog == nil {
		prog = &cursor.ExportProgress{}
	}
	d := &dayExport{r: r, st: st, day: st.from, carried: st.page, chunkCursors: maps.Clone(prog.Chunks), doneChunks: slices.Clip(slices.Clone(prog.DoneChunks))}
	if d.chunkCursors == nil {
		d.chunkCursors = map[string]string{}
	}
	d.finished = make(map[string]bool, len(d.doneChunks))
	for _, c := range d.doneChunks {
		d.finished[c] = true
	}
	d.prev = d.snapshot()
	return d
}

func (d *dayExport) snapshot() *cursor.Position {
	return &cursor.Position{
		WindowStart:   d.day,
		Done:          d.carried.done[:len(d.carried.done):len(d.carried.done)],
		LastEventTime: d.st.lastTime,
		Export: &cursor.ExportProgress{
			Chunks:     maps.Clone(d.chunkCursors),
			DoneChunks: d.doneChunks[:len(d.doneChunks):len(d.doneChunks)],
		},
	}
}

// todo are the listed chunks not finished yet.
func (d *dayExport) todo(chunks []string) []string {
	var todo []string
	for _, c := range chunks {
		if !d.finished[c] {
			todo = append(todo, c)
		}
	}
	return todo
}

// readChunks reads the chunks todo (up to BackfillConcurrency at once, one
// more reader whenever the output waits) and sends their batches.
func (d *dayExport) readChunks(ctx context.Context, todo []string, out chan<- Batch) exportResult {
	r := d.r
	results := make(chan chunkBatch)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	more := make(chan struct{}, 1)
	go func() { errc <- r.readChunks(cctx, d.day, todo, maps.Clone(d.chunkCursors), results, more) }()
	ok := true
	for {
		cb, open, starved := await(r, results, out)
		if !open {
			break
		}
		if starved {
			select {
			case more <- struct{}{}: // one more chunk reader
			default: // asked already
			}
		}
		if !ok {
			continue // draining after a failed send
		}
		if !r.send(ctx, out, d.batch(cb)) {
			ok = false
			cancel()
		}
	}
	cancel()
	err := <-errc
	if errors.Is(err, errExportUnsupported) {
		return exportUnsupported
	}
	if !ok || err != nil {
		return exportCancelled
	}
	return exportDone
}

// batch is a chunk's events to send, each with the position before it,
// and the progress after them.
func (d *dayExport) batch(cb chunkBatch) readBatch {
	b := readBatch{Events: make([]*event.Event, 0, len(cb.events))}
	before := d.prev
	for _, e := range cb.events {
		if !d.r.exported(e, d.carried) {
			continue
		}
		if e.Time.After(d.st.lastTime) {
			d.st.lastTime = e.Time
		}
		b.Events = append(b.Events, e)
		b.Positions = append(b.Positions, before)
	}
	d.events += int64(len(b.Events))
	d.r.Stats.Events.Add(int64(len(b.Events)))
	if cb.done {
		delete(d.chunkCursors, cb.chunk)
		d.doneChunks = append(d.doneChunks, cb.chunk)
		d.finished[cb.chunk] = true
		d.r.Stats.ExportChunks.Add(1)
	} else {
		d.chunkCursors[cb.chunk] = cb.cursor
	}
	b.After = d.snapshot()
	d.prev = b.After
	return b
}

// exported reports whether an exported event is to be sent: not filtered
// by type, not already sent from the previous search window, and not known
// to the late-event set (a sweep sent it).
func (r *Reader) exported(e *event.Event, carried *pageState) bool {
	if !r.wanted(e) {
		r.Stats.Excluded.Add(1)
		r.track(e, true)
		return false
	}
	if len(carried.doneSet) > 0 {
		if _, ok := carried.doneSet[e.Key()]; ok {
			return false
		}
	}
	return r.track(e, false)
}

// listChunks lists the export chunks of a day, retrying with backoff. It
// returns errExportUnsupported when the cluster has no export API, and
// ctx's error when ctx is done.
func (r *Reader) listChunks(ctx context.Context, day time.Time) ([]string, error) {
	bo := retry.Backoff{Init: r.cfg.BackoffInit, Max: r.cfg.BackoffMax}
	for attempt := 1; ; attempt++ {
		chunks, err := r.tryListChunks(ctx, day)
		if err == nil {
			return chunks, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if unsupported(err) {
			r.noExport.Store(true)
			r.log.Infow("Teleport has no audit export API here (it needs Teleport 16+ with the Athena backend); reading past days with searches", "error", err)
			return nil, errExportUnsupported
		}
		r.Stats.ExportErrors.Add(1)
		wait := bo.Next()
		r.log.Warnw("Listing Teleport export chunks failed; retrying", "error", err, "attempt", attempt, "retry_in", wait.String(), "day", day.Format(time.DateOnly))
		if !retry.Sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

func (r *Reader) tryListChunks(ctx context.Context, day time.Time) ([]string, error) {
	ex, err := r.exporter(ctx)
	if err != nil {
		return nil, err
	}
	s := ex.GetEventExportChunks(ctx, &auditlogpb.GetEventExportChunksRequest{Date: timestamppb.New(day)})
	defer s.Done()
	var chunks []string
	for s.Next() {
		chunks = append(chunks, s.Item().GetChunk())
	}
	return chunks, s.Done()
}

func (r *Reader) exporter(ctx context.Context) (Exporter, error) {
	s, err := r.search(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := s.(Exporter)
	if !ok {
		return nil, trace.NotImplemented("the Teleport client has no export API")
	}
	return ex, nil
}

// readChunks reads the given chunks, each from its cursor, and closes
// results when all are read or ctx is done. Two chunks are read at once to
// begin with, and one more each time the forwarder has nothing to hand
// over while the publisher has nothing queued (more), up to
// BackfillConcurrency: where Teleport keeps up with the
// output, more streams would only hold more events in memory.
func (r *Reader) readChunks(ctx context.Context, day time.Time, chunks []string, cursors map[string]string, results chan<- chunkBatch, more <-chan struct{}) error {
	defer close(results)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan string)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	readers, maxReaders := 0, min(max(1, r.cfg.BackfillConcurrency), len(chunks))
	spawn := func() {
		readers++
		r.Stats.ExportReaders.Store(int64(readers))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if err := r.readChunk(ctx, day, c, cursors[c], results); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	for range min(2, maxReaders) {
		spawn()
	}
feed:
	for _, c := range chunks {
		for {
			select {
			case work <- c:
				continue feed
			case <-more:
				if readers < maxReaders {
					spawn()
				}
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(work)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// readChunk streams one chunk from its cursor and hands its events over in
// batches of up to BatchSize. A stream that fails is resumed from the
// cursor of the last event received, after a backoff; a chunk the cluster
// no longer has (removed by retention) is logged and counted as done.
func (r *Reader) readChunk(ctx context.Context, day time.Time, chunk, from string, results chan<- chunkBatch) error {
	bo := retry.Backoff{Init: r.cfg.BackoffInit, Max: r.cfg.BackoffMax}
	size := max(1, r.cfg.BatchSize)
	cur := from
	for attempt := 1; ; attempt++ {
		received, err := r.streamChunk(ctx, day, chunk, cur, size, func(cb chunkBatch) bool {
			select {
			case results <- cb:
				cur = cb.cursor
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if unsupported(err) {
			r.noExport.Store(true)
			return errExportUnsupported
		}
		if trace.IsNotFound(err) && received == 0 {
			r.log.Warnw("Teleport no longer has an export chunk; skipping it", "day", day.Format(time.DateOnly), "chunk", chunk, "error", err)
			select {
			case results <- chunkBatch{chunk: chunk, cursor: cur, done: true}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if received > 0 {
			bo.Reset()
		}
		r.Stats.ExportErrors.Add(1)
		wait := bo.Next()
		r.log.Warnw("Teleport export stream failed; resuming from the last event received", "error", err, "attempt", attempt, "retry_in", wait.String(), "day", day.Format(time.DateOnly), "chunk", chunk)
		if !retry.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// streamChunk runs one export stream of chunk from cursor cur, handing
// batches to emit, and returns how many events it received.
func (r *Reader) streamChunk(ctx context.Context, day time.Time, chunk, cur string, size int, emit func(chunkBatch) bool) (int, error) {
	ex, err := r.exporter(ctx)
	if err != nil {
		return 0, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := ex.ExportUnstructuredEvents(sctx, &auditlogpb.ExportUnstructuredEventsRequest{Date: timestamppb.New(day), Chunk: chunk, Cursor: cur})
	defer s.Done()
	received := 0
	pending := chunkBatch{chunk: chunk, cursor: cur}
	flush := func() bool {
		if len(pending.events) == 0 {
			return true
		}
		ok := emit(pending)
		pending = chunkBatch{chunk: chunk, cursor: pending.cursor, events: make([]*event.Event, 0, size)}
		return ok
	}
	for s.Next() {
		it := s.Item()
		// A full batch is handed over once the next event shows that the
		// chunk goes on: the chunk's last batch goes with its end (done),
		// in one hand-over, not two.
		if len(pending.events) >= size && !flush() {
			return received, ctx.Err()
		}
		received++
		pending.events = append(pending.events, it.Event)
		pending.cursor = it.Cursor
	}
	if err := s.Done(); err != nil {
		// Hand over what came before the failure: it is resumed after.
		if !flush() {
			return received, ctx.Err()
		}
		return received, err
	}
	pending.done = true
	if !emit(pending) {
		return received, ctx.Err()
	}
	return received, nil
}

// Unsupported reports whether err says the cluster has no export API.
func Unsupported(err error) bool { return unsupported(err) }

// unsupported reports whether err says the cluster has no export API: an
// Auth Service older than Teleport 16 (gRPC Unimplemented) or an audit
// backend without export support (NotImplemented).
func unsupported(err error) bool {
	if trace.IsNotImplemented(err) {
		return true
	}
	if st, ok := status.FromError(trace.Unwrap(err)); ok && st.Code() == codes.Unimplemented {
		return true
	}
	return false
}
