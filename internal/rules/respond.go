package rules

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Respond is a rule's ready action (its file's respond key): for each
// alert of a run, a lock through teleportbeat's response endpoint
// (internal/respond) on the alert's user (user.name), for TTL.
type Respond struct {
	Lock string   `yaml:"lock"` // what to lock: "user"
	TTL  Duration `yaml:"ttl"`
}

func (r *Respond) check() error {
	if r.Lock != "user" {
		return fmt.Errorf("respond.lock: %q: only user (the alert's user.name) is locked", r.Lock)
	}
	if time.Duration(r.TTL) < time.Minute {
		return fmt.Errorf("respond.ttl: %s: at least 1m", time.Duration(r.TTL))
	}
	return nil
}

// The Kibana Webhook connector `teleportbeat setup` makes for the ready
// actions, under a fixed id so that every run finds it.
const (
	ConnectorID   = "teleportbeat-respond-lock"
	ConnectorName = "teleportbeat: lock in Teleport"
	ConnectorPath = "/api/actions/connector/"
	// MuteAllPath is the alerting API's "snooze indefinitely" of a rule's
	// actions (POST /api/alerting/rule/{id}/_mute_all).
	MuteAllPath = "/api/alerting/rule/%s/_mute_all"
)

// Connector is how Kibana reaches the response endpoint: its URL
// (…/v1/lock), Kibana's client certificate and key, and the CA of the
// endpoint's certificate (none: Kibana's own trust).
type Connector struct {
	URL             string
	ClientCert, Key []byte // PEM
	CA              []byte // PEM, optional
}

// fields are the connector's config and secrets, as Kibana's Webhook
// connector schema has them (stack_connectors' webhook: SSL
// authentication with a certificate and key, both base64 of the PEM).
func (c Connector) fields() (config, secrets map[string]any) {
	config = map[string]any{
		"url": c.URL, "method": "post", "headers": map[string]string{"Content-Type": "application/json"},
		"hasAuth": true, "authType": "webhook-authentication-ssl", "certType": "ssl-crt-key", "verificationMode": "full",
	}
	if len(c.CA) > 0 {
		config["ca"] = base64.StdEncoding.EncodeToString(c.CA)
	}
	secrets = map[string]any{"crt": base64.StdEncoding.EncodeToString(c.ClientCert), "key": base64.StdEncoding.EncodeToString(c.Key)}
	return config, secrets
}

// EnsureConnector creates the connector, or brings the one there to c
// (a renewed certificate, a new URL); created says it was not there.
func EnsureConnector(conn Kibana, c Connector) (created bool, err error) {
	resp, err := conn.Send(http.MethodGet, ConnectorPath+ConnectorID, nil, nil, nil)
	if err != nil {
		return false, fmt.Errorf("read the Kibana connector %s: %w", ConnectorID, err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	config, secrets := c.fields()
	body := map[string]any{"name": ConnectorName, "config": config, "secrets": secrets}
	method := http.MethodPut
	switch {
	case resp.StatusCode == http.StatusNotFound:
		method, created = http.MethodPost, true
		body["connector_type_id"] = ".webhook"
	case resp.StatusCode >= 300:
		return false, fmt.Errorf("read the Kibana connector %s: %s", ConnectorID, answer(resp.StatusCode, raw))
	}
	b, _ := json.Marshal(body)
	resp, err = conn.Send(method, ConnectorPath+ConnectorID, nil, nil, bytes.NewReader(b))
	if err != nil {
		return false, fmt.Errorf("write the Kibana connector %s: %w", ConnectorID, err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return false, fmt.Errorf("write the Kibana connector %s: %s (the Webhook connector needs a Gold license or a trial)", ConnectorID, answer(resp.StatusCode, raw))
	}
	return created, nil
}

// LockBody is the ready action's body: a Mustache template Kibana
// renders for each rule run (a summary action: context.alerts are the
// run's alerts, each with its source event's fields), escaping each value
// for a JSON string. The alerts list ends with {} because a section
// cannot leave out the comma after the last alert; the endpoint passes
// over it.
func LockBody(r Respond) string {
	return fmt.Sprintf(`{"ttl": "%s", "reason": "Kibana detection alert", "rule_name": "{{rule.name}}", "alerts": [{{#context.alerts}}{"id": "{{kibana.alert.uuid}}", "user": "{{user.name}}"}, {{/context.alerts}}{}]}`,
		short(time.Duration(r.TTL)))
}

// short writes a duration as a person would: 1h, 30m, 90s.
func short(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// LockAction is a rule's ready action on the connector: once per rule
// run with alerts.
func LockAction(r Respond) map[string]any {
	return map[string]any{
		"group": "default", "id": ConnectorID, "action_type_id": ".webhook",
		"params":    map[string]any{"body": LockBody(r)},
		"frequency": map[string]any{"summary": true, "notifyWhen": "onActiveAlert", "throttle": nil},
	}
}

// Armed is what Arm did, by rule name.
type Armed struct {
	Armed   []string // given the ready action, its actions snoozed
	Had     []string // have it already
	LeftOut []string // have actions of their own, or their ready action was removed
}

// Arm gives the rules that have a ready action (Rule.Respond) that action
// on the connector, and snoozes the rule's actions indefinitely (the
// alerting API's mute all): an analyst who enables the rule gets its
// alerts, and no lock until they unsnooze it. A rule is armed only when it
// has no actions and it was installed by this run (installed) or the
// connector was (connectorCreated): a rule whose ready action an analyst
// removed is not given it again.
func Arm(conn Kibana, shipped []Rule, installed []string, connectorCreated bool) (Armed, error) {
	var out Armed
	var errs []string
	for _, r := range shipped {
		if r.Respond == nil {
			continue
		}
		have, found, err := getRule(conn, r.ID())
		if err != nil || !found {
			if err == nil {
				err = fmt.Errorf("not in Kibana")
			}
			errs = append(errs, fmt.Sprintf("rule %q: %v", r.Name(), err))
			continue
		}
		actions := asList(have["actions"])
		switch {
		case hasConnector(actions):
			out.Had = append(out.Had, r.Name())
			continue
		case len(actions) > 0 || (!connectorCreated && !slices.Contains(installed, r.Name())):
			out.LeftOut = append(out.LeftOut, r.Name())
			continue
		}
		// Snoozed before the action is added: the action is never live
		// until an analyst unsnoozes the rule.
		id, _ := have["id"].(string)
		if err := muteAll(conn, id); err != nil {
			errs = append(errs, fmt.Sprintf("rule %q: snooze its actions (the lock action was not added): %v", r.Name(), err))
			continue
		}
		if err := patchRule(conn, map[string]any{"rule_id": r.ID(), "actions": []any{LockAction(*r.Respond)}}); err != nil {
			errs = append(errs, fmt.Sprintf("rule %q: add the lock action: %v", r.Name(), err))
			continue
		}
		out.Armed = append(out.Armed, r.Name())
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("ready lock actions: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

func hasConnector(actions []any) bool {
	for _, a := range actions {
		if asMap(a)["id"] == ConnectorID {
			return true
		}
	}
	return false
}

// muteAll snoozes a rule's actions indefinitely.
func muteAll(conn Kibana, id string) error {
	resp, err := conn.Send(http.MethodPost, fmt.Sprintf(MuteAllPath, url.PathEscape(id)), nil, nil, nil)
	if err != nil {
		return err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("snooze its actions: %s", answer(resp.StatusCode, raw))
	}
	return nil
}
