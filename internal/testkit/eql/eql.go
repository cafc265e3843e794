// Package eql parses and evaluates the part of Elasticsearch's Event Query
// Language that teleportbeat's EQL detection rules are written in,
// against documents as teleportbeat sends them and with the index
// template's types, as package kql does for KQL: a rule that names a
// field the template lacks, or compares a boolean with a string, fails a
// test instead of never firing.
//
// The subset:
//
//	any where <condition>                 an event query (category any)
//	sequence [by f, ...] [with maxspan=<n><s|m|h|d>]
//	  [any where <condition>] [by f, ...]
//	  [any where <condition>] [by f, ...] ...
//
// Conditions: field == value, field != value (case-sensitive), field :
// value (case-insensitive; * in a string is a wildcard), field in (v, ...),
// field : (v, ...), field == null / != null, and, or, not, parentheses.
// Values are "strings" (with \" \\ \n \r \t escapes), numbers, true and
// false. A sequence's join keys are its by fields followed by each
// query's own (matched by position, as Elasticsearch does).
package eql

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/teleportbeat/teleportbeat/internal/testkit/kql"
	"github.com/teleportbeat/teleportbeat/internal/testkit/querykit"
)

// Types maps field paths to their Elasticsearch type.
type Types map[string]string

// Query is a parsed EQL query: one event query, or a sequence.
type Query struct {
	Text    string
	by      []string // sequence-level join fields
	maxspan time.Duration
	stages  []stage
}

type stage struct {
	cond cond
	by   []string
}

// IsSequence reports whether the query is a sequence.
func (q *Query) IsSequence() bool { return len(q.stages) > 1 || q.by != nil }

// Fields are the fields the query names (conditions and join keys).
func (q *Query) Fields() []string {
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, f := range q.by {
		add(f)
	}
	for _, s := range q.stages {
		s.cond.fields(add)
		for _, f := range s.by {
			add(f)
		}
	}
	return out
}

// Match reports whether a document matches an event query (a query that
// is not a sequence).
func (q *Query) Match(doc map[string]any) bool {
	return !q.IsSequence() && q.stages[0].cond.eval(doc)
}

// Event is a document, its time (the sequence's order) and an id of the
// caller's.
type Event struct {
	ID   string
	Time time.Time
	Doc  map[string]any
}

