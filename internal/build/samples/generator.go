package samples

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Generator produces realistic Teleport audit events in volume: the mix of
// a busy cluster (logins, interactive sessions, exec, Kubernetes and
// database requests, certificate issuance, app requests, uploads, admin
// changes), about 600 bytes each on average, every one with a fresh uid.
// It is deterministic for a given seed.
type Generator struct {
	ClusterName string
	rng         *rand.Rand
	n           uint64
	seed        uint64
}

// NewGenerator returns a generator seeded with seed.
func NewGenerator(seed uint64) *Generator {
	return &Generator{ClusterName: "teleport.example.com", rng: rand.New(rand.NewPCG(seed, 0x7e1e9047)), seed: seed}
}

var (
	genUsers   = []string{"alice@example.com", "bob@example.com", "carol", "dave", "erin@example.com", "frank", "grace@example.com", "heidi", "ivan", "judy@example.com", "mallory", "ci-bot"}
	genLogins  = []string{"root", "ubuntu", "ec2-user", "admin", "deploy"}
	genHosts   = []string{"ip-10-0-1-12", "ip-10-0-1-13", "db-primary-01", "web-frontend-7", "bastion", "k8s-worker-3", "build-runner-2", "jenkins", "grafana-0", "vault-1"}
	genRoles   = [][]string{{"access"}, {"access", "editor"}, {"auditor"}, {"access", "kube-admin"}, {"db-reader"}}
	genCmds    = []string{"ls -la /var/log", "systemctl status nginx", "cat /etc/os-release", "tail -n 200 /var/log/syslog", "kubectl get pods -A", "psql -c 'select 1'", "df -h", "journalctl -u teleport --since today", "docker ps", "uptime"}
	genDBQuery = []string{"SELECT * FROM users WHERE id = $1", "UPDATE orders SET status = 'shipped' WHERE id = 42", "SELECT count(*) FROM events WHERE created_at > now() - interval '1 day'", "INSERT INTO audit(action, actor) VALUES ($1, $2)", "DELETE FROM sessions WHERE expires < now()"}
	genKubeRes = []string{"pods", "deployments", "secrets", "configmaps", "services", "namespaces"}
)

type genKind struct {
	weight int
	make   func(g *Generator, base map[string]any)
}

var genKinds = []genKind{
	{10, (*Generator).userLogin},
	{8, (*Generator).sessionStart},
	{8, (*Generator).sessionEnd},
	{15, (*Generator).exec},
	{15, (*Generator).kubeRequest},
	{12, (*Generator).dbQuery},
	{9, (*Generator).certCreate},
	{8, (*Generator).appRequest},
	{4, (*Generator).sessionUpload},
	{3, (*Generator).sessionJoin},
	{2, (*Generator).accessRequest},
	{2, (*Generator).roleOrUser},
	{4, (*Generator).sftp},
}

var genTotalWeight = func() int {
	n := 0
	for _, k := range genKinds {
		n += k.weight
	}
	return n
}()

// uuid returns a deterministic RFC 4122 version-4 style identifier.
func (g *Generator) uuid() string {
	a, b := g.rng.Uint64(), g.rng.Uint64()
	a = (a &^ (0xf << 12)) | (0x4 << 12)
	b = (b &^ (0x3 << 62)) | (0x2 << 62)
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

func (g *Generator) pick(s []string) string { return s[g.rng.IntN(len(s))] }

func (g *Generator) ip() string {
	return fmt.Sprintf("10.%d.%d.%d", g.rng.IntN(4), g.rng.IntN(256), 1+g.rng.IntN(254))
}

func (g *Generator) remoteAddr() string {
	if g.rng.IntN(10) == 0 {
		return fmt.Sprintf("[2001:db8::%x]:%d", g.rng.IntN(0xffff), 30000+g.rng.IntN(30000))
	}
	return fmt.Sprintf("%d.%d.%d.%d:%d", 100+g.rng.IntN(100), g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254), 30000+g.rng.IntN(30000))
}

