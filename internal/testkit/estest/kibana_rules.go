package estest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/teleportbeat/teleportbeat/internal/jsonvalue"
	"github.com/teleportbeat/teleportbeat/internal/testkit/ruleschema"
)

// Kibana's detection rule APIs, as far as teleportbeat uses them, with
// the rule state Kibana keeps:
//
//   - POST /api/detection_engine/rules/_import: 200 with per-rule errors
//     in the body; a rule that exists is refused with 409 unless
//     overwrite=true; every rule is checked against Elastic's rule schema
//     of the stand-in's Kibana version (internal/testkit/ruleschema) and refused
//     with 400 as Kibana refuses it.
//   - GET /api/detection_engine/rules?rule_id=: the rule as Kibana keeps
//     it (with the fields Kibana fills in: id, revision, version,
//     enabled, exceptions_list, actions, ...), or 404.
//   - PATCH /api/detection_engine/rules: changes the fields it names and
//     keeps the others; the result is checked against the schema.
//
// An analyst's work in the UI is a PATCH too (Analyst).

// RuleImport is one import request.
type RuleImport struct {
	Overwrite bool
	Rules     []map[string]any
}

// RulePatch is one PATCH request.
type RulePatch struct {
	RuleID string
	Fields map[string]any
}

// SetRuleError makes the import API refuse the rule with ruleID with
// status and message, as Kibana does for a rule it cannot create.
func (k *Kibana) SetRuleError(ruleID string, status int, message string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ruleErrors == nil {
		k.ruleErrors = map[string]ruleError{}
	}
	k.ruleErrors[ruleID] = ruleError{status, message}
}

// Rules returns the stored detection rules by rule_id.
func (k *Kibana) Rules() map[string]map[string]any {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]map[string]any, len(k.rules))
	for id, r := range k.rules {
		out[id] = maps.Clone(r)
	}
	return out
}

// RuleImports returns the import requests received.
func (k *Kibana) RuleImports() []RuleImport {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.ruleImports)
}

// RulePatches returns the PATCH requests received (not the analyst's).
func (k *Kibana) RulePatches() []RulePatch {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.rulePatches)
}

// Installed stores rules as a Kibana that already has them keeps them
// (installed by an earlier teleportbeat, or when Kibana's schema was
// another's): without the import's checks.
func (k *Kibana) Installed(rules ...map[string]any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.rules == nil {
		k.rules = map[string]map[string]any{}
	}
	for _, r := range rules {
		id, _ := r["rule_id"].(string)
		k.rules[id] = stored(r)
	}
}

// DeleteRule removes a rule, as an analyst deleting it does.
func (k *Kibana) DeleteRule(ruleID string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.rules, ruleID)
}

// Analyst changes a rule as an analyst does in Security → Rules: the
// fields given replace the rule's (enabled, exceptions_list, actions, a
// query, tags, ...).
func (k *Kibana) Analyst(ruleID string, fields map[string]any) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, err := k.patchLocked(ruleID, fields)
	return err
}

type ruleError struct {
	status  int
	message string
}

func (k *Kibana) serveRules(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		id := r.URL.Query().Get("rule_id")
		k.mu.Lock()
		rule, ok := k.rules[id]
		if ok {
			rule = maps.Clone(rule)
		}
		k.mu.Unlock()
		if !ok {
			writeNotFound(w, id)
			return
		}
		_ = json.NewEncoder(w).Encode(rule)
	case http.MethodPatch:
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			kibanaError(w, http.StatusBadRequest, err.Error())
			return
		}
		id, _ := body["rule_id"].(string)
		fields := maps.Clone(body)
		delete(fields, "rule_id")
		k.mu.Lock()
		k.rulePatches = append(k.rulePatches, RulePatch{RuleID: id, Fields: fields})
		rule, err := k.patchLocked(id, fields)
		k.mu.Unlock()
		switch {
		case err == errNoRule:
			writeNotFound(w, id)
		case err != nil:
			kibanaError(w, http.StatusBadRequest, err.Error())
		default:
			_ = json.NewEncoder(w).Encode(rule)
		}
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

var errNoRule = fmt.Errorf("no such rule")

func writeNotFound(w http.ResponseWriter, id string) {
	kibanaError(w, http.StatusNotFound, fmt.Sprintf("rule_id: %q not found", id))
}

// patchLocked applies fields to a stored rule, as Kibana's PATCH does:
// the result must pass the schema; a content change raises revision.
func (k *Kibana) patchLocked(id string, fields map[string]any) (map[string]any, error) {
	rule, ok := k.rules[id]
	if !ok {
		return nil, errNoRule
	}
	if a, ok := fields["actions"]; ok {
		if _, err := k.checkActionsLocked(jsonvalue.Of(a)); err != nil {
			return nil, err
		}
	}
	next := maps.Clone(rule)
	content := false
	for f, v := range fields {
		next[f] = jsonvalue.Of(v)
		if !kibanaState[f] {
			content = true
		}
	}
	if err := ruleschema.ValidateFor(k.Version, withoutKibanaFields(next)); err != nil {
		return nil, err
	}
	if content {
		next["revision"] = intOr(next["revision"], 0) + 1
	}
	next["updated_at"] = time.Now().UTC().Format(time.RFC3339Nano)
	k.rules[id] = next
	return maps.Clone(next), nil
}

