// Package kql parses and evaluates the part of Kibana's query language
// (KQL) that teleportbeat's detection rules are written in, against
// documents as teleportbeat sends them, with the types of the index
// template: so that a rule's query can be checked in Go against the
// mapper's output, and a rule that compares a boolean with a string, or
// names a field the template does not have, fails a test instead of never
// firing.
//
// The subset, with Elasticsearch's semantics on the types it allows:
//
//	field: value            term; a value of a keyword field is compared
//	                        exactly (case-sensitive); * is a wildcard in an
//	                        unquoted value (? is not: KQL has no
//	                        one-character wildcard), \* a literal star; a
//	                        quoted value is literal
//	\t \r \n \uXXXX        a tab, carriage return, line feed, character,
//	                        quoted or not; unquoted, \ before one of
//	                        \():<>"*{} or a keyword (and, or, not) makes it
//	                        literal; quoted, \" and \\ are a quote and a
//	                        backslash
//	field: "a b"            the same, quoted
//	field: (a or b)         any of the values (and/or/not inside)
//	field: *                the field exists
//	field >= 10             range on numbers (>, >=, <, <=)
//	a and b, a or b, not a  with KQL's precedence (not, and, or), parentheses
//
// Values of boolean fields must be true or false, of numeric fields
// numbers, of ip fields an address or a CIDR range. Fields of type text
// (analyzed: KQL matches words there, which this package does not model)
// and nested queries ({ }) are refused.
package kql

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"github.com/elastic/elastic-agent-libs/mapstr"
	"github.com/teleportbeat/teleportbeat/internal/testkit/querykit"
)

// Query is a parsed query.
type Query struct {
	root node
	Text string
}

// Fields are the fields the query names.
func (q *Query) Fields() []string {
	seen := map[string]bool{}
	var out []string
	var walk func(n node)
	walk = func(n node) {
		switch n := n.(type) {
		case *boolNode:
			for _, c := range n.kids {
				walk(c)
			}
		case *notNode:
			walk(n.kid)
		case *fieldNode:
			if !seen[n.field] {
				seen[n.field] = true
				out = append(out, n.field)
			}
		}
	}
	walk(q.root)
	return out
}

func (q *Query) String() string { return q.Text }

// Types maps field paths to their Elasticsearch type (fieldsyml.Types).
type Types map[string]string

// Parse parses a query and checks it against the field types.
func Parse(text string, types Types) (*Query, error) {
	p := &parser{querykit.Cursor{Lang: "kql", Text: text}}
	if err := p.lex(); err != nil {
		return nil, err
	}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	if !p.Done() {
		return nil, p.Errorf("unexpected %q", p.Peek().Text)
	}
	q := &Query{root: root, Text: text}
	if err := check(root, types); err != nil {
		return nil, fmt.Errorf("kql %q: %w", text, err)
	}
	return q, nil
}

// Match reports whether a document matches. Documents are nested maps, as
// the mapper builds them (mapstr.M or map[string]any), with arrays as
// slices: a field matches if any of its values does.
func (q *Query) Match(doc map[string]any) bool { return q.root.match(doc) }

// --- syntax tree

type node interface {
	match(doc map[string]any) bool
}

type boolNode struct {
	and  bool
	kids []node
}

func (n *boolNode) match(doc map[string]any) bool {
	return querykit.Holds(n.and, n.kids, func(k node) bool { return k.match(doc) })
}

type notNode struct{ kid node }

func (n *notNode) match(doc map[string]any) bool { return !n.kid.match(doc) }

// fieldNode is a condition on one field.
type fieldNode struct {
	field string
	typ   string
	op    string // ":", ">", ">=", "<", "<="
	vals  valueExpr
}

// valueExpr is a field's value, or an and/or/not of values.
type valueExpr interface{}

type valueTerm struct {
	Text   string
	Quoted bool
}

type valueBool struct {
	and  bool
	kids []valueExpr
}

type valueNot struct{ kid valueExpr }

