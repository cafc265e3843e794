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

	"github.com/elastic/elastic-agent-libs/kibana"
)

// ImportPath is Kibana's detection rule import API.
const ImportPath = "/api/detection_engine/rules/_import"

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

// Import sends rules to Kibana's rule import API, replacing earlier
// versions (overwrite), and returns how many Kibana imported. Every rule
// Kibana refused is in the error, by name and with Kibana's reason.
func Import(conn *kibana.Connection, rules []Rule) (int, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="teleportbeat-rules.ndjson"`)
	h.Set("Content-Type", "application/ndjson")
	part, err := w.CreatePart(h)
	if err != nil {
		return 0, err
	}
	if _, err := part.Write(NDJSON(rules)); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	headers := http.Header{}
	headers.Set("Content-Type", w.FormDataContentType())
	resp, err := conn.Send(http.MethodPost, ImportPath, url.Values{"overwrite": {"true"}}, headers, &body)
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
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint = " (the user needs the Security feature's rules privilege: All on Security → Rules)"
		case http.StatusNotFound:
			hint = " (is the Security app available in this Kibana?)"
		}
		return 0, fmt.Errorf("import the detection rules into Kibana: status %d: %s%s", resp.StatusCode, a.Message, hint)
	}
	names := map[string]string{}
	for _, r := range rules {
		names[r.ID()] = r.Name()
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
		errs = append([]error{fmt.Errorf("Kibana imported %d of %d detection rules", a.SuccessCount, len(rules))}, errs...)
		return a.SuccessCount, errors.Join(errs...)
	}
	return a.SuccessCount, nil
}
