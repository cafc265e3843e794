package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/elastic/elastic-agent-libs/mapstr"

	"github.com/teleportbeat/teleportbeat/internal/testkit/eql"
	"github.com/teleportbeat/teleportbeat/internal/testkit/kql"
)

// The detection engine, as Kibana runs a rule: every interval, over the
// documents Elasticsearch holds by then whose time (timestamp_override,
// else @timestamp; a document without the override field falls back to
// @timestamp) is within the look-back (from) — so the tests judge a rule
// by what Kibana would alert on, not by its query alone:
//
//   - query: an alert per matching document, once (Kibana's alert ids
//     are per document);
//   - threshold: per group of the threshold fields, an alert when the
//     run's window holds at least value matching documents (and, with a
//     cardinality, at least that many distinct values), counting only
//     documents after the group's last alert (Kibana's threshold signal
//     history);
//   - eql: the sequences the window's documents complete, once each;
//   - new_terms: per combination of the new terms fields' values in a
//     window document, an alert when no matching document of the history
//     window (history_window_start up to the run's from) had it.

// tdoc is a document and when Elasticsearch ingested it.
type tdoc struct {
	id       string
	at       time.Time // @timestamp
	ingested time.Time
	doc      map[string]any
}

// matcher is a rule's compiled query.
type matcher struct {
	kql *kql.Query
	eql *eql.Query
}

func compile(r Rule, types map[string]string) (matcher, error) {
	if r.Type() == "eql" {
		q, err := eql.Parse(r.Object["query"].(string), eql.Types(types))
		return matcher{eql: q}, err
	}
	q, err := kql.Parse(r.Object["query"].(string), kql.Types(types))
	return matcher{kql: q}, err
}

func (m matcher) match(doc map[string]any) bool {
	if m.eql != nil {
		return m.eql.Match(doc)
	}
	return m.kql.Match(doc)
}

// engine runs rules over a timeline.
type engine struct {
	rule  Rule
	q     matcher
	from  time.Duration // the look-back
	every time.Duration // the interval
}

func newEngine(r Rule, q matcher) engine {
	from, err := dateMath(r.Object["from"].(string))
	if err != nil {
		panic(err)
	}
	every, err := time.ParseDuration(r.Object["interval"].(string))
	if err != nil {
		panic(err)
	}
	return engine{rule: r, q: q, from: from, every: every}
}

// dateMath reads "now-9m", "now-30d".
func dateMath(s string) (time.Duration, error) {
	rest, ok := strings.CutPrefix(s, "now-")
	if !ok || len(rest) < 2 {
		return 0, fmt.Errorf("date math %q: now-<n><unit> expected", s)
	}
	n, unit := rest[:len(rest)-1], rest[len(rest)-1]
	var v int
	if _, err := fmt.Sscanf(n, "%d", &v); err != nil {
		return 0, fmt.Errorf("date math %q: %w", s, err)
	}
	mult := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("date math %q: unit %c", s, unit)
	}
	return time.Duration(v) * mult, nil
}

// timeOf is the time a rule searches a document by.
func (e engine) timeOf(d tdoc) time.Time {
	if f, _ := e.rule.Object["timestamp_override"].(string); f != "" {
		if v, err := mapstr.M(d.doc).GetValue(f); err == nil {
			if s, ok := v.(string); ok {
				if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
					return t
				}
			}
		}
		if fb, _ := e.rule.Object["timestamp_override_fallback_disabled"].(bool); fb {
			return time.Time{}
		}
	}
	return d.at
}

// run evaluates the rule at every interval from start until every
// document is past the look-back, and returns the alerts (each a list of
// document ids).
func (e engine) run(docs []tdoc, start time.Time) [][]string {
	var last time.Time
	for _, d := range docs {
		if t := e.timeOf(d); t.After(last) {
			last = t
		}
		if d.ingested.After(last) {
			last = d.ingested
		}
	}
	var alerts [][]string
	seen := map[string]bool{}
	thresholdSince := map[string]time.Time{}
	suppressed := map[string]time.Time{} // suppression group -> when its alert was raised
	for now := start; !now.After(last.Add(e.from + e.every)); now = now.Add(e.every) {
		var window, visible []tdoc
		for _, d := range docs {
			if d.ingested.After(now) {
				continue // not in Elasticsearch yet
			}
			visible = append(visible, d)
			if t := e.timeOf(d); t.After(now.Add(-e.from)) && !t.After(now) {
				window = append(window, d)
			}
		}
		for _, a := range e.evaluate(window, visible, now, thresholdSince) {
			key := strings.Join(a, ",")
			if seen[key] {
				continue
			}
			seen[key] = true
			if g, ok := e.suppressionGroup(a, docs); ok {
				if at, ok := suppressed[g]; ok && now.Sub(at) < e.suppressFor() {
					continue // folded into the group's alert
				}
				suppressed[g] = now
			}
			alerts = append(alerts, a)
		}
	}
	return alerts
}

// suppressFor is the rule's alert suppression duration (0: none).
func (e engine) suppressFor() time.Duration {
	s := asMap(e.rule.Object["alert_suppression"])
	d := asMap(s["duration"])
	if d == nil {
		return 0
	}
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[fmt.Sprint(d["unit"])]
	return time.Duration(d["value"].(float64)) * unit
}