func (n *fieldNode) match(doc map[string]any) bool {
	vals := Lookup(doc, n.field)
	if n.op != ":" {
		want, _ := strconv.ParseFloat(n.vals.(valueTerm).Text, 64)
		for _, v := range vals {
			if f, ok := Number(v); ok && compare(f, n.op, want) {
				return true
			}
		}
		return false
	}
	return n.matchValue(n.vals, vals)
}

func (n *fieldNode) matchValue(e valueExpr, vals []any) bool {
	switch e := e.(type) {
	case valueBool:
		for _, k := range e.kids {
			if n.matchValue(k, vals) != e.and {
				return !e.and
			}
		}
		return e.and
	case valueNot:
		return !n.matchValue(e.kid, vals)
	case valueTerm:
		if e.Text == anyValue {
			return len(vals) > 0
		}
		for _, v := range vals {
			if n.term(e, v) {
				return true
			}
		}
	}
	return false
}

// term compares one document value with one query value as
// Elasticsearch compares them for the field's type.
func (n *fieldNode) term(t valueTerm, v any) bool {
	switch n.typ {
	case "boolean":
		b, ok := v.(bool)
		return ok && strconv.FormatBool(b) == t.Text
	case "long", "integer", "short", "byte", "float", "double", "scaled_float", "half_float", "unsigned_long":
		f, ok := Number(v)
		want, err := strconv.ParseFloat(t.Text, 64)
		return ok && err == nil && f == want
	case "ip":
		s, ok := v.(string)
		if !ok {
			return false
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return false
		}
		if p, err := netip.ParsePrefix(t.Text); err == nil {
			return p.Contains(a)
		}
		w, err := netip.ParseAddr(t.Text)
		return err == nil && w == a
	default: // keyword, constant_keyword, wildcard, flattened leaves
		s := fmt.Sprint(v)
		if strings.ContainsRune(t.Text, wildcardRune) {
			return wildcard(t.Text, s)
		}
		return s == t.Text
	}
}

// wildcardRune stands for an unescaped * of an unquoted value: the lexer
// turns it into this (a private-use character), so that a literal star
// (quoted, or escaped as \*) stays a star.
const wildcardRune = '\uE000'

// anyValue is the value "*": the field exists.
const anyValue = string(wildcardRune)

// wildcard matches s against a pattern where wildcardRune is any run of
// characters (KQL's * on a keyword: Elasticsearch's wildcard query, whose
// ? KQL escapes, so ? is literal).
func wildcard(pattern, s string) bool { return querykit.Wildcard(pattern, s, wildcardRune) }

func compare(f float64, op string, want float64) bool {
	switch op {
	case ">":
		return f > want
	case ">=":
		return f >= want
	case "<":
		return f < want
	case "<=":
		return f <= want
	}
	return false
}

// Number is a document value as a number, when it is one (the EQL
// evaluator shares it).
func Number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	case float32:
		return float64(n), true
	}
	return 0, false
}

// Lookup returns the values at a dotted path; objects may nest along the
// path or hold dotted keys, as Elasticsearch reads both; arrays are
// flattened (the EQL evaluator shares it).
func Lookup(doc map[string]any, field string) []any {
	var out []any
	var walk func(v any, rest string)
	walk = func(v any, rest string) {
		if rest == "" {
			switch v := v.(type) {
			case nil:
			case []any:
				for _, e := range v {
					walk(e, "")
				}
			case []string:
				for _, e := range v {
					out = append(out, e)
				}
			default:
				out = append(out, v)
			}
			return
		}
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e, rest)
			}
		default:
			m := asMap(v)
			if m == nil {
				return
			}
			for i := len(rest); i > 0; i-- {
				if i < len(rest) && rest[i] != '.' {
					continue
				}
				if sub, ok := m[rest[:i]]; ok {
					next := ""
					if i < len(rest) {
						next = rest[i+1:]
					}
					walk(sub, next)
				}
			}
		}
	}
	walk(doc, field)
	return out
}

func asMap(v any) map[string]any {
	switch m := v.(type) {
	case map[string]any:
		return m
	case mapstr.M:
		return m
	}
	return nil
}

// --- type checking

