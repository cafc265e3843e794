// Package shrink makes a document smaller than a receiver's limit by
// truncating its largest strings, and marks what it did, for events an
// output refuses as too large (HTTP 413) one by one. The whole event is
// kept in the dead-letter file; the truncated one is what gets indexed.
package shrink

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Tag marks a truncated document.
const Tag = "teleport_truncated"

// minKeep is the shortest a truncated string is cut to.
const minKeep = 256

// Result says what Document did.
type Result struct {
	// OriginalBytes and Bytes are the JSON sizes before and after.
	OriginalBytes, Bytes int
	// Fields are the paths of the truncated strings.
	Fields []string
}

// protected are paths whose strings are never truncated (the event's
// identity and time).
var protected = map[string]bool{"@timestamp": true, "event.id": true, "event.action": true, "event.dataset": true, "event.module": true, "event.kind": true}

// Document truncates the largest strings of doc (decoded JSON) until its
// JSON encoding is at most limit bytes, records under teleport.truncated
// the original size and the fields cut, and adds Tag to tags. It reports
// false when strings alone cannot bring it under the limit (doc is then
// left truncated as far as it could be).
func Document(doc map[string]any, limit int) (Result, bool) {
	size := func() int {
		b, _ := json.Marshal(doc)
		return len(b)
	}
	res := Result{OriginalBytes: size()}
	cut := map[string]bool{}
	for cur := res.OriginalBytes; ; cur = size() {
		// The mark itself takes room: reserve it.
		if cur+markSize(res, cut) <= limit {
			break
		}
		path, s, set := largest(doc)
		if len(s) <= minKeep {
			mark(doc, res, cut)
			res.Bytes = size()
			res.Fields = slices.Sorted(maps.Keys(cut))
			return res, false
		}
		keep := max(minKeep, len(s)-(cur+markSize(res, cut)-limit)-64)
		for keep > 0 && !utf8.RuneStart(s[keep]) {
			keep--
		}
		set(s[:keep] + fmt.Sprintf("… [truncated by teleportbeat: %d bytes]", len(s)))
		cut[path] = true
	}
	mark(doc, res, cut)
	res.Bytes = size()
	res.Fields = slices.Sorted(maps.Keys(cut))
	return res, res.Bytes <= limit
}

func markSize(res Result, cut map[string]bool) int {
	n := 100 // "truncated": {"original_bytes": ..., "fields": []}, the tag
	for p := range cut {
		n += len(p) + 3
	}
	return n
}

func mark(doc map[string]any, res Result, cut map[string]bool) {
	tp, _ := doc["teleport"].(map[string]any)
	if tp == nil {
		tp = map[string]any{}
		doc["teleport"] = tp
	}
	// A document cut before keeps its first size and fields.
	original := float64(res.OriginalBytes)
	if prev, ok := tp["truncated"].(map[string]any); ok {
		if n, ok := prev["original_bytes"].(float64); ok && n > original {
			original = n
		}
		if fs, ok := prev["fields"].([]any); ok {
			for _, f := range fs {
				if s, ok := f.(string); ok {
					cut[s] = true
				}
			}
		}
	}
	tp["truncated"] = map[string]any{"original_bytes": int64(original), "fields": slices.Sorted(maps.Keys(cut))}
	var tags []any
	switch t := doc["tags"].(type) {
	case []any:
		tags = t
	case []string:
		for _, s := range t {
			tags = append(tags, s)
		}
	}
	if !slices.Contains(tags, any(Tag)) {
		tags = append(tags, Tag)
	}
	doc["tags"] = tags
}

// largest finds the longest string in doc outside the protected paths and
// returns its path, value and a setter.
func largest(doc map[string]any) (string, string, func(string)) {
	var (
		bestPath string
		best     string
		bestSet  func(string)
	)
	var walk func(path string, v any, set func(any))
	walk = func(path string, v any, set func(any)) {
		switch x := v.(type) {
		case string:
			if !protected[path] && len(x) > len(best) {
				bestPath, best, bestSet = path, x, func(s string) { set(s) }
			}
		case map[string]any:
			for k, e := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, e, func(nv any) { x[k] = nv })
			}
		case []any:
			for i, e := range x {
				walk(path, e, func(nv any) { x[i] = nv })
			}
		}
	}
	walk("", doc, nil)
	return strings.TrimSpace(bestPath), best, bestSet
}