// Event returns the next generated event, at time t.
func (g *Generator) Event(t time.Time) map[string]any {
	g.n++
	base := map[string]any{
		"uid":          g.uuid(),
		"time":         t.UTC().Format(time.RFC3339Nano),
		"cluster_name": g.ClusterName,
		"ei":           0,
	}
	w := g.rng.IntN(genTotalWeight)
	for _, k := range genKinds {
		if w < k.weight {
			k.make(g, base)
			break
		}
		w -= k.weight
	}
	return base
}

// timeOf is the time of the event being made: the times within it are
// relative to it, so that a seed always makes the same events.
func timeOf(m map[string]any) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, m["time"].(string))
	return t
}

// Fields returns n events' fields starting at start, spaced by step.
func (g *Generator) Fields(n int, start time.Time, step time.Duration) []map[string]any {
	out := make([]map[string]any, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, g.Event(start.Add(time.Duration(i)*step)))
	}
	return out
}

func (g *Generator) sessionCommon(m map[string]any) {
	host := g.pick(genHosts)
	m["user"] = g.pick(genUsers)
	m["login"] = g.pick(genLogins)
	m["namespace"] = "default"
	m["server_id"] = g.uuid()
	m["server_hostname"] = host
	m["server_addr"] = g.ip() + ":3022"
	m["server_labels"] = map[string]any{"env": g.pick([]string{"prod", "staging", "dev"}), "team": g.pick([]string{"platform", "data", "payments"})}
	m["sid"] = g.uuid()
	m["addr.remote"] = g.remoteAddr()
	m["addr.local"] = g.ip() + ":3022"
	m["proto"] = "ssh"
	m["private_key_policy"] = "none"
	m["user_kind"] = 1
}

