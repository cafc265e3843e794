// Package querykit is what the KQL and EQL stand-ins (internal/testkit/kql,
// internal/testkit/eql) parse and match alike: the boolean grammar both
// languages share (or, and, not, by precedence) and the wildcard match of
// a keyword.
package querykit

import "fmt"

// Bool parses operands joined by or and and, each maybe negated by not:
// not binds tightest, then and, then or, as in KQL and EQL. Keyword
// reports whether the next token is the keyword; Next consumes it.
type Bool[T any] struct {
	Keyword func(word string) bool
	Next    func()
	Operand func() (T, error)
	Join    func(and bool, kids []T) T
	Not     func(T) T
}

// Or parses an expression.
func (b Bool[T]) Or() (T, error) { return b.chain("or", b.and) }

func (b Bool[T]) and() (T, error) { return b.chain("and", b.not) }

func (b Bool[T]) chain(keyword string, next func() (T, error)) (T, error) {
	first, err := next()
	if err != nil {
		return first, err
	}
	kids := []T{first}
	for b.Keyword(keyword) {
		b.Next()
		n, err := next()
		if err != nil {
			return n, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return b.Join(keyword == "and", kids), nil
}

func (b Bool[T]) not() (T, error) {
	if b.Keyword("not") {
		b.Next()
		n, err := b.not()
		if err != nil {
			return n, err
		}
		return b.Not(n), nil
	}
	return b.Operand()
}

// Holds reports whether every kid holds (and) or any does (or), asking
// no more kids than it needs.
func Holds[T any](and bool, kids []T, holds func(T) bool) bool {
	for _, k := range kids {
		if holds(k) != and {
			return !and
		}
	}
	return and
}

// Wildcard matches s against a pattern where any (a rune that stands for
// itself nowhere else) is any run of characters.
func Wildcard(pattern, s string, any rune) bool {
	p, r := []rune(pattern), []rune(s)
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(r) {
		switch {
		case pi < len(p) && p[pi] != any && p[pi] == r[si]:
			pi++
			si++
		case pi < len(p) && p[pi] == any:
			star, mark = pi, si
			pi++
		case star >= 0:
			pi, mark = star+1, mark+1
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == any {
		pi++
	}
	return pi == len(p)
}

// Token is a lexed token: its kind ("word", "op", "(", ...), its text,
// whether it was quoted, and where it starts.
type Token struct {
	Kind, Text string
	Quoted     bool
	Pos        int
}

// Cursor walks a query's tokens.
type Cursor struct {
	Lang, Text string // the language (for errors) and the query
	Toks       []Token
	I          int
}

// Errorf is an error at the current token.
func (c *Cursor) Errorf(f string, args ...any) error {
	pos := len(c.Text)
	if c.I < len(c.Toks) {
		pos = c.Toks[c.I].Pos
	}
	return fmt.Errorf("%s %q at %d: %s", c.Lang, c.Text, pos, fmt.Sprintf(f, args...))
}

// Done reports whether every token was read.
func (c *Cursor) Done() bool { return c.I >= len(c.Toks) }

// Peek is the current token, or one of kind "eof".
func (c *Cursor) Peek() Token {
	if c.Done() {
		return Token{Kind: "eof"}
	}
	return c.Toks[c.I]
}

// Next moves past the current token.
func (c *Cursor) Next() { c.I++ }

// Enclosed parses, after the opening token at c, inner and then close;
// after says what was read (", after values") when close is missing.
func Enclosed[T any](c *Cursor, close, after string, inner func() (T, error)) (T, error) {
	c.Next()
	v, err := inner()
	if err != nil {
		return v, err
	}
	if c.Peek().Kind != close {
		var zero T
		return zero, c.Errorf("missing %s%s", close, after)
	}
	c.Next()
	return v, nil
}

// FieldType is a field's type in the index template. A field not there,
// analyzed text (which the stand-ins do not tokenize) and nested fields
// are refused, text with why (textWhy).
func FieldType(types map[string]string, field, textWhy string) (string, error) {
	typ, ok := types[field]
	if !ok {
		return "", fmt.Errorf("field %s is not in the index template", field)
	}
	switch typ {
	case "text", "match_only_text":
		return "", fmt.Errorf("field %s is %s: %s; query a keyword field", field, typ, textWhy)
	case "nested":
		return "", fmt.Errorf("field %s is nested: nested queries are not supported", field)
	}
	return typ, nil
}
