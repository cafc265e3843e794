// Package agent lets Elastic Agent run teleportbeat: importing it links
// libbeat's V2 control-protocol manager (x-pack/libbeat/management, under
// the Elastic License 2.0; see NOTICE), which `management.enabled: true`
// then uses, and Register turns the agent's teleport input units into
// input configurations (internal/input.UnitConfig).
package agent

import (
	"fmt"
	"slices"

	"github.com/elastic/beats/v7/libbeat/common/reload"
	"github.com/elastic/beats/v7/x-pack/libbeat/management"
	"github.com/elastic/elastic-agent-client/v7/pkg/client"
	"github.com/elastic/elastic-agent-client/v7/pkg/proto"
	conf "github.com/elastic/elastic-agent-libs/config"
)

// InputType is the input type of the Fleet package and the component
// spec (module/).
const InputType = "teleport"

// The data streams (Fleet package data_stream/audit and
// data_stream/session).
const (
	AuditDataset   = "teleportbeat.audit"
	SessionDataset = "teleportbeat.session"
)

// routingKeys are the keys of a rendered stream that say where its events
// go, not how Teleport is read.
var routingKeys = []string{"id", "type", "enabled", "data_stream", "index", "processors"}

// Register installs Transform as the manager's unit transform.
func Register() {
	management.ConfigTransform.SetTransform(Transform)
}

// Transform turns one input unit into one input configuration. A unit
// is one Teleport integration policy: its teleport.audit stream carries
// the connection and the audit settings; its teleport.session stream, when
// enabled, turns on session recordings (which are found through the audit
// log's session.upload events, so it needs the audit stream).
func Transform(unit *proto.UnitExpectedConfig, info *client.AgentInfo) ([]*reload.ConfigWithMeta, error) {
	if t := unit.GetType(); t != InputType {
		return nil, fmt.Errorf("unit %s: input type %q, teleportbeat runs %q inputs", unit.GetId(), t, InputType)
	}
	if len(unit.GetStreams()) == 0 {
		return nil, fmt.Errorf("unit %s: no streams: enable the %s data stream of the Teleport integration", unit.GetId(), AuditDataset)
	}
	// libbeat's own rendering: index logs-<dataset>-<namespace> and the
	// processors every agent input gets (data_stream.*, event.dataset,
	// agent.id, elastic_agent.*, the policy's processors).
	streams, err := management.CreateInputsFromStreams(unit, "logs", info)
	if err != nil {
		return nil, fmt.Errorf("unit %s: %w", unit.GetId(), err)
	}
	var audit, session map[string]any
	for i, s := range unit.GetStreams() {
		switch ds := s.GetDataStream().GetDataset(); ds {
		case AuditDataset:
			audit = streams[i]
		case SessionDataset:
			session = streams[i]
		default:
			return nil, fmt.Errorf("unit %s: stream %s has data stream %q; teleportbeat ships %s and %s", unit.GetId(), s.GetId(), ds, AuditDataset, SessionDataset)
		}
	}
	if audit == nil {
		return nil, fmt.Errorf("unit %s: the %s stream needs the %s stream (recordings are found through the audit log's session.upload events): enable both", unit.GetId(), SessionDataset, AuditDataset)
	}

	section := map[string]any{}
	for k, v := range audit {
		if !slices.Contains(routingKeys, k) {
			section[k] = v
		}
	}
	sessions := map[string]any{"enabled": false}
	if session != nil {
		if s, ok := session["sessions"].(map[string]any); ok {
			sessions = s
		}
		sessions["enabled"] = true
	}
	section["sessions"] = sessions

	cfg := map[string]any{
		"id":             unit.GetId(),
		"teleportbeat":   section,
		"audit_stream":   route(audit),
		"session_stream": route(session),
	}
	c, err := conf.NewConfigFrom(cfg)
	if err != nil {
		return nil, fmt.Errorf("unit %s: %w", unit.GetId(), err)
	}
	return []*reload.ConfigWithMeta{{Config: c}}, nil
}

func route(stream map[string]any) map[string]any {
	r := map[string]any{}
	if stream == nil {
		return r
	}
	for _, k := range []string{"index", "processors"} {
		if v, ok := stream[k]; ok {
			r[k] = v
		}
	}
	return r
}
