package rules

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/teleportbeat/teleportbeat/internal/jsonvalue"
)

// history.json records, for every version of every rule teleportbeat has
// shipped, a hash of each field's value. An upgrade compares a rule as
// Kibana has it with the version it was installed at: a field that
// differs is the analyst's edit, and is kept (Kibana's prebuilt rule
// upgrade works the same way, from the base version in its package).
// `go tool mage update` adds the current versions; a rule that changed
// without a new version is refused there and in the tests.
//
//go:embed history.json
var historyJSON []byte

// History is rule_id → version → field → hash.
type History map[string]map[string]map[string]string

// LoadHistory returns the recorded history.
func LoadHistory() (History, error) {
	h := History{}
	if err := json.Unmarshal(historyJSON, &h); err != nil {
		return nil, fmt.Errorf("rule history: %w", err)
	}
	return h, nil
}

// Base returns the field hashes of a rule's version, if recorded.
func (h History) Base(id string, version int) (map[string]string, bool) {
	b, ok := h[id][strconv.Itoa(version)]
	return b, ok
}

// stateFields are the analyst's, never the rule content's: whether the
// rule runs, its exceptions and its actions. Neither the history nor an
// upgrade touches them.
var stateFields = map[string]bool{
	"enabled": true, "exceptions_list": true, "actions": true, "throttle": true,
	"id": true, "revision": true, "immutable": true, "rule_source": true,
	"created_at": true, "created_by": true, "updated_at": true, "updated_by": true,
	"execution_summary": true, "meta": true, "output_index": true,
}

// Fingerprint hashes each content field of a rule object.
func Fingerprint(obj map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range obj {
		if !stateFields[k] && k != "version" {
			out[k] = FieldHash(v)
		}
	}
	return out
}

// FieldHash is the hash of a field's value in a canonical form: JSON with
// sorted keys, without the empty values (null, [], {}) Kibana fills in for
// what was not given.
func FieldHash(v any) string {
	b, _ := json.Marshal(canonical(jsonvalue.Of(v)))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

func canonical(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if c := canonical(x); !empty(c) {
				out[k] = c
			}
		}
		return out
	case []any:
		out := make([]any, 0, len(v))
		for _, x := range v {
			out = append(out, canonical(x))
		}
		return out
	}
	return v
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// Record adds the rules' current versions to the history. A version
// already recorded must have the same content: a rule that changed needs
// a new version (else Kibana would keep the old one as up to date), and a
// version may not go back.
func (h History) Record(rules []Rule) error {
	for _, r := range rules {
		fp := Fingerprint(r.Object)
		versions := h[r.ID()]
		if versions == nil {
			versions = map[string]map[string]string{}
			h[r.ID()] = versions
		}
		v := strconv.Itoa(r.Version())
		if old, ok := versions[v]; ok {
			if diff := changedFields(old, fp); len(diff) > 0 {
				return fmt.Errorf("rule %s (%s) changed (%v) but its version %s did not: raise its version", r.File, r.Name(), diff, v)
			}
			continue
		}
		for recorded := range versions {
			if n, _ := strconv.Atoi(recorded); n > r.Version() {
				return fmt.Errorf("rule %s (%s): version %d is older than the recorded version %d", r.File, r.Name(), r.Version(), n)
			}
		}
		versions[v] = fp
	}
	return nil
}

func changedFields(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// JSON renders the history as history.json has it.
func (h History) JSON() []byte {
	b, _ := json.MarshalIndent(h, "", " ")
	return append(b, '\n')
}
