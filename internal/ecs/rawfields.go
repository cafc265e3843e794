package ecs

// rawConflict is a raw path whose two forms (object, value) cannot share
// one mapping; see rawConflicts in rawfields_gen.go.
type rawConflict struct {
	wantObject bool
	alt        string
}
