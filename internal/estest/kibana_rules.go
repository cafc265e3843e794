package estest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
)

// The detection rule import API (POST /api/detection_engine/rules/_import),
// as Kibana answers it: 200 with per-rule errors in the body, a rule that
// exists refused with 409 unless overwrite=true, and the checks Kibana's
// rule schema makes on the fields teleportbeat's rules use.

// RuleImport is one import request.
type RuleImport struct {
	Overwrite bool
	Rules     []map[string]any
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
		out[id] = r
	}
	return out
}

// RuleImports returns the import requests received.
func (k *Kibana) RuleImports() []RuleImport {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.ruleImports)
}

type ruleError struct {
	status  int
	message string
}

func (k *Kibana) importRules(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("kbn-xsrf") == "" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"statusCode":400,"error":"Bad Request","message":"Request must contain a kbn-xsrf header."}`)
		return
	}
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
		} else if m := validateRule(rule); m != "" {
			status, msg = http.StatusBadRequest, m
		} else if _, exists := k.rules[id]; exists && !overwrite {
			status, msg = http.StatusConflict, fmt.Sprintf("rule_id: %q already exists", id)
		}
		if status != 0 {
			var e itemError
			e.RuleID, e.Error.StatusCode, e.Error.Message = id, status, msg
			errs = append(errs, e)
			continue
		}
		k.rules[id] = rule
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

// validateRule makes the checks of Kibana's rule schema on the fields
// teleportbeat's rules use; it returns Kibana's kind of message, or "".
func validateRule(r map[string]any) string {
	for _, f := range []string{"rule_id", "name", "description", "type", "severity"} {
		if s, _ := r[f].(string); s == "" {
			return fmt.Sprintf("%s: Required", f)
		}
	}
	if rs, ok := r["risk_score"].(float64); !ok || rs < 0 || rs > 100 || rs != float64(int(rs)) {
		return "risk_score: Expected an integer between 0 and 100"
	}
	if !slices.Contains([]string{"low", "medium", "high", "critical"}, r["severity"].(string)) {
		return fmt.Sprintf("severity: Invalid enum value. Expected 'low' | 'medium' | 'high' | 'critical', received '%v'", r["severity"])
	}
	switch r["type"] {
	case "query", "threshold":
		if q, _ := r["query"].(string); q == "" {
			return "query: Required"
		}
		if l, _ := r["language"].(string); l != "kuery" && l != "lucene" {
			return fmt.Sprintf("language: Invalid enum value. Expected 'kuery' | 'lucene', received '%v'", r["language"])
		}
	default:
		return fmt.Sprintf("type: Invalid literal value, received '%v'", r["type"])
	}
	if r["type"] == "threshold" {
		th, _ := r["threshold"].(map[string]any)
		if v, _ := th["value"].(float64); v < 1 {
			return "threshold.value: Number must be greater than or equal to 1"
		}
		if _, ok := th["field"]; !ok {
			return "threshold.field: Required"
		}
	}
	if idx, _ := r["index"].([]any); len(idx) == 0 {
		return "index: an index pattern is required (no data view given)"
	}
	return ""
}
