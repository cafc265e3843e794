package estest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/teleportbeat/teleportbeat/internal/jsonvalue"
	"github.com/teleportbeat/teleportbeat/internal/testkit/kibanamustache"
)

// Kibana's connectors (the Webhook connector only), the rules' actions,
// and running them as Kibana runs a detection rule's summary actions.
// What the stand-in refuses is what Kibana refuses: a connector outside
// the Webhook connector's schema (stack_connectors' webhook.ts), an action
// on a connector that does not exist or of another type.

// webhookConfig and webhookSecrets are the Webhook connector's schema:
// key -> allowed values (nil: any value of the key's type).
var (
	webhookConfig = map[string][]string{
		"url": nil, "method": {"post", "put"}, "headers": nil, "hasAuth": nil,
		"authType": {"webhook-authentication-basic", "webhook-authentication-ssl"},
		"certType": {"ssl-crt-key", "ssl-pfx"}, "ca": nil, "verificationMode": {"none", "certificate", "full"},
	}
	webhookSecrets = []string{"user", "password", "crt", "key", "pfx"}
)

// Connector returns a connector as stored (secrets included), if there.
func (k *Kibana) Connector(id string) (map[string]any, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.connectors[id]
	return maps.Clone(c), ok
}

// Muted reports whether a rule's actions are snoozed indefinitely (the
// alerting API's mute all), by rule_id.
func (k *Kibana) Muted(ruleID string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, _ := k.rules[ruleID]["id"].(string)
	return k.muted[id]
}

// Unmute turns a rule's actions back on, as an analyst does (the bell in
// Security → Rules, or POST …/_unmute_all).
func (k *Kibana) Unmute(ruleID string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, _ := k.rules[ruleID]["id"].(string)
	delete(k.muted, id)
}

func (k *Kibana) serveConnector(w http.ResponseWriter, r *http.Request, id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	have, exists := k.connectors[id]
	switch r.Method {
	case http.MethodGet:
		if !exists {
			kibanaError(w, http.StatusNotFound, fmt.Sprintf("Saved object [action/%s] not found", id))
			return
		}
		out := maps.Clone(have)
		delete(out, "secrets") // Kibana never returns them
		_ = json.NewEncoder(w).Encode(out)
	case http.MethodPost, http.MethodPut:
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			kibanaError(w, http.StatusBadRequest, err.Error())
			return
		}
		if r.Method == http.MethodPost && exists {
			kibanaError(w, http.StatusConflict, fmt.Sprintf("Saved object [action/%s] conflict", id))
			return
		}
		if r.Method == http.MethodPut && !exists {
			kibanaError(w, http.StatusNotFound, fmt.Sprintf("Saved object [action/%s] not found", id))
			return
		}
		typ, _ := body["connector_type_id"].(string)
		if r.Method == http.MethodPut {
			if _, ok := body["connector_type_id"]; ok {
				kibanaError(w, http.StatusBadRequest, "[request body.connector_type_id]: definition for this key is missing")
				return
			}
			typ, _ = have["connector_type_id"].(string)
		}
		if err := checkWebhook(typ, body); err != nil {
			kibanaError(w, http.StatusBadRequest, err.Error())
			return
		}
		c := map[string]any{"id": id, "name": body["name"], "connector_type_id": typ, "config": body["config"], "secrets": body["secrets"], "is_preconfigured": false, "is_deprecated": false, "is_missing_secrets": false}
		if k.connectors == nil {
			k.connectors = map[string]map[string]any{}
		}
		k.connectors[id] = c
		out := maps.Clone(c)
		delete(out, "secrets")
		_ = json.NewEncoder(w).Encode(out)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// checkWebhook validates a connector as Kibana's Webhook connector type
// does.
func checkWebhook(typ string, body map[string]any) error {
	if typ != ".webhook" {
		return fmt.Errorf("connector type %q: the stand-in knows the Webhook connector (.webhook) only", typ)
	}
	if name, _ := body["name"].(string); name == "" {
		return errors.New("[request body.name]: expected value of type [string] but got [undefined]")
	}
	config, _ := body["config"].(map[string]any)
	for k, v := range config {
		allowed, known := webhookConfig[k]
		if !known {
			return fmt.Errorf("error validating action type config: [%s]: definition for this key is missing", k)
		}
		if s, ok := v.(string); ok && allowed != nil && !slices.Contains(allowed, s) {
			return fmt.Errorf("error validating action type config: [%s]: %q is not one of %v", k, s, allowed)
		}
	}
	u, _ := config["url"].(string)
	if p, err := url.Parse(u); err != nil || p.Scheme == "" || p.Host == "" {
		return fmt.Errorf("error validating action type config: error configuring webhook action: unable to parse url: %q", u)
	}
	if config["authType"] != nil && config["hasAuth"] == false {
		return errors.New("error validating action type config: error configuring webhook action: authType must be null or undefined if hasAuth is false")
	}
	secrets, _ := body["secrets"].(map[string]any)
	has := map[string]bool{}
	for k, v := range secrets {
		if !slices.Contains(webhookSecrets, k) {
			return fmt.Errorf("error validating action type secrets: [%s]: definition for this key is missing", k)
		}
		has[k] = v != nil && v != ""
	}
	switch {
	case !has["user"] && !has["password"] && !has["crt"] && !has["key"] && !has["pfx"]:
	case has["user"] && has["password"] && !has["crt"] && !has["key"] && !has["pfx"]:
	case has["crt"] && has["key"] && !has["user"] && !has["pfx"]:
	case !has["crt"] && !has["key"] && !has["user"] && has["pfx"]:
	default:
		return errors.New("error validating action type secrets: must specify one of the following schemas: user and password; crt and key (with optional password); or pfx (with optional password)")
	}
	for _, k := range []string{"crt", "key", "pfx", "ca"} {
		v, _ := secrets[k].(string)
		if k == "ca" {
			v, _ = config[k].(string)
		}
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			return fmt.Errorf("%s: not base64: %v", k, err)
		}
	}
	return nil
}

