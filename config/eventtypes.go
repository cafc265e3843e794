package config

import (
	"fmt"
	"strings"

	"github.com/teleportbeat/teleportbeat/internal/ecs"
)

// Event type names in event_types and exclude_event_types are compared
// with the types teleportbeat knows (every type of the pinned teleport/api):
// a misspelt name ships nothing (event_types) or excludes nothing, and
// says nothing about it. An unknown name is allowed, since newer Teleport
// versions add types, with a warning that names the closest known type.

// knownEventType reports whether Teleport's API defines the type.
func knownEventType(name string) bool {
	_, ok := ecs.LookupEventType(name)
	return ok
}

// closestEventType is the known type nearest to name (edit distance at most
// a third of its length), or "".
func closestEventType(name string) string {
	best, bestD := "", len(name)/3+1
	for _, e := range ecs.EventTypes() {
		if d := editDistance(name, e.Name); d < bestD {
			best, bestD = e.Name, d
		}
	}
	return best
}

// eventTypeWarnings returns a warning for every unknown name in list, the
// setting at key.
func eventTypeWarnings(key string, list []string) []string {
	var out []string
	for i, name := range list {
		name = strings.TrimSpace(name)
		if name == "" || knownEventType(name) {
			continue
		}
		w := fmt.Sprintf("%s.%d: %q is not an event type teleportbeat knows", key, i, name)
		if c := closestEventType(name); c != "" {
			w += fmt.Sprintf(" (did you mean %q?)", c)
		}
		w += "; it is kept, in case it is a type of a newer Teleport version"
		out = append(out, w)
	}
	return out
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
