package teleporttest

import (
	"fmt"

	"github.com/teleportbeat/teleportbeat/internal/build/samples"
)

// CorpusEvents returns the sample events ready to be stored.
func CorpusEvents() ([]*Event, error) {
	fields, err := samples.CorpusFields()
	if err != nil {
		return nil, err
	}
	out := make([]*Event, 0, len(fields))
	for i, f := range fields {
		e, err := NewEvent(f)
		if err != nil {
			return nil, fmt.Errorf("sample event %d: %w", i, err)
		}
		out = append(out, e)
	}
	return out, nil
}