func (g *Generator) userLogin(m map[string]any) {
	m["event"] = "user.login"
	m["user"] = g.pick(genUsers)
	m["method"] = g.pick([]string{"local", "saml", "oidc", "github"})
	m["addr.remote"] = g.remoteAddr()
	m["user_agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
	if g.rng.IntN(5) == 0 {
		m["code"] = "T1000W"
		m["success"] = false
		m["error"] = "invalid credentials"
		m["message"] = "invalid username, password or second factor"
	} else {
		m["code"] = "T1000I"
		m["success"] = true
		m["mfa_device"] = map[string]any{"mfa_device_name": "yubikey", "mfa_device_uuid": g.uuid(), "mfa_device_type": "WebAuthn"}
	}
}

func (g *Generator) sessionStart(m map[string]any) {
	g.sessionCommon(m)
	m["event"] = "session.start"
	m["code"] = "T2000I"
	m["session_recording"] = "node"
	m["initial_command"] = []any{""}
	m["size"] = "80:25"
}

func (g *Generator) sessionEnd(m map[string]any) {
	g.sessionCommon(m)
	m["event"] = "session.end"
	m["code"] = "T2004I"
	m["session_recording"] = "node"
	m["participants"] = []any{m["user"]}
	start := timeOf(m).Add(-time.Duration(1+g.rng.IntN(3600)) * time.Second)
	m["session_start"] = start.UTC().Format(time.RFC3339Nano)
	m["session_stop"] = start.Add(time.Duration(1+g.rng.IntN(3600)) * time.Second).UTC().Format(time.RFC3339Nano)
	m["interactive"] = true
	m["enhanced_recording"] = false
}

func (g *Generator) exec(m map[string]any) {
	g.sessionCommon(m)
	m["event"] = "exec"
	m["command"] = g.pick(genCmds)
	if g.rng.IntN(10) == 0 {
		m["code"] = "T3002E"
		m["exitCode"] = "1"
		m["exitError"] = "Process exited with status 1"
	} else {
		m["code"] = "T3002I"
		m["exitCode"] = "0"
	}
}

func (g *Generator) kubeRequest(m map[string]any) {
	ns := g.pick([]string{"default", "kube-system", "payments", "monitoring"})
	res := g.pick(genKubeRes)
	verb := g.pick([]string{"GET", "GET", "GET", "POST", "PATCH", "DELETE"})
	m["event"] = "kube.request"
	m["code"] = "T3009I"
	m["user"] = g.pick(genUsers)
	m["login"] = m["user"]
	m["kubernetes_cluster"] = g.pick([]string{"prod-eks", "staging-gke", "dev-kind"})
	m["kubernetes_users"] = []any{m["user"]}
	m["kubernetes_groups"] = []any{"system:authenticated", "developers"}
	m["kubernetes_labels"] = map[string]any{"region": g.pick([]string{"us-east-1", "eu-west-1"})}
	m["addr.remote"] = g.remoteAddr()
	m["server_id"] = g.uuid()
	m["proto"] = "kube"
	m["request_path"] = fmt.Sprintf("/api/v1/namespaces/%s/%s", ns, res)
	m["verb"] = verb
	m["resource_api_group"] = "core/v1"
	m["resource_namespace"] = ns
	m["resource_kind"] = res
	m["response_code"] = pickInt(g, 200, 200, 200, 201, 403, 404)
}

func pickInt(g *Generator, v ...int) int { return v[g.rng.IntN(len(v))] }

func (g *Generator) dbQuery(m map[string]any) {
	m["event"] = "db.session.query"
	m["code"] = "TDB02I"
	m["user"] = g.pick(genUsers)
	m["sid"] = g.uuid()
	m["db_service"] = g.pick([]string{"postgres-prod", "mysql-orders", "mongo-analytics"})
	m["db_protocol"] = g.pick([]string{"postgres", "mysql", "mongodb"})
	m["db_uri"] = "db.internal:5432"
	m["db_name"] = g.pick([]string{"app", "orders", "analytics"})
	m["db_user"] = g.pick([]string{"readonly", "app_rw", "admin"})
	m["db_query"] = g.pick(genDBQuery)
	m["db_query_parameters"] = []any{fmt.Sprint(g.rng.IntN(10000))}
	m["db_labels"] = map[string]any{"env": "prod"}
	m["success"] = true
}

func (g *Generator) certCreate(m map[string]any) {
	user := g.pick(genUsers)
	m["event"] = "cert.create"
	m["code"] = "TC000I"
	m["cert_type"] = "user"
	m["identity"] = map[string]any{
		"user":                  user,
		"roles":                 anySlice(genRoles[g.rng.IntN(len(genRoles))]),
		"logins":                anySlice([]string{g.pick(genLogins), "-teleport-internal-join"}),
		"expires":               timeOf(m).Add(12 * time.Hour).UTC().Format(time.RFC3339Nano),
		"route_to_cluster":      g.ClusterName,
		"teleport_cluster":      g.ClusterName,
		"client_ip":             g.ip(),
		"prev_identity_expires": "0001-01-01T00:00:00Z",
		"private_key_policy":    "none",
	}
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (g *Generator) appRequest(m map[string]any) {
	m["event"] = "app.session.request"
	m["code"] = "T2008I"
	m["app_name"] = g.pick([]string{"grafana", "jenkins", "argocd", "internal-wiki"})
	m["app_uri"] = "http://localhost:3000"
	m["app_public_addr"] = fmt.Sprintf("%s.teleport.example.com", m["app_name"])
	m["method"] = g.pick([]string{"GET", "GET", "POST", "PUT"})
	m["path"] = g.pick([]string{"/api/dashboards/home", "/api/search", "/job/build/123/console", "/login"})
	m["raw_query"] = g.pick([]string{"", "q=deploy", "from=now-6h&to=now"})
	m["status_code"] = pickInt(g, 200, 200, 302, 404, 500)
	m["session_chunk_id"] = g.uuid()
}

func (g *Generator) sessionUpload(m map[string]any) {
	m["event"] = "session.upload"
	m["code"] = "T2005I"
	m["sid"] = g.uuid()
	m["url"] = fmt.Sprintf("s3://teleport-recordings/%s.tar", m["sid"])
	m["namespace"] = "default"
}

func (g *Generator) sessionJoin(m map[string]any) {
	g.sessionCommon(m)
	m["event"] = "session.join"
	m["code"] = "T2001I"
}

func (g *Generator) accessRequest(m map[string]any) {
	m["event"] = "access_request.create"
	m["code"] = "T5000I"
	m["user"] = g.pick(genUsers)
	m["id"] = g.uuid()
	m["roles"] = anySlice([]string{"kube-admin"})
	m["state"] = "PENDING"
	m["reason"] = "investigating incident INC-" + fmt.Sprint(1000+g.rng.IntN(9000))
	m["expires"] = timeOf(m).Add(time.Hour).UTC().Format(time.RFC3339Nano)
}

func (g *Generator) roleOrUser(m map[string]any) {
	m["user"] = g.pick(genUsers)
	switch g.rng.IntN(3) {
	case 0:
		m["event"] = "role.created"
		m["code"] = "T9000I"
		m["name"] = "role-" + fmt.Sprint(g.rng.IntN(100))
	case 1:
		m["event"] = "user.create"
		m["code"] = "T1002I"
		m["name"] = g.pick(genUsers)
		m["roles"] = anySlice(genRoles[g.rng.IntN(len(genRoles))])
		m["connector"] = "local"
	default:
		m["event"] = "lock.created"
		m["code"] = "TLK00I"
		m["name"] = g.uuid()
		m["target"] = map[string]any{"user": g.pick(genUsers)}
	}
	m["expires"] = "0001-01-01T00:00:00Z"
}

func (g *Generator) sftp(m map[string]any) {
	g.sessionCommon(m)
	m["event"] = "sftp"
	m["code"] = "TS001I"
	m["action"] = 3
	m["path"] = g.pick([]string{"/home/ubuntu/report.csv", "/etc/nginx/nginx.conf", "/tmp/upload.bin"})
	m["working_directory"] = "/home/ubuntu"
	m["flags"] = 26
	m["attributes"] = map[string]any{"permissions": 420}
}

// Session generates the recording of an interactive SSH session of n
// events (start, prints, a resize, end) and the session.upload audit event
// Teleport emits once the recording is stored.
func (g *Generator) Session(start time.Time, n int) (sessionID string, recording []map[string]any, upload map[string]any) {
	sid := g.uuid()
	recording, upload = g.Recording(sid, start, n)
	return sid, recording, upload
}

// Recording generates the events of session sid and its upload event.
func (g *Generator) Recording(sid string, start time.Time, n int) (recording []map[string]any, upload map[string]any) {
	base := map[string]any{}
	g.sessionCommon(base)
	user, login, host := base["user"], base["login"], base["server_hostname"]
	for i := 0; i < n; i++ {
		var f map[string]any
		switch {
		case i == 0:
			f = map[string]any{"event": "session.start", "code": "T2000I", "size": "80:25", "session_recording": "node"}
		case i == n-1:
			f = map[string]any{"event": "session.end", "code": "T2004I", "interactive": true,
				"session_start": start.UTC().Format(time.RFC3339Nano),
				"session_stop":  start.Add(time.Duration(i) * 50 * time.Millisecond).UTC().Format(time.RFC3339Nano)}
		case i%17 == 0:
			f = map[string]any{"event": "resize", "code": "T2002I", "size": "120:40"}
		default:
			f = map[string]any{"event": "print", "bytes": 24, "ms": i * 50, "offset": i * 24, "data": "$ ls -la /var/log\r\n"}
		}
		f["sid"] = sid
		f["ei"] = i
		f["uid"] = g.uuid()
		f["time"] = start.Add(time.Duration(i) * 50 * time.Millisecond).UTC().Format(time.RFC3339Nano)
		f["user"] = user
		f["login"] = login
		f["server_hostname"] = host
		f["cluster_name"] = g.ClusterName
		recording = append(recording, f)
	}
	upload = map[string]any{
		"event": "session.upload", "code": "T2005I", "sid": sid, "uid": g.uuid(), "ei": 0,
		"url":          "s3://teleport-recordings/" + sid,
		"time":         start.Add(time.Duration(n) * 50 * time.Millisecond).Add(time.Second).UTC().Format(time.RFC3339Nano),
		"cluster_name": g.ClusterName,
	}
	return recording, upload
}