// suppressionGroup is the group an alert is suppressed in, as Kibana's
// alert suppression groups them: by group_by's values (a missing value is
// a value of its own, missing_fields_strategy suppress), or for a
// threshold rule by its threshold fields.
func (e engine) suppressionGroup(alert []string, docs []tdoc) (string, bool) {
	if e.suppressFor() == 0 {
		return "", false
	}
	var doc map[string]any
	for _, d := range docs {
		if d.id == alert[0] {
			doc = d.doc
		}
	}
	var fields []string
	if e.rule.Type() == "threshold" {
		for _, f := range asList(asMap(e.rule.Object["threshold"])["field"]) {
			fields = append(fields, f.(string))
		}
	} else {
		for _, f := range asList(asMap(e.rule.Object["alert_suppression"])["group_by"]) {
			fields = append(fields, f.(string))
		}
	}
	var key []string
	for _, f := range fields {
		key = append(key, strings.Join(values(doc, f), "|"))
	}
	return strings.Join(key, "\x00"), true
}

func (e engine) evaluate(window, visible []tdoc, now time.Time, thresholdSince map[string]time.Time) [][]string {
	switch e.rule.Type() {
	case "query":
		var out [][]string
		for _, d := range window {
			if e.q.match(d.doc) {
				out = append(out, []string{d.id})
			}
		}
		return out
	case "threshold":
		return e.threshold(window, thresholdSince)
	case "eql":
		var evs []eql.Event
		for _, d := range window {
			evs = append(evs, eql.Event{ID: d.id, Time: d.at, Doc: d.doc})
		}
		var out [][]string
		for _, seq := range e.q.eql.Sequences(evs) {
			var ids []string
			for _, ev := range seq {
				ids = append(ids, ev.ID)
			}
			out = append(out, ids)
		}
		return out
	case "new_terms":
		return e.newTerms(window, visible, now)
	}
	panic("rule type " + e.rule.Type())
}

func (e engine) threshold(window []tdoc, since map[string]time.Time) [][]string {
	th := e.rule.Object["threshold"].(map[string]any)
	var fields []string
	for _, f := range th["field"].([]any) {
		fields = append(fields, f.(string))
	}
	groups := map[string][]tdoc{}
	for _, d := range window {
		if !e.q.match(d.doc) {
			continue
		}
		key, ok := groupKey(d.doc, fields)
		if !ok {
			continue // Kibana's terms aggregation leaves them out
		}
		if t, ok := since[key]; ok && !e.timeOf(d).After(t) {
			continue // counted in an earlier alert
		}
		groups[key] = append(groups[key], d)
	}
	var out [][]string
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		g := groups[key]
		if float64(len(g)) < th["value"].(float64) {
			continue
		}
		if !cardinalityHolds(th, g) {
			continue
		}
		var ids []string
		latest := time.Time{}
		for _, d := range g {
			ids = append(ids, d.id)
			if t := e.timeOf(d); t.After(latest) {
				latest = t
			}
		}
		since[key] = latest
		out = append(out, ids)
	}
	return out
}

func cardinalityHolds(th map[string]any, g []tdoc) bool {
	card, _ := th["cardinality"].([]any)
	for _, c := range card {
		c := c.(map[string]any)
		distinct := map[string]bool{}
		for _, d := range g {
			for _, v := range values(d.doc, c["field"].(string)) {
				distinct[v] = true
			}
		}
		if float64(len(distinct)) < c["value"].(float64) {
			return false
		}
	}
	return true
}

func groupKey(doc map[string]any, fields []string) (string, bool) {
	var b strings.Builder
	for _, f := range fields {
		vals := values(doc, f)
		if len(vals) == 0 {
			return "", false
		}
		b.WriteString(strings.Join(vals, "|"))
		b.WriteByte(0)
	}
	return b.String(), true
}

// values are a field's values as strings (arrays flattened).
func values(doc map[string]any, field string) []string {
	v, err := mapstr.M(doc).GetValue(field)
	if err != nil {
		return nil
	}
	switch v := v.(type) {
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	case []string:
		return v
	}
	return []string{fmt.Sprint(v)}
}

// terms are the combinations of a document's values of the fields.
func terms(doc map[string]any, fields []string) []string {
	combos := []string{""}
	for _, f := range fields {
		vals := values(doc, f)
		if len(vals) == 0 {
			return nil
		}
		var next []string
		for _, c := range combos {
			for _, v := range vals {
				next = append(next, c+v+"\x00")
			}
		}
		combos = next
	}
	return combos
}

func (e engine) newTerms(window, visible []tdoc, now time.Time) [][]string {
	var fields []string
	for _, f := range e.rule.Object["new_terms_fields"].([]any) {
		fields = append(fields, f.(string))
	}
	histFrom, err := dateMath(e.rule.Object["history_window_start"].(string))
	if err != nil {
		panic(err)
	}
	known := map[string]bool{}
	for _, d := range visible {
		t := e.timeOf(d)
		if t.After(now.Add(-histFrom)) && !t.After(now.Add(-e.from)) && e.q.match(d.doc) {
			for _, c := range terms(d.doc, fields) {
				known[c] = true
			}
		}
	}
	var out [][]string
	for _, d := range window {
		if !e.q.match(d.doc) {
			continue
		}
		for _, c := range terms(d.doc, fields) {
			if !known[c] {
				out = append(out, []string{d.id, strings.ReplaceAll(c, "\x00", "/")})
			}
		}
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(strings.Join(a, ","), strings.Join(b, ",")) })
	return out
}
