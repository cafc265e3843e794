package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/elastic/beats/v7/libbeat/cmd/instance"
	"github.com/elastic/beats/v7/libbeat/esleg/eslegclient"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/paths"

	"github.com/teleportbeat/teleportbeat/internal/deadletter"
	"github.com/teleportbeat/teleportbeat/internal/httpout"
)

// deadLetterCmd is `teleportbeat dead-letter`: the events an output
// refused for good (path.data/dead-letter) are kept there whole; `replay`
// sends them again through the configured output, once whatever refused
// them is fixed (a mapping, a pipeline, a receiver's limit).
func deadLetterCmd(settings instance.Settings) *cobra.Command {
	root := &cobra.Command{
		Use:   "dead-letter",
		Short: "The events an output refused for good, kept under path.data/dead-letter",
	}
	var index string
	replay := &cobra.Command{
		Use:   "replay",
		Short: "Send the dead-letter events again through the configured output (Elasticsearch or HTTP); what is accepted leaves the files",
		RunE: func(c *cobra.Command, _ []string) error {
			c.SilenceUsage = true
			b, err := instance.NewInitializedBeat(settings)
			if err != nil {
				return fmt.Errorf("initializing teleportbeat: %w", err)
			}
			out := b.Config.Output
			if !out.IsSet() {
				return errors.New("dead-letter replay: no output is configured")
			}
			send, err := replaySender(c.Context(), b, out.Name(), out.Config(), index)
			if err != nil {
				return err
			}
			dir := b.Paths.Resolve(paths.Data, deadletter.Dir)
			sum, err := replayDir(c.Context(), dir, send)
			fmt.Fprintf(c.OutOrStdout(), "%d dead-letter events sent: %d accepted (%d of them stored already), %d refused again (kept in %s)\n",
				sum.sent, sum.accepted, sum.already, sum.refused, dir)
			for _, r := range sum.refusals {
				fmt.Fprintf(c.OutOrStdout(), "  %s\n", r)
			}
			if err != nil {
				return err
			}
			if sum.refused > 0 {
				c.SilenceErrors = true
				return fmt.Errorf("%d events refused again", sum.refused)
			}
			return nil
		},
	}
	replay.Flags().StringVar(&index, "index", "", "Elasticsearch index or data stream to write to (default: output.elasticsearch.index, else teleportbeat-<version>)")
	root.AddCommand(replay)
	return root
}

// sendFunc sends one dead letter and says whether it was accepted
// (already: it was stored before) and, when not, why.
type sendFunc func(ctx context.Context, rec deadletter.Record) (accepted, already bool, reason string, err error)

func replaySender(ctx context.Context, b *instance.Beat, output string, cfg *config.C, index string) (sendFunc, error) {
	switch output {
	case "elasticsearch":
		return esSender(ctx, b, cfg, index)
	case "http":
		s, err := httpout.NewSender(b.Info, cfg)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, rec deadletter.Record) (bool, bool, string, error) {
			status, err := s.Send(ctx, rec.Doc, isSession(rec.Doc))
			switch {
			case err != nil:
				return false, false, "", err
			case status < 300:
				return true, false, "", nil
			case httpout.Retryable(status):
				return false, false, "", fmt.Errorf("the HTTP receiver answered %d: try again later", status)
			}
			return false, false, fmt.Sprintf("the HTTP receiver answered %d", status), nil
		}, nil
	}
	return nil, fmt.Errorf("dead-letter replay sends through output.elasticsearch or output.http; the configured output is %s", output)
}