// kibanaState are the fields whose change is no revision of the rule.
var kibanaState = map[string]bool{"enabled": true, "exceptions_list": true, "actions": true, "throttle": true}

// kibanaFields are what Kibana adds to a rule it stores: not part of the
// import schema.
var kibanaFields = []string{"id", "revision", "immutable", "rule_source", "created_at", "updated_at", "created_by", "updated_by"}

func withoutKibanaFields(r map[string]any) map[string]any {
	out := maps.Clone(r)
	for _, f := range kibanaFields {
		delete(out, f)
	}
	return out
}

func (k *Kibana) importRules(w http.ResponseWriter, r *http.Request) {
	overwrite := r.URL.Query().Get("overwrite") == "true"
	rules, err := ndjsonUpload(r)
	if err != nil {
		writeUploadError(w, err, http.StatusUnsupportedMediaType, "invalid file: ")
		return
	}
	type itemError struct {
		RuleID string `json:"rule_id"`
		Error  struct {
			StatusCode int    `json:"status_code"`
			Message    string `json:"message"`
		} `json:"error"`
	}
	var errs []itemError
	ok := 0
	k.mu.Lock()
	k.ruleImports = append(k.ruleImports, RuleImport{Overwrite: overwrite, Rules: rules})
	if k.rules == nil {
		k.rules = map[string]map[string]any{}
	}
	for _, rule := range rules {
		id, _ := rule["rule_id"].(string)
		status, msg := 0, ""
		if e, injected := k.ruleErrors[id]; injected {
			status, msg = e.status, e.message
		} else if err := ruleschema.ValidateFor(k.Version, rule); err != nil {
			status, msg = http.StatusBadRequest, err.Error()
		} else if st, err := k.checkActionsLocked(rule["actions"]); err != nil {
			status, msg = st, err.Error()
		} else if _, exists := k.rules[id]; exists && !overwrite {
			status, msg = http.StatusConflict, fmt.Sprintf("rule_id: %q already exists", id)
		}
		if status != 0 {
			var e itemError
			e.RuleID, e.Error.StatusCode, e.Error.Message = id, status, msg
			errs = append(errs, e)
			continue
		}
		k.rules[id] = stored(rule)
		ok++
	}
	k.mu.Unlock()
	if errs == nil {
		errs = []itemError{}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"success": len(errs) == 0, "success_count": ok, "rules_count": len(rules), "errors": errs,
		"exceptions_success": true, "exceptions_success_count": 0, "exceptions_errors": []any{},
	})
}

// stored is a rule as Kibana keeps it after an import: with its own id
// and the defaults of what the import left out (empty lists where Kibana
// has them, version 1, enabled true, alert suppression's missing fields
// strategy).
func stored(rule map[string]any) map[string]any {
	out := maps.Clone(rule)
	var b [16]byte
	_, _ = rand.Read(b[:])
	out["id"] = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	out["revision"] = 0
	out["immutable"] = false
	out["rule_source"] = map[string]any{"type": "internal"}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	out["created_at"], out["updated_at"] = now, now
	for f, v := range map[string]any{
		"version": 1, "enabled": true, "exceptions_list": []any{}, "actions": []any{},
		"risk_score_mapping": []any{}, "severity_mapping": []any{}, "false_positives": []any{},
		"references": []any{}, "tags": []any{}, "threat": []any{}, "max_signals": 100,
		"related_integrations": []any{}, "required_fields": []any{}, "setup": "",
	} {
		if _, ok := out[f]; !ok {
			out[f] = v
		}
	}
	// Kibana 8.15+ keeps each required field with ecs, which it works
	// out from its own ECS field list when a rule leaves it out; the
	// stand-in has no such list and says false.
	if rf, ok := out["required_fields"].([]any); ok {
		fixed := make([]any, len(rf))
		for i, x := range rf {
			if m, ok := x.(map[string]any); ok {
				if _, has := m["ecs"]; !has {
					m = maps.Clone(m)
					m["ecs"] = false
				}
				x = m
			}
			fixed[i] = x
		}
		out["required_fields"] = fixed
	}
	if s, ok := out["alert_suppression"].(map[string]any); ok {
		if _, ok := s["missing_fields_strategy"]; !ok && out["type"] != "threshold" {
			s = maps.Clone(s)
			s["missing_fields_strategy"] = "suppress"
			out["alert_suppression"] = s
		}
	}
	return jsonvalue.Of(out).(map[string]any)
}

func intOr(v any, d int) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case int:
		return n
	}
	return d
}
