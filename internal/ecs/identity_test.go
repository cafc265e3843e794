package ecs

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleportbeat/teleportbeat/internal/teleporttest"
)

// The identity model (docs/identity.md) over the shapes real clusters
// write: for each way an action reaches Teleport's audit log, who acted
// (user.name), the principal used (user.effective.name), who was acted
// on (user.target.name), who issued the certificate used, what kind of
// identity acted, and that the one-line message names the same actor.
// The shapes are those of Teleport's events (api/types/events, the sample
// corpus, a Teleport 13.1.3 cluster: tctl auth sign, web logins, OpenSSH
// sessions, Machine ID certificates).
func TestIdentityModel(t *testing.T) {
	const host = "00b54ef5-ae1e-425f-8565-c71b01d8f7b8.teleport.example.com"
	for _, tc := range []struct {
		pattern   string
		fields    map[string]any
		name      string // user.name
		effective any    // user.effective.name (nil: none)
		target    string // user.target.name ("": none)
		issuer    string // teleport.certificate.issuer
		kind      string // teleport.actor.kind
		hostName  string
	}{
		{"local user login", map[string]any{"event": "user.login", "code": "T1000I", "user": "alice", "method": "local", "success": true}, "alice", nil, "", "", "human", ""},
		{"SSO login with a connector", map[string]any{"event": "user.login", "code": "T1001I", "user": "alice@example.com", "method": "oidc", "connector": "okta", "success": true, "user_kind": 1}, "alice@example.com", nil, "", "", "human", ""},
		{"certificate signed by an admin with tctl auth sign", map[string]any{"event": "cert.create", "code": "TC000I", "cert_type": "user", "identity": map[string]any{"user": "sshuser", "impersonator": "admin", "roles": []any{"access"}}}, "admin", nil, "sshuser", "admin", "human", ""},
		{"certificate signed on the Auth host with tctl auth sign", map[string]any{"event": "cert.create", "code": "TC000I", "cert_type": "user", "identity": map[string]any{"user": "sshuser", "impersonator": host}}, host, nil, "sshuser", host, "host", ""},
		{"session of a tctl-signed identity", map[string]any{"event": "session.start", "code": "T2000I", "user": "sshuser", "impersonator": host, "login": "ubuntu", "server_hostname": "node-1", "server_id": "b331fb6c-85f9-4cb0-b308-3452420bf81e", "addr.remote": "203.0.113.7:50022"}, "sshuser", "ubuntu", "", host, "human", "node-1"},
		{"exec of a tctl-signed identity", map[string]any{"event": "exec", "code": "T3002I", "user": "sshuser", "impersonator": host, "login": "ubuntu", "command": "id", "server_hostname": "node-1"}, "sshuser", "ubuntu", "", host, "human", "node-1"},
		{"session data, a node known by its id", map[string]any{"event": "session.data", "code": "T2006I", "user": "sshuser", "login": "root", "server_id": "b331fb6c-85f9-4cb0-b308-3452420bf81e", "rx": 1, "tx": 2}, "sshuser", "root", "", "", "human", "b331fb6c-85f9-4cb0-b308-3452420bf81e"},
		{"Machine ID bot renewing its own certificate", map[string]any{"event": "cert.create", "code": "TC000I", "cert_type": "user", "identity": map[string]any{"user": "bot-ci", "impersonator": "bot-ci", "roles": []any{"bot-ci"}}}, "bot-ci", nil, "", "", "bot", ""},
		{"Machine ID bot output certificate in use", map[string]any{"event": "session.start", "code": "T2000I", "user": "bot-ci", "login": "deploy", "bot_name": "ci", "user_kind": 2, "server_hostname": "node-2"}, "bot-ci", "deploy", "", "", "bot", "node-2"},
		{"bot join", map[string]any{"event": "bot.join", "code": "TJ001I", "bot_name": "ci", "user_name": "bot-ci", "method": "github", "success": true}, "bot-ci", nil, "", "", "bot", ""},
		{"access request created", map[string]any{"event": "access_request.create", "code": "T5000I", "id": "r1", "user": "carol", "roles": []any{"admin"}, "state": "PENDING"}, "carol", nil, "", "", "human", ""},
		{"access request reviewed by another user", map[string]any{"event": "access_request.review", "code": "T5002I", "id": "r1", "reviewer": "dave", "proposed_state": "APPROVED", "state": "APPROVED"}, "dave", nil, "", "", "human", ""},
		{"access request approved by another user", map[string]any{"event": "access_request.update", "code": "T5001I", "id": "r1", "state": "APPROVED", "updated_by": "dave"}, "dave", nil, "", "", "human", ""},
		{"access request denied, with the requester", map[string]any{"event": "access_request.update", "code": "T5001I", "id": "r1", "state": "DENIED", "updated_by": "dave", "user": "carol"}, "dave", nil, "carol", "", "human", ""},
		{"user created by an admin", map[string]any{"event": "user.create", "code": "T1002I", "user": "admin", "name": "eve", "roles": []any{"editor"}, "connector": "local"}, "admin", nil, "eve", "", "human", ""},
		{"preset role rewritten by Teleport", map[string]any{"event": "role.updated", "code": "T9002I", "user": "system", "name": "access"}, "system", nil, "", "", "system", ""},
		{"lock created by a host identity", map[string]any{"event": "lock.created", "code": "TLK00I", "user": host, "name": "l1", "target_object": map[string]any{"user": "mallory"}}, host, nil, "mallory", "", "host", ""},
		{"lock of a user, newer shape (lock.target)", map[string]any{"event": "lock.created", "code": "TLK00I", "user": "admin", "name": "l2", "lock": map[string]any{"target": map[string]any{"user": "mallory"}}}, "admin", nil, "mallory", "", "human", ""},
		{"SSH login as another OS user", map[string]any{"event": "session.start", "code": "T2000I", "user": "alice", "login": "root", "server_hostname": "db-1"}, "alice", "root", "", "", "human", "db-1"},
		{"app session authentication failed (lib/web/app: User unknown, the owner as Login)", map[string]any{"event": "auth", "code": "T3007W", "user": "unknown", "login": "alice", "success": false, "error": "Failed app access authentication: state token was not in the expected format", "addr.remote": "203.0.113.9:41000"}, "", nil, "alice", "", "", ""},
		{"database session", map[string]any{"event": "db.session.start", "code": "TDB00I", "user": "alice", "db_user": "postgres", "db_service": "pg", "success": true}, "alice", "postgres", "", "", "human", ""},
		{"Kubernetes request", map[string]any{"event": "kube.request", "code": "T3009I", "user": "alice", "kubernetes_users": []any{"alice"}, "kubernetes_groups": []any{"system:masters"}, "kubernetes_cluster": "prod", "verb": "GET", "request_path": "/api", "response_code": 200}, "alice", "alice", "", "", "human", ""},
		{"desktop session", map[string]any{"event": "windows.desktop.session.start", "code": "TDP00I", "user": "alice", "windows_user": "Administrator", "desktop_name": "win-1", "success": true}, "alice", "Administrator", "", "", "human", "win-1"},
		{"session joined by a moderator", map[string]any{"event": "session.join", "code": "T2001I", "user": "mod", "login": "root", "server_hostname": "node-1"}, "mod", "root", "", "", "human", "node-1"},
		{"application access", map[string]any{"event": "app.session.start", "code": "T2007I", "user": "alice", "app_name": "grafana", "aws_role_arn": "arn:aws:iam::1:role/x"}, "alice", nil, "", "", "human", ""},
	} {
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
