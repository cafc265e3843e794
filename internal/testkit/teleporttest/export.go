package teleporttest

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gravitational/trace"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"
)

// ExportChunkSize is the most events the double puts in one export chunk.
const ExportChunkSize = 1000

type exportChunk struct {
	id     string
	events []*Event
}

type dayChunks struct {
	batches uint64 // the store's Add count the listing was made at
	chunks  []exportChunk
}

// chunks returns the export chunks of one UTC day. Like Athena's Parquet
// files, a chunk is written once and never changes: every Add call writes
// the events it stores into new chunks of at most ExportChunkSize events,
// in the order they were added, so the chunks of a day are not ordered by
// time and a late event lands in a new chunk of an old day.
func (s *Store) chunks(day time.Time) []exportChunk {
	start := day.UTC().Truncate(24 * time.Hour)
	end := start.Add(24 * time.Hour)
	s.mu.RLock()
	batches := s.batches
	s.chunkMu.Lock()
	if c, ok := s.chunkCache[start.Unix()]; ok && c.batches == batches {
		s.chunkMu.Unlock()
		s.mu.RUnlock()
		return c.chunks
	}
	s.chunkMu.Unlock()
	lo := sort.Search(len(s.events), func(i int) bool { return !s.events[i].Time.Before(start) })
	hi := sort.Search(len(s.events), func(i int) bool { return !s.events[i].Time.Before(end) })
	evs := slices.Clone(s.events[lo:hi])
	s.mu.RUnlock()

	slices.SortFunc(evs, func(a, b *Event) int { return cmp.Compare(a.seq, b.seq) })
	var out []exportChunk
	for i, n := 0, 0; i < len(evs); {
		j := i + 1
		for j < len(evs) && j-i < ExportChunkSize && evs[j].batch == evs[i].batch {
			j++
		}
		if i > 0 && evs[i].batch != evs[i-1].batch {
			n = 0
		}
		out = append(out, exportChunk{id: fmt.Sprintf("%s-%d-%d", start.Format("20060102"), evs[i].batch, n), events: evs[i:j]})
		n++
		i = j
	}
	s.chunkMu.Lock()
	if s.chunkCache == nil {
		s.chunkCache = map[int64]dayChunks{}
	}
	s.chunkCache[start.Unix()] = dayChunks{batches: batches, chunks: out}
	s.chunkMu.Unlock()
	return out
}

func (a *auditLogService) exportAllowed() error {
	if !a.s.version.atLeast(16, 0) {
		return unimplemented("teleport.auditlog.v1.AuditLogService", "GetEventExportChunks")
	}
	if a.s.noExport {
		// What the file backend answers (it has no export support).
		return trace.NotImplemented("FileLog does not implement GetEventExportChunks")
	}
	if a.s.isDenied("event") {
		return trace.AccessDenied("access denied to perform action %q on %q", "list", "event")
	}
	return nil
}

// GetEventExportChunks lists the export chunks of a day.
func (a *auditLogService) GetEventExportChunks(req *auditlogpb.GetEventExportChunksRequest, stream auditlogpb.AuditLogService_GetEventExportChunksServer) error {
	a.s.chunkCalls.Add(1)
	if err := a.exportAllowed(); err != nil {
		return err
	}
	if req.GetDate() == nil {
		return trace.BadParameter("missing required parameter 'date'")
	}
	day := req.GetDate().AsTime()
	for _, c := range a.s.Store.chunks(day) {
		if err := stream.Send(&auditlogpb.EventExportChunk{Chunk: c.id}); err != nil {
			return err
		}
	}
	return nil
}

// ExportUnstructuredEvents streams one chunk, each event with the cursor to
// resume after it ("a1:<position>", Athena's format).
func (a *auditLogService) ExportUnstructuredEvents(req *auditlogpb.ExportUnstructuredEventsRequest, stream auditlogpb.AuditLogService_ExportUnstructuredEventsServer) error {
	if err := a.exportAllowed(); err != nil {
		return err
	}
	if req.GetDate() == nil || req.GetChunk() == "" {
		return trace.BadParameter("missing required parameters 'date' and 'chunk'")
	}
	a.s.exportCalls.Add(1)
	plan := a.s.Faults.planExport()
	if plan.gate != nil {
		if err := plan.gate.wait(stream.Context()); err != nil {
			return err
		}
	}
	if err := sleepCtx(stream.Context(), plan.delay); err != nil {
		return err
	}
	if plan.fail {
		return errInjected
	}
	day := req.GetDate().AsTime()
	var chunk []*Event
	for _, c := range a.s.Store.chunks(day) {
		if c.id == req.GetChunk() {
			chunk = c.events
		}
	}
	if chunk == nil {
		return trace.NotFound("event chunk %q not found", req.GetChunk())
	}
	pos := 0
	if c := req.GetCursor(); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "a1:"))
		if !strings.HasPrefix(c, "a1:") || err != nil || n < 0 {
			return trace.BadParameter("unsupported cursor format %q", c)
		}
		pos = n
	}
	for i := pos; i < len(chunk); i++ {
		if plan.cutAfter > 0 && i-pos == plan.cutAfter {
			// Let what was sent reach the client, then lose the
			// connection (every stream on it fails).
			time.Sleep(50 * time.Millisecond)
			a.s.CutConnections()
			<-stream.Context().Done()
			return stream.Context().Err()
		}
		if err := stream.Send(&auditlogpb.ExportEventUnstructured{Event: chunk[i].pb, Cursor: "a1:" + strconv.Itoa(i+1)}); err != nil {
			return err
		}
	}
	return nil
}