// checkActionsLocked refuses actions on a connector that does not exist
// or is of another type, or with a malformed frequency.
func (k *Kibana) checkActionsLocked(actions any) (int, error) {
	list, _ := actions.([]any)
	for _, a := range list {
		m, _ := a.(map[string]any)
		id, _ := m["id"].(string)
		c, ok := k.connectors[id]
		if !ok {
			return http.StatusNotFound, fmt.Errorf("Saved object [action/%s] not found", id)
		}
		if m["action_type_id"] != c["connector_type_id"] {
			return http.StatusBadRequest, fmt.Errorf("action_type_id %v is not the type of connector %s (%v)", m["action_type_id"], id, c["connector_type_id"])
		}
		if g, _ := m["group"].(string); g != "default" {
			return http.StatusBadRequest, fmt.Errorf("Invalid action groups: %v", m["group"])
		}
		if f, ok := m["frequency"].(map[string]any); ok {
			if _, ok := f["summary"].(bool); !ok {
				return http.StatusBadRequest, errors.New("[actions.0.frequency.summary]: expected value of type [boolean]")
			}
			if w, _ := f["notifyWhen"].(string); !slices.Contains([]string{"onActiveAlert", "onThrottleInterval", "onActionGroupChange"}, w) {
				return http.StatusBadRequest, fmt.Errorf("[actions.0.frequency.notifyWhen]: %q is not a notify_when", w)
			}
		}
	}
	return 0, nil
}

func (k *Kibana) serveMute(w http.ResponseWriter, r *http.Request, id string, mute bool) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	found := false
	for _, rule := range k.rules {
		if rule["id"] == id {
			found = true
		}
	}
	if !found {
		kibanaError(w, http.StatusNotFound, fmt.Sprintf("Saved object [alert/%s] not found", id))
		return
	}
	if k.muted == nil {
		k.muted = map[string]bool{}
	}
	if mute {
		k.muted[id] = true
	} else {
		delete(k.muted, id)
	}
	w.WriteHeader(http.StatusNoContent)
}

// ActionRun is one action Kibana ran: the body it rendered and what the
// connector's endpoint answered.
type ActionRun struct {
	Connector string
	Body      string
	Status    int
	Answer    string
}