// Sequences returns the sequences events complete, each as the events of
// its stages: events are taken in time order; a sequence starts with an
// event matching the first stage and moves on with the next event, of the
// same join keys, matching the next stage, within maxspan of its first;
// an event that matches the first stage while a sequence of its keys is
// open starts a new one in its place (Elasticsearch keeps the latest).
func (q *Query) Sequences(events []Event) [][]Event {
	evs := append([]Event(nil), events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	// open: join key -> the sequence in progress (its events so far).
	open := map[string][]Event{}
	var done [][]Event
	for _, e := range evs {
		// Later stages first, so that one event moves at most one
		// sequence forward.
		for i := len(q.stages) - 1; i >= 0; i-- {
			st := q.stages[i]
			if !st.cond.eval(e.Doc) {
				continue
			}
			key, ok := q.key(st, e.Doc)
			if !ok {
				continue
			}
			if i == 0 {
				open[key] = []Event{e}
				if len(q.stages) == 1 {
					done = append(done, open[key])
					delete(open, key)
				}
				break
			}
			seq := open[key]
			if len(seq) != i {
				continue
			}
			if q.maxspan > 0 && e.Time.Sub(seq[0].Time) > q.maxspan {
				delete(open, key)
				continue
			}
			seq = append(seq, e)
			if len(seq) == len(q.stages) {
				done = append(done, seq)
				delete(open, key)
			} else {
				open[key] = seq
			}
			break
		}
	}
	return done
}

// key is an event's join key for a stage: the values of the sequence's
// by fields and the stage's own; an event without one of them joins no
// sequence.
func (q *Query) key(st stage, doc map[string]any) (string, bool) {
	var b strings.Builder
	for _, f := range append(append([]string(nil), q.by...), st.by...) {
		vals := kql.Lookup(doc, f)
		if len(vals) != 1 {
			return "", false
		}
		b.WriteString(fmt.Sprint(vals[0]))
		b.WriteByte(0)
	}
	return b.String(), true
}

func (q *Query) String() string { return q.Text }

// --- conditions

type cond interface {
	eval(doc map[string]any) bool
	fields(add func(string))
	check(types Types) error
}

type boolCond struct {
	and  bool
	kids []cond
}

func (c *boolCond) eval(doc map[string]any) bool {
	return querykit.Holds(c.and, c.kids, func(k cond) bool { return k.eval(doc) })
}

func (c *boolCond) fields(add func(string)) {
	for _, k := range c.kids {
		k.fields(add)
	}
}

func (c *boolCond) check(types Types) error {
	for _, k := range c.kids {
		if err := k.check(types); err != nil {
			return err
		}
	}
	return nil
}

type notCond struct{ kid cond }

func (c *notCond) eval(doc map[string]any) bool { return !c.kid.eval(doc) }
func (c *notCond) fields(add func(string))      { c.kid.fields(add) }
func (c *notCond) check(types Types) error      { return c.kid.check(types) }

// literal is a value of the query.
type literal struct {
	Kind string // "string", "number", "bool", "null"
	Text string
}

// cmpCond is field <op> value(s).
type cmpCond struct {
	field string
	op    string // "==", "!=", ":", "in"
	vals  []literal
	typ   string
}

func (c *cmpCond) fields(add func(string)) { add(c.field) }

func (c *cmpCond) check(types Types) error {
	typ, err := querykit.FieldType(types, c.field, "EQL compares whole values")
	if err != nil {
		return err
	}
	c.typ = typ
	for _, v := range c.vals {
		if v.Kind == "null" {
			if c.op != "==" && c.op != "!=" {
				return fmt.Errorf("%s %s null: compare with null by == or !=", c.field, c.op)
			}
			continue
		}
		switch {
		case typ == "boolean":
			if v.Kind != "bool" {
				return fmt.Errorf("field %s is boolean: compare it with true or false, not %q", c.field, v.Text)
			}
		case kql.Numeric(typ):
			if v.Kind != "number" {
				return fmt.Errorf("field %s is %s: %q is not a number", c.field, typ, v.Text)
			}
		case typ == "ip":
			if v.Kind != "string" {
				return fmt.Errorf("field %s is an ip: compare it with a string", c.field)
			}
			if _, err := netip.ParseAddr(v.Text); err != nil {
				return fmt.Errorf("field %s is an ip: %q is not an address", c.field, v.Text)
			}
		default:
			if v.Kind != "string" {
				return fmt.Errorf("field %s is %s: compare it with a \"string\", not %s", c.field, typ, v.Text)
			}
			if c.op == ":" && strings.Contains(v.Text, "?") {
				return fmt.Errorf("field %s: ? in a : pattern is not modelled; use *", c.field)
			}
		}
	}
	return nil
}

func (c *cmpCond) eval(doc map[string]any) bool {
	vals := kql.Lookup(doc, c.field)
	if len(c.vals) == 1 && c.vals[0].Kind == "null" {
		if c.op == "==" {
			return len(vals) == 0
		}
		return len(vals) > 0
	}
	some := func(pred func(v any, l literal) bool) bool {
		for _, v := range vals {
			for _, l := range c.vals {
				if pred(v, l) {
					return true
				}
			}
		}
		return false
	}
	switch c.op {
	case "==", "in":
		return some(func(v any, l literal) bool { return equal(c.typ, v, l, false) })
	case "!=":
		// Elasticsearch's != on a missing field is false (null is not
		// compared).
		return len(vals) > 0 && !some(func(v any, l literal) bool { return equal(c.typ, v, l, false) })
	case ":":
		return some(func(v any, l literal) bool { return equal(c.typ, v, l, true) })
	}
	return false
}

// equal compares a document value with a literal as Elasticsearch does
// for the field's type; insensitive is the : operator (case-insensitive,
// with * wildcards).
func equal(typ string, v any, l literal, insensitive bool) bool {
	switch {
	case typ == "boolean":
		b, ok := v.(bool)
		return ok && strconv.FormatBool(b) == l.Text
	case kql.Numeric(typ):
		f, ok := kql.Number(v)
		want, err := strconv.ParseFloat(l.Text, 64)
		return ok && err == nil && f == want
	case typ == "ip":
		s, _ := v.(string)
		a, err1 := netip.ParseAddr(s)
		b, err2 := netip.ParseAddr(l.Text)
		return err1 == nil && err2 == nil && a == b
	}
	s := fmt.Sprint(v)
	if !insensitive {
		return s == l.Text
	}
	return wildcard(strings.ToLower(l.Text), strings.ToLower(s))
}

// wildcard matches s against a pattern where * is any run of characters.
func wildcard(pattern, s string) bool { return querykit.Wildcard(pattern, s, '*') }

// --- parser

// Parse parses a query and checks it against the field types.
func Parse(text string, types Types) (*Query, error) {
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &parser{querykit.Cursor{Lang: "eql", Text: text, Toks: toks}}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	if !p.Done() {
		return nil, p.Errorf("unexpected %q", p.Peek().Text)
	}
	q.Text = text
	for _, f := range q.by {
		if _, ok := types[f]; !ok {
			return nil, fmt.Errorf("eql %q: join field %s is not in the index template", text, f)
		}
	}
	for i, s := range q.stages {
		if err := s.cond.check(types); err != nil {
			return nil, fmt.Errorf("eql %q: %w", text, err)
		}
		for _, f := range s.by {
			if _, ok := types[f]; !ok {
				return nil, fmt.Errorf("eql %q: join field %s is not in the index template", text, f)
			}
		}
		if i > 0 && len(s.by) != len(q.stages[0].by) {
			return nil, fmt.Errorf("eql %q: every stage of a sequence joins on as many by fields", text)
		}
	}
	return q, nil
}

type token = querykit.Token

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case unicode.IsSpace(rune(c)):
			i++
		case strings.ContainsRune("()[],", rune(c)):
			out = append(out, querykit.Token{Kind: string(c), Text: string(c), Pos: i})
			i++
		case c == '=' || c == '!':
			if i+1 < len(s) && s[i+1] == '=' {
				out = append(out, querykit.Token{Kind: "op", Text: s[i : i+2], Pos: i})
				i += 2
			} else if c == '=' {
				out = append(out, querykit.Token{Kind: "=", Text: "=", Pos: i})
				i++
			} else {
				return nil, fmt.Errorf("eql %q at %d: ! without =", s, i)
			}
		case c == ':':
			out = append(out, querykit.Token{Kind: "op", Text: ":", Pos: i})
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					switch s[j] {
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					case '"', '\\':
						b.WriteByte(s[j])
					default:
						return nil, fmt.Errorf("eql %q at %d: unknown escape \\%c", s, j-1, s[j])
					}
					continue
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("eql %q at %d: unterminated string", s, i)
			}
			out = append(out, querykit.Token{Kind: "string", Text: b.String(), Pos: i})
			i = j + 1
		case c == '\'':
			return nil, fmt.Errorf("eql %q at %d: strings are \"double-quoted\" (single quotes are deprecated)", s, i)
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || unicode.IsLetter(rune(s[j]))) {
				j++
			}
			out = append(out, querykit.Token{Kind: "number", Text: s[i:j], Pos: i})
			i = j
		case c == '_' || c == '@' || unicode.IsLetter(rune(c)):
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == '.' || s[j] == '@' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			out = append(out, querykit.Token{Kind: "word", Text: s[i:j], Pos: i})
			i = j
		default:
			return nil, fmt.Errorf("eql %q at %d: unexpected %q", s, i, c)
		}
	}
	return out, nil
}

