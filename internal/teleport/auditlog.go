package teleport

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/gravitational/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gravitational/teleport/api/client"
	"github.com/gravitational/teleport/api/internalutils/stream"
	"github.com/gravitational/teleport/api/types"
	apievents "github.com/gravitational/teleport/api/types/events"

	auditlogpb "github.com/gravitational/teleport/api/gen/proto/go/teleport/auditlog/v1"

	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/internal/event"
)

// AuditLog calls Teleport's audit log service (teleport.auditlog.v1) on a
// teleport/api client's connection, as the client's own methods do, but
// decodes the events with package event's decoder instead of into the
// generated protobuf types (a third of the CPU teleportbeat spent per
// event went to building and converting protobuf Struct objects). The
// connection's interceptors (error conversion, tracing) apply as before.
//
// On clusters older than the unstructured methods (capabilities.go) it
// calls the typed ones and converts their events.
type AuditLog struct {
	conn  *grpc.ClientConn
	clt   *client.Client
	caps  *capabilities
	addrs []string // what was dialed, for the errors
}

// NewAuditLog returns the audit log service of clt.
func NewAuditLog(clt *client.Client, log *logp.Logger) *AuditLog {
	return &AuditLog{conn: clt.GetConnection(), clt: clt, caps: newCapabilities(log)}
}

// LegacySearch and LegacySessions report whether the older, typed methods
// are in use.
func (a *AuditLog) LegacySearch() bool   { return a.caps.LegacySearch() }
func (a *AuditLog) LegacySessions() bool { return a.caps.LegacySessions() }

// SearchUnstructuredEvents is client.Client's, returning decoded events.
func (a *AuditLog) SearchUnstructuredEvents(ctx context.Context, fromUTC, toUTC time.Time, namespace string, eventTypes []string, limit int, order types.EventOrder, startKey string) ([]*event.Event, string, error) {
	if a.caps.LegacySearch() {
		return a.searchTyped(ctx, fromUTC, toUTC, namespace, eventTypes, limit, order, startKey)
	}
	req := &auditlogpb.GetUnstructuredEventsRequest{
		Namespace:  namespace,
		StartDate:  timestamppb.New(fromUTC),
		EndDate:    timestamppb.New(toUTC),
		EventTypes: eventTypes,
		Limit:      int32(limit),
		StartKey:   startKey,
		Order:      auditlogpb.Order(order),
	}
	var page searchPage
	if err := a.conn.Invoke(ctx, auditlogpb.AuditLogService_GetUnstructuredEvents_FullMethodName, req, &page, grpc.ForceCodecV2(wireCodec{})); err != nil {
		if unimplemented(err) {
			a.caps.useLegacySearch(err)
			return a.searchTyped(ctx, fromUTC, toUTC, namespace, eventTypes, limit, order, startKey)
		}
		// A search error says what failed and what to do in one line
		// (Explain); the whole error stays behind it.
		return nil, "", Explain(trace.Wrap(err), a.addrs)
	}
	return page.events, page.lastKey, nil
}

// searchTyped is the search of clusters before GetUnstructuredEvents.
func (a *AuditLog) searchTyped(ctx context.Context, fromUTC, toUTC time.Time, namespace string, eventTypes []string, limit int, order types.EventOrder, startKey string) ([]*event.Event, string, error) {
	typed, next, err := a.clt.SearchEvents(ctx, fromUTC, toUTC, namespace, eventTypes, limit, order, startKey)
	if err != nil {
		return nil, "", trace.Wrap(err)
	}
	out := make([]*event.Event, 0, len(typed))
	for _, t := range typed {
		e, err := fromTyped(t)
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	return out, next, nil
}

// fromTyped converts a typed event as Teleport's own unstructured methods
// do (events.ToUnstructured), then decodes it as every event is.
func fromTyped(t apievents.AuditEvent) (*event.Event, error) {
	pb, err := apievents.ToUnstructured(t)
	if err != nil {
		return nil, trace.Wrap(err, "convert a %s event", t.GetType())
	}
	return event.FromProto(pb)
}

// GetEventExportChunks is client.Client's (chunk names need no decoder).
func (a *AuditLog) GetEventExportChunks(ctx context.Context, req *auditlogpb.GetEventExportChunksRequest) stream.Stream[*auditlogpb.EventExportChunk] {
	return a.clt.GetEventExportChunks(ctx, req)
}

// ExportUnstructuredEvents is client.Client's, returning decoded events.
func (a *AuditLog) ExportUnstructuredEvents(ctx context.Context, req *auditlogpb.ExportUnstructuredEventsRequest) stream.Stream[event.Exported] {
	ctx, cancel := context.WithCancel(ctx)
	s, err := a.serverStream(ctx, auditlogpb.AuditLogService_ExportUnstructuredEvents_FullMethodName, req)
	if err != nil {
		cancel()
		return stream.Fail[event.Exported](trace.Wrap(err))
	}
	return stream.Func(func() (event.Exported, error) {
		var m exportedEvent
		if err := s.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return event.Exported{}, io.EOF
			}
			return event.Exported{}, trace.Wrap(err)
		}
		return event.Exported(m), nil
	}, cancel)
}

