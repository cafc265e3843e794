package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
)

// Kibana is what installing the rules needs of Kibana: libbeat's
// kibana.Connection has it.
type Kibana interface {
	Send(method, extraPath string, params url.Values, headers http.Header, body io.Reader) (*http.Response, error)
}

// API paths of Kibana's detection engine.
const (
	ImportPath = "/api/detection_engine/rules/_import"
	RulePath   = "/api/detection_engine/rules"
)

// importAnswer is the import API's answer. It is 200 even when rules
// fail: the failures are in Errors.
type importAnswer struct {
	Success      bool `json:"success"`
	SuccessCount int  `json:"success_count"`
	RulesCount   int  `json:"rules_count"`
	Errors       []struct {
		RuleID string `json:"rule_id"`
		ID     string `json:"id"`
		Error  struct {
			StatusCode int    `json:"status_code"`
			Message    string `json:"message"`
		} `json:"error"`
	} `json:"errors"`
	// A refused request (no Security app, no privilege) has these.
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

// importObjects sends rule objects to Kibana's rule import API and returns
// how many Kibana imported. Without overwrite, Kibana refuses a rule_id it
// has. Every rule Kibana refused is in the error, by name and with
// Kibana's reason.
func importObjects(conn Kibana, objs []map[string]any, overwrite bool) (int, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="teleportbeat-rules.ndjson"`)
	h.Set("Content-Type", "application/ndjson")
	part, err := w.CreatePart(h)
	if err != nil {
		return 0, err
	}
	if _, err := part.Write(NDJSON(objs)); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	headers := http.Header{}
	headers.Set("Content-Type", w.FormDataContentType())
	resp, err := conn.Send(http.MethodPost, ImportPath, url.Values{"overwrite": {fmt.Sprint(overwrite)}}, headers, &body)
	if err != nil {
		return 0, fmt.Errorf("import the detection rules into Kibana: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("import the detection rules into Kibana: read the answer: %w", err)
	}
	var a importAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return 0, fmt.Errorf("import the detection rules into Kibana: status %d, answer not JSON: %.300s", resp.StatusCode, raw)
	}
	if resp.StatusCode >= 300 {
		return 0, fmt.Errorf("import the detection rules into Kibana: status %d: %s%s", resp.StatusCode, a.Message, statusHint(resp.StatusCode))
	}
	names := map[string]string{}
	for _, o := range objs {
		id, _ := o["rule_id"].(string)
		names[id], _ = o["name"].(string)
	}
	var errs []error
	for _, e := range a.Errors {
		id := e.RuleID
		if id == "" {
			id = e.ID
		}
		errs = append(errs, fmt.Errorf("rule %q (%s): %d %s", names[id], id, e.Error.StatusCode, e.Error.Message))
	}
	if len(errs) > 0 || !a.Success {
		errs = append([]error{fmt.Errorf("Kibana imported %d of %d detection rules", a.SuccessCount, len(objs))}, errs...)
		return a.SuccessCount, errors.Join(errs...)
	}
	return a.SuccessCount, nil
}

// statusHint says what a refused request usually means.
func statusHint(status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return " (the user needs the Security feature's rules privilege: All on Security → Rules)"
	case http.StatusNotFound:
		return " (is the Security app available in this Kibana?)"
	}
	return ""
}

// answer is a refused Kibana answer: its message, or its body.
func answer(status int, raw []byte) string {
	var a struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &a) == nil && a.Message != "" {
		return fmt.Sprintf("status %d: %s%s", status, a.Message, statusHint(status))
	}
	return fmt.Sprintf("status %d: %.300s%s", status, raw, statusHint(status))
}