// RunActions runs a rule's actions as Kibana does after a run of the rule
// that raised alerts (each alert: the source event's fields, with
// kibana.alert.* flattened as in the alerts index): nothing when the rule
// is disabled or its actions are snoozed; each summary action's params
// rendered with the variables of Kibana's transformSummaryActionParams
// (context.alerts, rule.name, …) by Kibana's renderer (kibanamustache,
// the Webhook body escaped for JSON), and posted through its connector
// with the connector's client certificate and CA.
func (k *Kibana) RunActions(ruleID string, alerts []map[string]any) ([]ActionRun, error) {
	k.mu.Lock()
	rule, ok := k.rules[ruleID]
	rule = maps.Clone(rule)
	muted := ok && k.muted[fmt.Sprint(rule["id"])]
	connectors := maps.Clone(k.connectors)
	k.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no rule %s", ruleID)
	}
	if rule["enabled"] != true || muted {
		return nil, nil
	}
	data := make([]any, len(alerts))
	for i, a := range alerts {
		data[i] = jsonvalue.Of(a)
	}
	vars := summaryVariables(rule, data)
	var runs []ActionRun
	for _, a := range rule["actions"].([]any) {
		action := a.(map[string]any)
		c := connectors[fmt.Sprint(action["id"])]
		params, _ := action["params"].(map[string]any)
		tpl, _ := params["body"].(string)
		body, err := kibanamustache.Render(tpl, vars, kibanamustache.JSON)
		if err != nil {
			return runs, fmt.Errorf("action on %v: %w", action["id"], err)
		}
		run, err := postWebhook(c, body)
		if err != nil {
			return runs, err
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// summaryVariables are a summary action's variables for a security rule
// (alerting's transformSummaryActionParams): alert.id is the rule's id,
// context.alerts the run's alerts.
func summaryVariables(rule map[string]any, alerts []any) map[string]any {
	id, name := rule["id"], rule["name"]
	all := map[string]any{"count": len(alerts), "data": alerts}
	none := map[string]any{"count": 0, "data": []any{}}
	return map[string]any{
		"alertId": id, "alertName": name, "spaceId": "default", "tags": rule["tags"], "alertInstanceId": id,
		"alertActionGroup": "default", "alertActionGroupName": "Default",
		"alert":         map[string]any{"id": id, "uuid": id, "actionGroup": "default", "actionGroupName": "Default", "flapping": false, "consecutiveMatches": 0},
		"kibanaBaseUrl": "", "date": time.Now().UTC().Format(time.RFC3339Nano),
		"context": map[string]any{"alerts": alerts, "results_link": "", "rule": map[string]any{"name": name, "id": id, "rule_id": rule["rule_id"]}},
		"state":   map[string]any{"signals_count": len(alerts)},
		"rule":    map[string]any{"id": id, "name": name, "type": "siem." + fmt.Sprint(rule["type"]) + "Rule", "url": "", "tags": rule["tags"], "spaceId": "default"},
		"alerts":  map[string]any{"all": all, "new": all, "ongoing": none, "recovered": none},
	}
}

// postWebhook is the Webhook connector's executor: its method, URL and
// headers, and its SSL authentication (certificate and key, CA,
// verification mode).
func postWebhook(c map[string]any, body string) (ActionRun, error) {
	config, _ := c["config"].(map[string]any)
	secrets, _ := c["secrets"].(map[string]any)
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if config["authType"] == "webhook-authentication-ssl" {
		crt, _ := base64.StdEncoding.DecodeString(fmt.Sprint(secrets["crt"]))
		key, _ := base64.StdEncoding.DecodeString(fmt.Sprint(secrets["key"]))
		pair, err := tls.X509KeyPair(crt, key)
		if err != nil {
			return ActionRun{}, fmt.Errorf("connector %v: its certificate and key: %w", c["id"], err)
		}
		tlsCfg.Certificates = []tls.Certificate{pair}
	}
	if ca, ok := config["ca"].(string); ok && ca != "" {
		pem, _ := base64.StdEncoding.DecodeString(ca)
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return ActionRun{}, fmt.Errorf("connector %v: its ca has no certificate", c["id"])
		}
		tlsCfg.RootCAs = pool
	}
	if config["verificationMode"] == "none" {
		tlsCfg.InsecureSkipVerify = true
	}
	method := strings.ToUpper(fmt.Sprint(config["method"]))
	req, err := http.NewRequest(method, fmt.Sprint(config["url"]), bytes.NewReader([]byte(body)))
	if err != nil {
		return ActionRun{}, err
	}
	if h, ok := config["headers"].(map[string]any); ok {
		for k, v := range h {
			req.Header.Set(k, fmt.Sprint(v))
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return ActionRun{Connector: fmt.Sprint(c["id"]), Body: body}, fmt.Errorf("connector %v: error calling webhook, request failed: %w", c["id"], err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return ActionRun{Connector: fmt.Sprint(c["id"]), Body: body, Status: resp.StatusCode, Answer: string(answer)}, nil
}

// AddConnector adds a connector an analyst made (any type; the stand-in
// runs Webhook connectors only).
func (k *Kibana) AddConnector(id, connectorType, name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.connectors == nil {
		k.connectors = map[string]map[string]any{}
	}
	k.connectors[id] = map[string]any{"id": id, "name": name, "connector_type_id": connectorType, "config": map[string]any{}}
}