func esSender(ctx context.Context, b *instance.Beat, cfg *config.C, index string) (sendFunc, error) {
	var esCfg struct {
		Index    string `config:"index"`
		Pipeline string `config:"pipeline"`
	}
	if err := cfg.Unpack(&esCfg); err != nil {
		return nil, fmt.Errorf("output.elasticsearch: %w", err)
	}
	if index == "" {
		index = esCfg.Index
	}
	if index == "" {
		index = b.Info.IndexPrefix + "-" + b.Info.Version
	}
	if strings.Contains(index, "%{") {
		return nil, fmt.Errorf("output.elasticsearch.index %q is a format: give the index or data stream to write to with --index", index)
	}
	conn, err := eslegclient.NewConnectedClient(ctx, cfg, b.Info.Beat, b.Info.Logger)
	if err != nil {
		return nil, fmt.Errorf("connect to Elasticsearch: %w", err)
	}
	var params map[string]string
	if esCfg.Pipeline != "" {
		params = map[string]string{"pipeline": esCfg.Pipeline}
	}
	return func(ctx context.Context, rec deadletter.Record) (bool, bool, string, error) {
		doc, err := withoutMetadata(rec.Doc)
		if err != nil {
			return false, false, "not a JSON document: " + err.Error(), nil
		}
		meta := map[string]any{"create": map[string]any{"_index": index, "_id": rec.EventID}}
		status, resp, err := conn.Bulk(ctx, "", "", nil, params, []any{meta, eslegclient.RawEncoding{Encoding: doc}})
		if err != nil {
			return false, false, "", fmt.Errorf("bulk request (%d): %w", status, err)
		}
		var r struct {
			Items []map[string]struct {
				Status int             `json:"status"`
				Error  json.RawMessage `json:"error"`
			} `json:"items"`
		}
		if err := json.Unmarshal(resp, &r); err != nil || len(r.Items) != 1 {
			return false, false, "", fmt.Errorf("unreadable bulk answer: %s", resp)
		}
		for _, it := range r.Items[0] {
			switch {
			case it.Status < 300:
				return true, false, "", nil
			case it.Status == 409:
				return true, true, "", nil
			case it.Status == 429 || it.Status >= 500:
				return false, false, "", fmt.Errorf("Elasticsearch answered %d: try again later", it.Status)
			}
			return false, false, fmt.Sprintf("Elasticsearch answered %d: %s", it.Status, it.Error), nil
		}
		return false, false, "", errors.New("empty bulk answer")
	}, nil
}

// withoutMetadata drops the @metadata a codec adds (the HTTP output's
// documents carry it): it is no field of the index.
func withoutMetadata(doc []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, err
	}
	if _, ok := m["@metadata"]; !ok {
		return doc, nil
	}
	delete(m, "@metadata")
	return json.Marshal(m)
}

func isSession(doc []byte) bool {
	var d struct {
		Event struct {
			Dataset string `json:"dataset"`
		} `json:"event"`
	}
	_ = json.Unmarshal(doc, &d)
	return d.Event.Dataset == "teleportbeat.session"
}

type replaySummary struct {
	sent, accepted, already, refused int
	refusals                         []string
}

// replayDir sends the records of every dead-letter file in dir. Each file
// is renamed first, so that a running beat writes new dead letters to a
// new file meanwhile; what is refused again, and what was not sent (an
// error stops the replay), is appended back to the day's file.
func replayDir(ctx context.Context, dir string, send sendFunc) (replaySummary, error) {
	var sum replaySummary
	files, err := filepath.Glob(filepath.Join(dir, "teleportbeat-*.ndjson"))
	if err != nil {
		return sum, err
	}
	var stop error
	for _, f := range files {
		work := f + ".replaying"
		if err := os.Rename(f, work); err != nil {
			return sum, fmt.Errorf("take %s for the replay: %w", f, err)
		}
		recs, err := readRecords(work)
		if err != nil {
			_ = os.Rename(work, f)
			return sum, err
		}
		var keep [][]byte
		for _, rec := range recs {
			if stop != nil {
				keep = append(keep, rec.line)
				continue
			}
			accepted, already, reason, err := send(ctx, rec.Record)
			if err != nil {
				stop = fmt.Errorf("event %s: %w", rec.EventID, err)
				keep = append(keep, rec.line)
				continue
			}
			sum.sent++
			if accepted {
				sum.accepted++
				if already {
					sum.already++
				}
				continue
			}
			sum.refused++
			sum.refusals = append(sum.refusals, fmt.Sprintf("%s: %s", rec.EventID, reason))
			rec.Reason = reason + " (replayed; before: " + rec.Reason + ")"
			line, err := json.Marshal(rec.Record)
			if err != nil {
				line = rec.line
			}
			keep = append(keep, line)
		}
		if err := appendLines(f, keep); err != nil {
			return sum, fmt.Errorf("%w (the records are still in %s)", err, work)
		}
		if err := os.Remove(work); err != nil {
			return sum, err
		}
	}
	return sum, stop
}

type lineRecord struct {
	deadletter.Record
	line []byte
}

func readRecords(path string) ([]lineRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []lineRecord
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var rec deadletter.Record
			if jerr := json.Unmarshal(line, &rec); jerr != nil {
				return nil, fmt.Errorf("%s line %d: %w", path, n, jerr)
			}
			out = append(out, lineRecord{Record: rec, line: bytes.TrimRight(line, "\n")})
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// appendLines adds lines to a dead-letter file (0600, as the writer makes
// them).
func appendLines(path string, lines [][]byte) error {
	if len(lines) == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := f.Write(append(l, '\n')); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
