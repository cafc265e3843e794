package ecs

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

// The identity model (docs/identity.md) over the shapes real clusters
// (teleporttest.IdentityPatterns)
// write: for each way an action reaches Teleport's audit log, who acted
// (user.name), the principal used (user.effective.name), who was acted
// on (user.target.name), who issued the certificate used, what kind of
// identity acted, and that the one-line message names the same actor.
// The shapes are those of Teleport's events (api/types/events, the sample
// corpus, a Teleport 13.1.3 cluster: tctl auth sign, web logins, OpenSSH
// sessions, Machine ID certificates).
func TestIdentityModel(t *testing.T) {
	patterns, err := teleporttest.IdentityPatterns()
	require.NoError(t, err)
	require.NotEmpty(t, patterns)
	for _, p := range patterns {
		tc := struct {
			pattern   string
			fields    map[string]any
			name      string
			effective any
			target    string
			issuer    string
			kind      string
			hostName  string
		}{p.Pattern, p.Event, p.UserName, p.Effective, p.Target, p.Issuer, p.Kind, p.Host}
		t.Run(tc.pattern, func(t *testing.T) {
			tc.fields["uid"] = "u-1"
			tc.fields["time"] = "2025-01-02T03:04:05Z"
			e, err := teleporttest.NewEvent(tc.fields)
			require.NoError(t, err)
			f := NewAuditMapper().Map(decoded(t, e), time.Now()).Fields
			get := func(k string) any { v, _ := f.GetValue(k); return v }
			if tc.name == "" {
				require.Nil(t, get("user.name"), "who acted is not known")
				require.Nil(t, get("teleport.actor.kind"))
				require.NotContains(t, get("related.user"), "unknown")
				require.NotContains(t, f["message"], "unknown ")
				require.Contains(t, f["message"], tc.target)
				require.Equal(t, tc.target, get("user.target.name"))
				require.Nil(t, get("user.effective.name"))
				return
			}
			require.Equal(t, tc.name, get("user.name"), "who acted")
			require.Equal(t, tc.effective, get("user.effective.name"))
			if tc.target == "" {
				require.Nil(t, get("user.target.name"))
			} else {
				require.Equal(t, tc.target, get("user.target.name"))
			}
			if tc.issuer == "" {
				require.Nil(t, get("teleport.certificate.issuer"))
			} else {
				require.Equal(t, tc.issuer, get("teleport.certificate.issuer"))
				require.Contains(t, get("related.user"), tc.issuer)
			}
			require.Equal(t, tc.kind, get("teleport.actor.kind"))
			if tc.hostName != "" {
				require.Equal(t, tc.hostName, get("host.name"))
			}
			require.Contains(t, get("related.user"), tc.name)
			require.Regexp(t, "^"+regexp.QuoteMeta(tc.name)+" ", f["message"], "the message names the same actor")
		})
	}
}
