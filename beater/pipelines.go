package beater

import (
	"context"
	"fmt"

	"github.com/elastic/beats/v7/libbeat/beat"
	"github.com/elastic/beats/v7/libbeat/esleg/eslegclient"
	"github.com/elastic/beats/v7/libbeat/outputs/elasticsearch"
	conf "github.com/elastic/elastic-agent-libs/config"
	"github.com/elastic/elastic-agent-libs/logp"

	"github.com/teleportbeat/teleportbeat/internal/espipeline"
	"github.com/teleportbeat/teleportbeat/internal/geoip"
)

// The GeoIP ingest pipeline (internal/geoip) is installed as Winlogbeat
// installs its pipelines: by `teleportbeat setup` (plain, or
// --pipelines), overwriting; and by the Elasticsearch output on each
// connection when the output uses it (the default, cmd/defaults.go) and
// it is missing, so that no event is refused for a pipeline nobody loaded.

// setupPipelines lets `teleportbeat setup` load the pipeline.
func setupPipelines(b *beat.Beat) {
	b.OverwritePipelinesCallback = func(esConfig *conf.C) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		conn, err := eslegclient.NewConnectedClient(ctx, esConfig, b.Info.Beat, b.Info.Logger)
		if err != nil {
			return fmt.Errorf("connect to Elasticsearch to load the ingest pipeline: %w", err)
		}
		defer conn.Close()
		_, err = geoip.Install(conn, b.Info.Version, true)
		return err
	}
}

// outputPipeline is the ingest pipeline the Elasticsearch output is
// configured with ("" with another output or none).
func outputPipeline(b *beat.Beat) string {
	if b.Config == nil || b.Config.Output.Name() != "elasticsearch" {
		return ""
	}
	p, _ := b.Config.Output.Config().String("pipeline", -1)
	return p
}

// ensurePipelineOnConnect installs the pipeline when a connection of the
// Elasticsearch output finds it missing, if the output uses it.
func ensurePipelineOnConnect(b *beat.Beat, log *logp.Logger) error {
	if outputPipeline(b) != geoip.Name(b.Info.Version) {
		return nil
	}
	_, err := elasticsearch.RegisterConnectCallback(func(conn *eslegclient.Connection, _ *logp.Logger) error {
		loaded, err := geoip.Install(conn, b.Info.Version, false)
		if err != nil {
			return err
		}
		if loaded {
			log.Infow("Loaded the GeoIP ingest pipeline the Elasticsearch output uses", "pipeline", geoip.Name(b.Info.Version))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("register the ingest pipeline loader: %w", err)
	}
	return nil
}

// withOutputPipeline is the publisher pipeline with the Elasticsearch
// output's pipeline settings applied to every event (internal/espipeline:
// libbeat's output ignores them for events with metadata, which all of
// teleportbeat's have).
func withOutputPipeline(b *beat.Beat, log *logp.Logger) (beat.Pipeline, error) {
	if b.Config == nil || b.Config.Output.Name() != "elasticsearch" {
		return b.Publisher, nil
	}
	p, err := espipeline.New(b.Config.Output.Config(), log)
	if err != nil {
		return nil, err
	}
	return espipeline.Wrap(b.Publisher, p), nil
}
