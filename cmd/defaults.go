package cmd

import (
	"time"

	"github.com/elastic/beats/v7/libbeat/cfgfile"
	"github.com/elastic/elastic-agent-libs/config"

	"github.com/teleportbeat/teleportbeat/internal/geoip"
	"github.com/teleportbeat/teleportbeat/internal/version"
)

// teleportbeat's defaults for libbeat settings, merged under the user's
// configuration (libbeat's ConditionalOverride), so that any setting the
// user writes wins.
func defaults() []cfgfile.ConditionalOverride {
	return []cfgfile.ConditionalOverride{queueDefaults(), pipelineDefaults()}
}

// QueueFlushTimeout is teleportbeat's default queue.mem.flush.timeout:
// how long the queue holds fewer events than a full batch
// (flush.min_events) before it hands them to the output anyway.
//
// libbeat's default (and the "balanced" preset's) is 10 s, tuned for
// high-volume logs. Audit events come a few at a time and a security team
// alerts on them: held 10 s in the queue after up to poll_interval in
// Teleport, a break-in would show 15 s late. A backfill fills batches at
// once, so throughput is the same.
const QueueFlushTimeout = time.Second

// queueDefaults makes QueueFlushTimeout the default of the memory queue:
// a ConditionalOverride is merged under the user's configuration, so any
// queue.mem setting of the user still wins, and a disk queue is left
// alone. An output preset other than "custom" brings its own queue,
// which libbeat prefers to this one.
func queueDefaults() cfgfile.ConditionalOverride {
	return cfgfile.ConditionalOverride{
		Check: func(c *config.C) bool {
			q, err := c.Child("queue", -1)
			return err != nil || !q.HasField("disk")
		},
		Config: config.MustNewConfigFrom(map[string]any{
			"queue.mem.flush.timeout": QueueFlushTimeout.String(),
		}),
	}
}

// pipelineDefaults makes the Elasticsearch output send events through
// teleportbeat's GeoIP pipeline (internal/geoip), which the output loads
// when it is missing. `output.elasticsearch.pipeline: ""` ships without
// it; another pipeline replaces it. Other outputs are left alone (a
// default under output.elasticsearch would make a second output).
func pipelineDefaults() cfgfile.ConditionalOverride {
	return cfgfile.ConditionalOverride{
		Check: func(c *config.C) bool {
			out, err := c.Child("output", -1)
			return err == nil && out.HasField("elasticsearch")
		},
		Config: config.MustNewConfigFrom(map[string]any{
			"output.elasticsearch.pipeline": geoip.Name(version.Version),
		}),
	}
}
