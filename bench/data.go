package main

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// dataset is the generated event set, served by the Teleport double and
// written to an NDJSON file for Filebeat.
type dataset struct {
	events   int
	bytes    int64 // of the NDJSON lines, without newlines
	ndjson   string
	start    time.Time
	srv      *teleporttest.Server
	identity string
}

// addBatch is how many events go into the store at once: the double writes
// each batch into its own export chunks (at most 1,000 events each), like
// Athena writes a Parquet file per flush.
const addBatch = 5000

// newDataset generates n events (the generator's mix: logins, session
// start/end, exec, Kubernetes requests, database queries, certificate
// issuance, app requests, ...), evenly over the complete days before
// today, serves them from a new Teleport double and writes them, as
// Teleport's JSON audit log would hold them, to dir/events.ndjson.
func newDataset(n, days int, dir string) (*dataset, error) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	start := today.Add(-time.Duration(days) * 24 * time.Hour)
	step := time.Duration(days) * 24 * time.Hour / time.Duration(n)
	evs := teleporttest.NewGenerator(20251125).Events(n, start, step)

	srv, err := teleporttest.New(teleporttest.Config{})
	if err != nil {
		return nil, fmt.Errorf("start the Teleport double: %w", err)
	}
	for i := 0; i < len(evs); i += addBatch {
		srv.Store.Add(evs[i:min(i+addBatch, len(evs))]...)
	}
	id, err := srv.NewIdentity(48 * time.Hour)
	if err != nil {
		srv.Stop()
		return nil, err
	}
	d := &dataset{events: n, start: start, srv: srv, identity: dir + "/identity", ndjson: dir + "/events.ndjson"}
	if err := id.WriteIdentityFile(d.identity); err != nil {
		srv.Stop()
		return nil, err
	}
	f, err := os.Create(d.ndjson)
	if err != nil {
		srv.Stop()
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, e := range evs {
		line, err := e.Proto().GetUnstructured().MarshalJSON()
		if err != nil {
			f.Close()
			srv.Stop()
			return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		d.bytes += int64(len(line))
		w.Write(line)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		srv.Stop()
		return nil, err
	}
	if err := f.Close(); err != nil {
		srv.Stop()
		return nil, err
	}
	return d, nil
}

func (d *dataset) close() { d.srv.Stop() }
