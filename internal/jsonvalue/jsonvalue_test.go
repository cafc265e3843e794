package jsonvalue

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOfIsWhatJSONReadsBack(t *testing.T) {
	type rule struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
		N    int      `json:"n"`
	}
	require.Equal(t, map[string]any{"name": "x", "tags": []any{"a"}, "n": float64(3)}, Of(rule{Name: "x", Tags: []string{"a"}, N: 3}))
	require.Equal(t, map[string]any{"k": []any{float64(1), nil}}, Of(map[string][]any{"k": {1, nil}}))
	ch := make(chan int)
	require.Equal(t, ch, Of(ch), "what JSON cannot encode comes back as it was")
	_, err := Through(ch)
	require.ErrorContains(t, err, "unsupported type")
}