// StreamUnstructuredSessionEvents is client.Client's, returning decoded
// events: they come on the first channel, which is closed at the end;
// an error comes on the second.
func (a *AuditLog) StreamUnstructuredSessionEvents(ctx context.Context, sessionID string, startIndex int64) (chan *event.Event, chan error) {
	if a.caps.LegacySessions() {
		ch, errc := make(chan *event.Event), make(chan error, 1)
		go a.streamTyped(ctx, sessionID, startIndex, ch, errc)
		return ch, errc
	}
	ch := make(chan *event.Event)
	errc := make(chan error, 1)
	s, err := a.serverStream(ctx, auditlogpb.AuditLogService_StreamUnstructuredSessionEvents_FullMethodName,
		&auditlogpb.StreamUnstructuredSessionEventsRequest{SessionId: sessionID, StartIndex: int32(startIndex)})
	if err != nil {
		errc <- trace.Wrap(err)
		return ch, errc
	}
	go func() {
		first := true
		for {
			var m sessionEvent
			if err := s.RecvMsg(&m); err != nil {
				if errors.Is(err, io.EOF) {
					close(ch)
				} else if first && unimplemented(err) {
					// An older cluster: the typed stream, fed into ch.
					a.caps.useLegacySessions(err)
					a.streamTyped(ctx, sessionID, startIndex, ch, errc)
				} else {
					errc <- trace.Wrap(err)
				}
				return
			}
			first = false
			select {
			case ch <- m.event:
			case <-ctx.Done():
				errc <- trace.Wrap(ctx.Err())
				return
			}
		}
	}()
	return ch, errc
}

// streamTyped is the session stream of clusters before
// StreamUnstructuredSessionEvents: it feeds ch and errc, as the
// unstructured stream does, until the stream ends.
func (a *AuditLog) streamTyped(ctx context.Context, sessionID string, startIndex int64, ch chan *event.Event, errc chan error) {
	tch, terrc := a.clt.StreamSessionEvents(ctx, sessionID, startIndex)
	for {
		select {
		case err := <-terrc:
			errc <- trace.Wrap(err)
			return
		case t, ok := <-tch:
			if !ok {
				close(ch)
				return
			}
			e, err := fromTyped(t)
			if err != nil {
				errc <- err
				return
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				errc <- trace.Wrap(ctx.Err())
				return
			}
		}
	}
}

// serverStream opens a server-streaming call and sends its one request.
func (a *AuditLog) serverStream(ctx context.Context, method string, req any) (grpc.ClientStream, error) {
	s, err := a.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method, grpc.ForceCodecV2(wireCodec{}))
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(req); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	return s, nil
}

// wireCodec is gRPC's protobuf codec, except for the response types below,
// which it decodes with package event.
type wireCodec struct{}

type wireMessage interface{ decodeWire(b []byte) error }

type (
	searchPage struct {
		events  []*event.Event
		lastKey string
	}
	exportedEvent event.Exported
	sessionEvent  struct{ event *event.Event }
)

func (p *searchPage) decodeWire(b []byte) (err error) {
	p.events, p.lastKey, err = event.DecodePage(b)
	return err
}

func (e *exportedEvent) decodeWire(b []byte) (err error) {
	e.Event, e.Cursor, err = event.DecodeExported(b)
	return err
}

func (e *sessionEvent) decodeWire(b []byte) (err error) {
	e.event, err = event.Decode(b)
	return err
}

func (wireCodec) Name() string { return "proto" }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(wireMessage)
	if !ok {
		return encoding.GetCodecV2("proto").Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return m.decodeWire(buf.ReadOnlyData())
}