type parser struct{ querykit.Cursor }

func (p *parser) word(w string) bool {
	t := p.Peek()
	return t.Kind == "word" && t.Text == w
}

func (p *parser) expect(kind, text string) error {
	t := p.Peek()
	if t.Kind != kind || (text != "" && t.Text != text) {
		want := text
		if want == "" {
			want = kind
		}
		return p.Errorf("expected %s, found %q", want, t.Text)
	}
	p.I++
	return nil
}

func (p *parser) query() (*Query, error) {
	if !p.word("sequence") {
		c, err := p.eventQuery()
		if err != nil {
			return nil, err
		}
		return &Query{stages: []stage{{cond: c}}}, nil
	}
	p.I++
	q := &Query{by: []string{}}
	if err := p.byFields(&q.by); err != nil {
		return nil, err
	}
	if p.word("with") {
		p.I++
		if err := p.expect("word", "maxspan"); err != nil {
			return nil, err
		}
		if err := p.expect("=", ""); err != nil {
			return nil, err
		}
		t := p.Peek()
		if t.Kind != "number" {
			return nil, p.Errorf("maxspan needs a duration such as 1h")
		}
		d, err := span(t.Text)
		if err != nil {
			return nil, p.Errorf("%v", err)
		}
		q.maxspan = d
		p.I++
	}
	for p.Peek().Kind == "[" {
		c, err := querykit.Enclosed(&p.Cursor, "]", "", p.eventQuery)
		if err != nil {
			return nil, err
		}
		st := stage{cond: c}
		if err := p.byFields(&st.by); err != nil {
			return nil, err
		}
		q.stages = append(q.stages, st)
	}
	if len(q.stages) < 2 {
		return nil, p.Errorf("a sequence needs at least two [ ] queries")
	}
	return q, nil
}