func check(n node, types Types) error {
	switch n := n.(type) {
	case *boolNode:
		for _, k := range n.kids {
			if err := check(k, types); err != nil {
				return err
			}
		}
	case *notNode:
		return check(n.kid, types)
	case *fieldNode:
		typ, err := querykit.FieldType(types, n.field, "KQL matches words of analyzed text, which is not modelled")
		if err != nil {
			return err
		}
		n.typ = typ
		if n.op != ":" {
			if !Numeric(typ) {
				return fmt.Errorf("range on %s, a %s field: only numeric ranges are supported", n.field, typ)
			}
			if _, err := strconv.ParseFloat(n.vals.(valueTerm).Text, 64); err != nil {
				return fmt.Errorf("range on %s: %q is not a number", n.field, n.vals.(valueTerm).Text)
			}
			return nil
		}
		return checkValue(n.field, typ, n.vals)
	}
	return nil
}

// Numeric says whether an Elasticsearch field type holds numbers.
func Numeric(typ string) bool {
	switch typ {
	case "long", "integer", "short", "byte", "float", "double", "scaled_float", "half_float", "unsigned_long":
		return true
	}
	return false
}

func checkValue(field, typ string, e valueExpr) error {
	switch e := e.(type) {
	case valueBool:
		for _, k := range e.kids {
			if err := checkValue(field, typ, k); err != nil {
				return err
			}
		}
		return nil
	case valueNot:
		return checkValue(field, typ, e.kid)
	case valueTerm:
		if e.Text == anyValue {
			return nil
		}
		switch {
		case typ == "boolean":
			if e.Quoted || (e.Text != "true" && e.Text != "false") {
				return fmt.Errorf("field %s is boolean: compare it with true or false, unquoted, not %q", field, e.Text)
			}
		case Numeric(typ):
			if _, err := strconv.ParseFloat(e.Text, 64); err != nil {
				return fmt.Errorf("field %s is %s: %q is not a number", field, typ, e.Text)
			}
		case typ == "ip":
			if _, err := netip.ParsePrefix(e.Text); err != nil {
				if _, err := netip.ParseAddr(e.Text); err != nil {
					return fmt.Errorf("field %s is an ip: %q is neither an address nor a CIDR range", field, e.Text)
				}
			}
		}
	}
	return nil
}

// --- lexer and parser

type token = querykit.Token

type parser struct{ querykit.Cursor }

func (p *parser) lex() error {
	s := p.Text
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '(' || c == ')' || c == ':' || c == '{' || c == '}':
			p.Toks = append(p.Toks, querykit.Token{Kind: string(c), Text: string(c), Pos: i})
			i++
		case c == '<' || c == '>':
			op := string(c)
			if i+1 < len(s) && s[i+1] == '=' {
				op += "="
			}
			p.Toks = append(p.Toks, querykit.Token{Kind: "op", Text: op, Pos: i})
			i += len(op)
		case c == '"':
			// Kibana's grammar (kbn-es-query kuery grammar.peggy,
			// QuotedCharacter): \t \r \n, \uXXXX, \" and \\ are
			// escapes; any other character, a backslash included, is
			// itself.
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					if r, n, ok := whitespaceOrUnicode(s[j:]); ok {
						b.WriteRune(r)
						j += n - 1
						continue
					}
					if s[j+1] == '"' || s[j+1] == '\\' {
						j++
					}
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return fmt.Errorf("kql %q at %d: unterminated string", s, i)
			}
			p.Toks = append(p.Toks, querykit.Token{Kind: "word", Text: b.String(), Quoted: true, Pos: i})
			i = j + 1
		default:
			// UnquotedCharacter: \t \r \n, \uXXXX, \ before a special
			// character or a keyword (literal), an unescaped * (the
			// wildcard), or any character but a special one and space.
			var b strings.Builder
			j := i
			for j < len(s) {
				ch := s[j]
				if ch == '\\' {
					if r, n, ok := whitespaceOrUnicode(s[j:]); ok {
						b.WriteRune(r)
						j += n
						continue
					}
					if j+1 < len(s) && strings.ContainsRune(specialChars, rune(s[j+1])) {
						b.WriteByte(s[j+1])
						j += 2
						continue
					}
					if kw := escapedKeyword(s[j+1:]); kw != "" {
						b.WriteString(kw)
						j += 1 + len(kw)
						continue
					}
					return fmt.Errorf("kql %q at %d: a backslash escapes only \\t, \\r, \\n, \\uXXXX, one of %s or a keyword", s, j, specialChars)
				}
				if unicode.IsSpace(rune(ch)) || strings.ContainsRune("():<>\"{}", rune(ch)) {
					break
				}
				if ch == '*' {
					b.WriteRune(wildcardRune)
				} else {
					b.WriteByte(ch)
				}
				j++
			}
			p.Toks = append(p.Toks, querykit.Token{Kind: "word", Text: b.String(), Pos: i})
			i = j
		}
	}
	return nil
}

