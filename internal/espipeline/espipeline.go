// Package espipeline makes the Elasticsearch output's pipeline settings
// apply to teleportbeat's events.
//
// libbeat's Elasticsearch output picks an event's ingest pipeline from the
// event's @metadata.pipeline when the event has any metadata at all, and
// only otherwise from output.elasticsearch.pipeline / pipelines
// (outputs/elasticsearch/client.go, getPipeline). Every teleportbeat event
// carries metadata (its _id, the Teleport uid), so without this the
// configured pipeline, teleportbeat's GeoIP default included, would be
// silently ignored. The processor here evaluates the output's pipeline
// settings with libbeat's own selector and writes the result into the
// event's metadata, as the output would have.
package espipeline

import (
	"fmt"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/outputs/outil"
	"github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp"
)

// Processor sets @metadata.pipeline from the output's pipeline settings.
type Processor struct {
	sel outil.Selector
}

// New returns the processor for an Elasticsearch output configuration, or
// nil when it names no pipeline.
func New(output *config.C, log *logp.Logger) (*Processor, error) {
	if p, err := output.String("pipeline", -1); (err != nil || p == "") && !output.HasField("pipelines") {
		return nil, nil // none, or `pipeline: ""` to ship without one
	}
	sel, err := outil.BuildSelectorFromConfig(output, outil.Settings{
		Key:              "pipeline",
		MultiKey:         "pipelines",
		EnableSingleOnly: true,
		FailEmpty:        false,
		Case:             outil.SelectorLowerCase,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("output.elasticsearch.pipeline: %w", err)
	}
	if sel.IsEmpty() {
		return nil, nil
	}
	return &Processor{sel: sel}, nil
}

// Run sets the event's pipeline, unless the event names one already.
func (p *Processor) Run(e *beat.Event) (*beat.Event, error) {
	if e.Meta != nil {
		if _, err := e.Meta.GetValue("pipeline"); err == nil {
			return e, nil
		}
	}
	name, err := p.sel.Select(e)
	if err != nil {
		return e, fmt.Errorf("select the ingest pipeline: %w", err)
	}
	if name != "" {
		if e.Meta == nil {
			e.Meta = map[string]any{}
		}
		e.Meta["pipeline"] = name
	}
	return e, nil
}

func (p *Processor) String() string { return "teleportbeat_output_pipeline" }

// All lists the processor (beat.ProcessorList).
func (p *Processor) All() []beat.Processor { return []beat.Processor{p} }

// Close has nothing to release (beat.ProcessorList).
func (p *Processor) Close() error { return nil }

// Wrap returns pipeline with p added to the processing of every client
// that connects to it without processors of its own (teleportbeat's
// publishers). With a nil p it returns pipeline.
func Wrap(pipeline beat.Pipeline, p *Processor) beat.Pipeline {
	if p == nil {
		return pipeline
	}
	return wrapped{Pipeline: pipeline, p: p}
}

type wrapped struct {
	beat.Pipeline
	p *Processor
}

func (w wrapped) ConnectWith(cfg beat.ClientConfig) (beat.Client, error) {
	if cfg.Processing.Processor == nil {
		cfg.Processing.Processor = w.p
	}
	return w.Pipeline.ConnectWith(cfg)
}

func (w wrapped) Connect() (beat.Client, error) { return w.ConnectWith(beat.ClientConfig{}) }
