package querykit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// parse reads words separated by spaces into a bracketed form, to show
// the grammar's precedence.
func parse(s string) (string, error) {
	toks := strings.Fields(s)
	i := 0
	b := Bool[string]{
		Keyword: func(w string) bool { return i < len(toks) && toks[i] == w },
		Next:    func() { i++ },
		Operand: func() (string, error) {
			if i >= len(toks) || toks[i] == "and" || toks[i] == "or" {
				return "", fmt.Errorf("an operand is missing at %d", i)
			}
			i++
			return toks[i-1], nil
		},
		Join: func(and bool, kids []string) string {
			op := " | "
			if and {
				op = " & "
			}
			return "(" + strings.Join(kids, op) + ")"
		},
		Not: func(k string) string { return "!" + k },
	}
	return b.Or()
}

func TestNotBindsTighterThanAndThanOr(t *testing.T) {
	cases := [][2]string{
		{"a", "a"},
		{"a or b and c", "(a | (b & c))"},
		{"not a and b or not not c", "((!a & b) | !!c)"},
		{"a and b and c or d", "((a & b & c) | d)"},
	}
	for _, c := range cases {
		got, err := parse(c[0])
		require.NoError(t, err, c[0])
		require.Equal(t, c[1], got, c[0])
	}
	_, err := parse("a and or b")
	require.ErrorContains(t, err, "an operand is missing at 2")
}

func TestWildcard(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"a*c", "abbbc", true}, {"a*c", "abbb", false}, {"*.example.com", "x.example.com", true},
		{"a?c", "abc", false}, {"a?c", "a?c", true}, {"**b*", "aab", true}, {"é*", "été", true},
	} {
		require.Equal(t, c.want, Wildcard(c.pattern, c.s, '*'), "%q ~ %q", c.pattern, c.s)
	}
}