// specialChars are KQL's special characters (grammar.peggy).
const specialChars = `\():<>"*{}`

// whitespaceOrUnicode reads an escape at the start of s (a backslash):
// \t, \r, \n or \uXXXX; n is its length.
func whitespaceOrUnicode(s string) (r rune, n int, ok bool) {
	if len(s) < 2 {
		return 0, 0, false
	}
	switch s[1] {
	case 't':
		return '\t', 2, true
	case 'r':
		return '\r', 2, true
	case 'n':
		return '\n', 2, true
	case 'u':
		if len(s) >= 6 {
			if v, err := strconv.ParseUint(s[2:6], 16, 32); err == nil {
				return rune(v), 6, true
			}
		}
	}
	return 0, 0, false
}

// escapedKeyword returns the keyword (or, and, not, any case) s starts
// with, "" if none.
func escapedKeyword(s string) string {
	for _, kw := range []string{"and", "not", "or"} {
		if len(s) >= len(kw) && strings.EqualFold(s[:len(kw)], kw) {
			return s[:len(kw)]
		}
	}
	return ""
}

func (p *parser) keyword(k string) bool {
	t := p.Peek()
	return t.Kind == "word" && !t.Quoted && strings.EqualFold(t.Text, k)
}

func (p *parser) or() (node, error) {
	return boolOf(p, p.primary, func(and bool, kids []node) node { return &boolNode{and: and, kids: kids} }, func(n node) node { return &notNode{kid: n} })
}

// boolOf parses KQL's or, and and not over operands (conditions, or a
// field's values).
func boolOf[T any](p *parser, operand func() (T, error), join func(bool, []T) T, not func(T) T) (T, error) {
	return querykit.Bool[T]{Keyword: p.keyword, Next: p.Next, Operand: operand, Join: join, Not: not}.Or()
}

func (p *parser) primary() (node, error) {
	t := p.Peek()
	switch {
	case t.Kind == "(":
		return querykit.Enclosed(&p.Cursor, ")", "", p.or)
	case t.Kind == "word" && !t.Quoted:
		p.I++
		next := p.Peek()
		switch next.Kind {
		case ":":
			p.I++
			if p.Peek().Kind == "{" {
				return nil, p.Errorf("nested queries ({ }) are not supported")
			}
			v, err := p.valueExpr()
			if err != nil {
				return nil, err
			}
			return &fieldNode{field: t.Text, op: ":", vals: v}, nil
		case "op":
			p.I++
			v := p.Peek()
			if v.Kind != "word" {
				return nil, p.Errorf("a range needs a value")
			}
			p.I++
			return &fieldNode{field: t.Text, op: next.Text, vals: valueTerm{Text: v.Text, Quoted: v.Quoted}}, nil
		}
		return nil, p.Errorf("%q has no field: free-text queries are not supported", t.Text)
	}
	return nil, p.Errorf("unexpected %q", t.Text)
}

func (p *parser) valueExpr() (valueExpr, error) {
	t := p.Peek()
	switch t.Kind {
	case "(":
		return querykit.Enclosed(&p.Cursor, ")", " after values", p.valueOr)
	case "word":
		p.I++
		return valueTerm{Text: t.Text, Quoted: t.Quoted}, nil
	}
	return nil, p.Errorf("a value is missing")
}

func (p *parser) valueOr() (valueExpr, error) {
	return boolOf(p, p.valueExpr, func(and bool, kids []valueExpr) valueExpr { return valueBool{and: and, kids: kids} }, func(v valueExpr) valueExpr { return valueNot{kid: v} })
}
