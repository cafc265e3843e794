package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
)

// toolFields are the rule's plumbing, not what an analyst tunes: an
// upgrade always brings the shipped value (Kibana recomputes some of them
// itself, such as required_fields' ecs).
var toolFields = map[string]bool{
	"required_fields": true, "related_integrations": true, "author": true,
	"license": true, "setup": true, "rule_id": true, "type": true,
}

// Outcome is what Install did, by rule name.
type Outcome struct {
	Installed []string // missing, imported (disabled)
	Upgraded  []string // an older version, brought to the shipped one
	Reset     []string // --force: content set to the shipped version
	UpToDate  []string // the shipped version
	Newer     []string // a version newer than this teleportbeat ships: left alone
	// Kept are, by rule, the fields the analyst changed, kept by an
	// upgrade; Conflicts those the new version changed too (the
	// analyst's value was kept: review them).
	Kept      map[string][]string
	Conflicts map[string][]string
}

// Install brings the detection rules into Kibana without losing an
// analyst's work: a missing rule is imported (disabled); a rule at an
// older version is upgraded field by field, keeping every field the
// analyst changed (told apart from the installed version's content by the
// history) and never touching enabled, exceptions or actions; a rule at
// the shipped version or newer is left alone. With force, every rule's
// content is set to the shipped version's (a deliberate reset: the
// analyst's edits go, enabled, exceptions and actions stay).
//
// kibanaVersion ("8.13.4") selects what the rules carry (ForKibana).
func Install(conn Kibana, kibanaVersion string, shipped []Rule, h History, force bool) (Outcome, error) {
	out := Outcome{Kept: map[string][]string{}, Conflicts: map[string][]string{}}
	var missing []map[string]any
	var missingNames []string
	var errs []error
	for _, r := range shipped {
		want := ForKibana(r.Object, kibanaVersion)
		have, found, err := getRule(conn, r.ID())
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %q: %w", r.Name(), err))
			continue
		}
		if !found {
			missing = append(missing, want)
			missingNames = append(missingNames, r.Name())
			continue
		}
		hv := intOf(have["version"])
		var patch map[string]any
		switch {
		case force:
			patch = contentPatch(want, have)
			out.Reset = append(out.Reset, r.Name())
		case hv > r.Version():
			out.Newer = append(out.Newer, r.Name())
			continue
		case hv == r.Version():
			out.UpToDate = append(out.UpToDate, r.Name())
			continue
		default:
			var kept, conflicts []string
			patch, kept, conflicts = upgradePatch(want, have, h, r.ID(), hv)
			if len(kept) > 0 {
				out.Kept[r.Name()] = kept
			}
			if len(conflicts) > 0 {
				out.Conflicts[r.Name()] = conflicts
			}
			out.Upgraded = append(out.Upgraded, r.Name())
		}
		patch["rule_id"] = r.ID()
		patch["version"] = r.Version()
		if err := patchRule(conn, patch); err != nil {
			errs = append(errs, fmt.Errorf("rule %q: upgrade to version %d: %w", r.Name(), r.Version(), err))
			out.Upgraded = remove(out.Upgraded, r.Name())
			out.Reset = remove(out.Reset, r.Name())
		}
	}
	if len(missing) > 0 {
		// Not overwrite: a rule created since the look above is the
		// analyst's and is not replaced.
		n, err := importObjects(conn, missing, false)
		if err != nil {
			errs = append(errs, err)
		}
		if n == len(missing) {
			out.Installed = missingNames
		} else {
			out.Installed = missingNames[:0:0]
			for _, m := range missingNames {
				if !errorNames(err, m) {
					out.Installed = append(out.Installed, m)
				}
			}
		}
	}
	return out, errors.Join(errs...)
}

// contentPatch sets every content field to the shipped value.
func contentPatch(want, have map[string]any) map[string]any {
	patch := map[string]any{}
	for k, v := range want {
		if !stateFields[k] && FieldHash(v) != FieldHash(have[k]) {
			patch[k] = v
		}
	}
	return patch
}

// upgradePatch is a three-way merge of the installed rule (have), the
// content of the version it was installed at (its hashes in the history)
// and the shipped version (want): a field the analyst did not change
// takes the shipped value; a field they changed is kept, and is a
// conflict when the shipped version changed it too. Without the installed
// version's history, every field that differs from the shipped one is
// taken as the analyst's.
func upgradePatch(want, have map[string]any, h History, id string, installed int) (patch map[string]any, kept, conflicts []string) {
	patch = map[string]any{}
	base, known := h.Base(id, installed)
	for k, v := range want {
		if stateFields[k] || k == "version" {
			continue
		}
		shipped, current := FieldHash(v), FieldHash(have[k])
		if shipped == current {
			continue
		}
		_, present := have[k]
		customised := false
		if !toolFields[k] && present {
			if b, ok := base[k]; ok {
				customised = current != b
			} else if !known {
				customised = true
			}
		}
		if customised {
			kept = append(kept, k)
			if b, ok := base[k]; ok && b != shipped {
				conflicts = append(conflicts, k)
			}
			continue
		}
		patch[k] = v
	}
	sort.Strings(kept)
	sort.Strings(conflicts)
	return patch, kept, conflicts
}

// getRule reads a rule by rule_id; found is false when Kibana has none.
func getRule(conn Kibana, id string) (map[string]any, bool, error) {
	resp, err := conn.Send(http.MethodGet, RulePath, url.Values{"rule_id": {id}}, nil, nil)
	if err != nil {
		return nil, false, fmt.Errorf("read it from Kibana: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, false, fmt.Errorf("read it from Kibana: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound {
		// Kibana answers 404 for a missing rule, and for a missing API:
		// the latter has no rule_id in its message.
		var a struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &a)
		if bytes.Contains([]byte(a.Message), []byte(id)) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read it from Kibana: status 404: %s%s", a.Message, statusHint(404))
	}
	if resp.StatusCode >= 300 {
		return nil, false, fmt.Errorf("read it from Kibana: %s", answer(resp.StatusCode, raw))
	}
	var r map[string]any
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, false, fmt.Errorf("read it from Kibana: answer not JSON: %.300s", raw)
	}
	return r, true, nil
}

// patchRule changes the fields of a rule (PATCH keeps every field it does
// not name).
func patchRule(conn Kibana, patch map[string]any) error {
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	resp, err := conn.Send(http.MethodPatch, RulePath, nil, nil, bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return errors.New(answer(resp.StatusCode, raw))
	}
	return nil
}

func intOf(v any) int {
	switch v := v.(type) {
	case float64:
		return int(v)
	case int:
		return v
	}
	return 0
}

func remove(s []string, x string) []string {
	out := s[:0]
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// errorNames reports whether an import error names a rule.
func errorNames(err error, name string) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte(fmt.Sprintf("rule %q", name)))
}