// span reads an EQL time span: a number and s, m, h or d.
func span(s string) (time.Duration, error) {
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	if len(s) < 2 {
		return 0, fmt.Errorf("maxspan %q: a number and s, m, h or d", s)
	}
	u, ok := units[s[len(s)-1]]
	n, err := strconv.Atoi(s[:len(s)-1])
	if !ok || err != nil || n <= 0 {
		return 0, fmt.Errorf("maxspan %q: a number and s, m, h or d", s)
	}
	return time.Duration(n) * u, nil
}

// byFields reads "by" and its fields into by, if the next word is by.
func (p *parser) byFields(by *[]string) error {
	if !p.word("by") {
		return nil
	}
	p.I++
	fs, err := p.fieldList()
	if err != nil {
		return err
	}
	*by = fs
	return nil
}

func (p *parser) fieldList() ([]string, error) {
	var out []string
	for {
		t := p.Peek()
		if t.Kind != "word" {
			return nil, p.Errorf("a field name is missing")
		}
		out = append(out, t.Text)
		p.I++
		if p.Peek().Kind != "," {
			return out, nil
		}
		p.I++
	}
}

func (p *parser) eventQuery() (cond, error) {
	t := p.Peek()
	if t.Kind != "word" {
		return nil, p.Errorf("an event category is missing")
	}
	if t.Text != "any" {
		return nil, p.Errorf("event category %q: only any is modelled (teleportbeat's events carry no event.category EQL could rely on)", t.Text)
	}
	p.I++
	if err := p.expect("word", "where"); err != nil {
		return nil, err
	}
	return p.or()
}

func (p *parser) or() (cond, error) {
	return querykit.Bool[cond]{
		Keyword: p.word, Next: func() { p.I++ }, Operand: p.operand,
		Join: func(and bool, kids []cond) cond { return &boolCond{and: and, kids: kids} },
		Not:  func(c cond) cond { return &notCond{kid: c} },
	}.Or()
}

// operand is a comparison, or an expression in parentheses.
func (p *parser) operand() (cond, error) {
	if p.Peek().Kind == "(" {
		return querykit.Enclosed(&p.Cursor, ")", "", p.or)
	}
	return p.comparison()
}

func (p *parser) comparison() (cond, error) {
	f := p.Peek()
	if f.Kind != "word" {
		return nil, p.Errorf("a field is missing")
	}
	p.I++
	op := p.Peek()
	switch {
	case op.Kind == "op":
		p.I++
		if p.Peek().Kind == "(" {
			if op.Text != ":" {
				return nil, p.Errorf("a list of values goes with in or :")
			}
			vals, err := p.valueList()
			if err != nil {
				return nil, err
			}
			return &cmpCond{field: f.Text, op: ":", vals: vals}, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		return &cmpCond{field: f.Text, op: op.Text, vals: []literal{v}}, nil
	case op.Kind == "word" && op.Text == "in":
		p.I++
		vals, err := p.valueList()
		if err != nil {
			return nil, err
		}
		return &cmpCond{field: f.Text, op: "in", vals: vals}, nil
	}
	return nil, p.Errorf("%s needs an operator (==, !=, :, in)", f.Text)
}

func (p *parser) valueList() ([]literal, error) {
	if err := p.expect("(", ""); err != nil {
		return nil, err
	}
	var out []literal
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if p.Peek().Kind == ")" {
			p.I++
			return out, nil
		}
		if err := p.expect(",", ""); err != nil {
			return nil, err
		}
	}
}

func (p *parser) value() (literal, error) {
	t := p.Peek()
	p.I++
	switch {
	case t.Kind == "string":
		return literal{Kind: "string", Text: t.Text}, nil
	case t.Kind == "number":
		if _, err := strconv.ParseFloat(t.Text, 64); err != nil {
			return literal{}, fmt.Errorf("eql %q at %d: %q is not a number", p.Text, t.Pos, t.Text)
		}
		return literal{Kind: "number", Text: t.Text}, nil
	case t.Kind == "word" && (t.Text == "true" || t.Text == "false"):
		return literal{Kind: "bool", Text: t.Text}, nil
	case t.Kind == "word" && t.Text == "null":
		return literal{Kind: "null", Text: "null"}, nil
	}
	p.I--
	return literal{}, p.Errorf("a value is missing (a \"string\", a number, true, false or null)")
}
