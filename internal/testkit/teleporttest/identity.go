package teleporttest

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// IdentityPattern is one way an action reaches Teleport's audit log, as a
// real cluster writes it, with who the identity model (docs/identity.md)
// says acted. The shapes are Teleport's (api/types/events, the sample
// corpus, a Teleport 13.1.3 cluster: tctl auth sign, web logins, OpenSSH
// sessions, Machine ID certificates).
type IdentityPattern struct {
	Pattern   string         `json:"pattern"`
	Event     map[string]any `json:"event"`     // the raw event, without uid and time
	UserName  string         `json:"user_name"` // user.name: who acted ("": not known)
	Effective any            `json:"effective"` // user.effective.name: the principal used (nil: none)
	Target    string         `json:"target"`    // user.target.name ("": none)
	Issuer    string         `json:"issuer"`    // teleport.certificate.issuer ("": none)
	Kind      string         `json:"kind"`      // teleport.actor.kind
	Host      string         `json:"host"`      // host.name ("": not checked)
}

//go:embed identity/patterns.json
var identityPatterns []byte

// IdentityPatterns returns the identity patterns, each event a fresh copy.
func IdentityPatterns() ([]IdentityPattern, error) {
	var out []IdentityPattern
	if err := json.Unmarshal(identityPatterns, &out); err != nil {
		return nil, fmt.Errorf("identity/patterns.json: %w", err)
	}
	return out, nil
}
