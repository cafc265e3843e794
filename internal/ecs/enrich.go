package ecs

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/elastic/beats/v7/libbeat/common"
	"github.com/elastic/elastic-agent-libs/mapstr"
)

// normalize keeps every event indexable against the generated mapping: a
// value of an ip field that is not an IP moves to <path>_text. (Values
// whose form conflicts with the mapping were moved by rootToMap.)
func normalize(raw mapstr.M) {
	for _, path := range rawIPFields {
		v, ok := raw[path]
		if !ok {
			continue
		}
		s, isString := v.(string)
		if isString {
			if _, err := netip.ParseAddr(s); err == nil {
				continue
			}
		}
		delete(raw, path)
		if isString && s == "" {
			continue // nothing to keep
		}
		raw[path+"_text"] = v
	}
}

// str returns raw[key] when it is a non-empty string.
func str(m mapstr.M, key string) string {
	s, _ := m[key].(string)
	return s
}

func sub(m mapstr.M, key string) mapstr.M {
	s, _ := m[key].(mapstr.M)
	return s
}

func intOf(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		return int64(n), n == float64(int64(n))
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		return i, err == nil
	}
	return 0, false
}

// related collects related.user, related.ip and related.hosts without
// duplicates.
type related struct {
	users, ips, hosts []string
}

func addUnique(list []string, v string) []string {
	if v == "" {
		return list
	}
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// enrich adds the ECS fields derived from the raw event.
func enrich(fields, event, raw mapstr.M, typ string, et *EventType, eventTime time.Time) {
	var rel related
	if et != nil {
		if len(et.Category) > 0 {
			event["category"] = et.Category
		}
		event["type"] = et.Type
	}

	// The actor.
	user := str(raw, "user")
	identity := sub(raw, "identity")
	if user == "" && identity != nil {
		user = str(identity, "user")
	}
	userFields := mapstr.M{}
	if user != "" {
		userFields["name"] = user
		rel.users = addUnique(rel.users, user)
	}
	if identity != nil {
		if roles, ok := identity["roles"].([]any); ok && len(roles) > 0 {
			userFields["roles"] = roles
		}
	}
	if login := str(raw, "login"); login != "" {
		rel.users = addUnique(rel.users, login)
	}
	if imp := str(raw, "impersonator"); imp != "" && imp != user {
		// Impersonation: the impersonator acted (user.name), with the
		// identity of user (user.effective.name), as ECS has it.
		if user != "" {
			userFields["effective"] = mapstr.M{"name": user}
		}
		userFields["name"] = imp
		rel.users = addUnique(rel.users, imp)
	}
	// The user an admin action is about.
	target := ""
	if et != nil && et.TargetsUser {
		target = str(raw, "name")
		if target == "" && typ == "user.password_change" {
			target = user
		}
	}
	if typ == "lock.created" || typ == "lock.deleted" {
		if t := sub(raw, "target_object"); t != nil {
			target = str(t, "user")
		}
	}
	if target != "" {
		tf := mapstr.M{"name": target}
		if et != nil && et.TargetsUser {
			if roles, ok := raw["roles"].([]any); ok && len(roles) > 0 {
				tf["roles"] = roles
			}
		}
		userFields["target"] = tf
		rel.users = addUnique(rel.users, target)
	}
	if len(userFields) > 0 {
		fields["user"] = userFields
	}

	// Network endpoints.
	if src := addrFields(raw, "addr", "remote"); src != nil {
		fields["source"] = src
		if ip, ok := src["ip"].(string); ok {
			rel.ips = addUnique(rel.ips, ip)
		}
	} else if identity != nil {
		if a, err := netip.ParseAddr(str(identity, "client_ip")); err == nil {
			fields["source"] = mapstr.M{"ip": a.String()}
			rel.ips = addUnique(rel.ips, a.String())
		}
	}
	dst := addrFields(raw, "addr", "local")
	if dst == nil {
		if s := str(raw, "server_addr"); s != "" {
			dst = addrMap(s)
		}
	}
	if dst != nil {
		fields["destination"] = dst
		if ip, ok := dst["ip"].(string); ok {
			rel.ips = addUnique(rel.ips, ip)
		}
	}
	for _, k := range []string{"src_addr", "dst_addr"} {
		if ip := str(raw, k); ip != "" {
			rel.ips = addUnique(rel.ips, ip)
		}
	}
	if p := str(raw, "proto"); p != "" {
		fields["network"] = mapstr.M{"protocol": p}
	}

	// The host the event is about.
	host := mapstr.M{}
	hostName := str(raw, "server_hostname")
	if hostName == "" {
		hostName = str(raw, "desktop_name")
	}
	if hostName != "" {
		host["name"] = hostName
		rel.hosts = addUnique(rel.hosts, hostName)
	}
	if id := str(raw, "server_id"); id != "" {
		host["id"] = id
	}
	if len(host) > 0 {
		fields["host"] = host
	}

	// The resource accessed: a database, Kubernetes cluster, application,
	// desktop or SSH node, by kind and name (teleport.resource).
	if kind, name := resourceOf(raw, hostName); kind != "" {
		if tp, ok := fields["teleport"].(mapstr.M); ok {
			tp["resource"] = mapstr.M{"kind": kind, "name": name}
		}
	}

	// A certificate's lifetime, which KQL cannot compute (rules and
	// dashboards look for long-lived certificates).
	if typ == "cert.create" && identity != nil {
		if exp, err := time.Parse(time.RFC3339Nano, str(identity, "expires")); err == nil && !eventTime.IsZero() && exp.After(eventTime) {
			if tp, ok := fields["teleport"].(mapstr.M); ok {
				tp["certificate"] = mapstr.M{"ttl": int64(exp.Sub(eventTime) / time.Second)}
			}
		}
	}

	// Processes.
	switch typ {
	case "exec":
		p := mapstr.M{}
		if cmd := str(raw, "command"); cmd != "" {
			p["command_line"] = cmd
			if name, _, _ := strings.Cut(strings.TrimSpace(cmd), " "); name != "" {
				p["name"] = name
			}
		}
		if code, ok := intOf(raw["exitCode"]); ok {
			p["exit_code"] = code
		}
		if len(p) > 0 {
			fields["process"] = p
		}
	case "session.command":
		p := mapstr.M{}
		if v, ok := intOf(raw["pid"]); ok {
			p["pid"] = v
		}
		if v, ok := intOf(raw["ppid"]); ok {
			p["parent"] = mapstr.M{"pid": v}
		}
		if v := str(raw, "path"); v != "" {
			p["executable"] = v
		}
		if v := str(raw, "program"); v != "" {
			p["name"] = v
		}
		if args, ok := raw["argv"].([]any); ok && len(args) > 0 {
			p["args"] = args
		}
		if v, ok := intOf(raw["return_code"]); ok {
			p["exit_code"] = v
		}
		if len(p) > 0 {
			fields["process"] = p
		}
	}

	// HTTP requests: applications, Kubernetes, Elasticsearch/OpenSearch.
	var method, path, query string
	var status any
	switch typ {
	case "app.session.request", "db.session.elasticsearch.request", "db.session.opensearch.request":
		method, path, query, status = str(raw, "method"), str(raw, "path"), str(raw, "raw_query"), raw["status_code"]
	case "kube.request":
		method, path, status = str(raw, "verb"), str(raw, "request_path"), raw["response_code"]
	}
	if method != "" || path != "" {
		req := mapstr.M{}
		if method != "" {
			req["method"] = method
		}
		h := mapstr.M{"request": req}
		if code, ok := intOf(status); ok && code > 0 {
			h["response"] = mapstr.M{"status_code": code}
		}
		fields["http"] = h
		u := mapstr.M{}
		if path != "" {
			u["path"] = path
		}
		if query != "" {
			u["query"] = query
		}
		if d := str(raw, "app_public_addr"); d != "" {
			u["domain"] = d
		}
		if len(u) > 0 {
			fields["url"] = u
		}
	}
	if typ == "kube.request" {
		o := mapstr.M{"type": "kubernetes"}
		if v := str(raw, "kubernetes_cluster"); v != "" {
			o["cluster"] = mapstr.M{"name": v}
		}
		if v := str(raw, "resource_namespace"); v != "" {
			o["namespace"] = v
		}
		res := mapstr.M{}
		if v := str(raw, "resource_kind"); v != "" {
			res["type"] = v
		}
		if v := str(raw, "resource_name"); v != "" {
			res["name"] = v
		}
		if len(res) > 0 {
			o["resource"] = res
		}
		fields["orchestrator"] = o
	}
	if ua := str(raw, "user_agent"); ua != "" {
		fields["user_agent"] = mapstr.M{"original": ua}
	}

	// Files.
	filePath := ""
	switch typ {
	case "scp", "sftp", "session.disk":
		filePath = str(raw, "path")
	case "desktop.directory.read", "desktop.directory.write":
		filePath = str(raw, "file_path")
	}
	if filePath != "" {
		fields["file"] = mapstr.M{"path": filePath}
	}

	// When: session start, stop and duration.
	if start, err := time.Parse(time.RFC3339Nano, str(raw, "session_start")); err == nil && !start.IsZero() {
		// common.Time is the date type libbeat's encoders and processors
		// expect (what event normalization would turn a time.Time into).
		event["start"] = common.Time(start)
		if stop, err := time.Parse(time.RFC3339Nano, str(raw, "session_stop")); err == nil && !stop.Before(start) {
			event["end"] = common.Time(stop)
			event["duration"] = stop.Sub(start).Nanoseconds()
		}
	}
	if r := str(raw, "reason"); r != "" {
		event["reason"] = r
	}
	if e := str(raw, "error"); e != "" {
		fields["error"] = mapstr.M{"message": e}
	} else if e := str(raw, "exitError"); e != "" {
		fields["error"] = mapstr.M{"message": e}
	}

	if len(rel.users)+len(rel.ips)+len(rel.hosts) > 0 {
		r := mapstr.M{}
		if len(rel.users) > 0 {
			r["user"] = rel.users
		}
		if len(rel.ips) > 0 {
			r["ip"] = rel.ips
		}
		if len(rel.hosts) > 0 {
			r["hosts"] = rel.hosts
		}
		fields["related"] = r
	}
	fields["message"] = summary(raw, typ, et, user, target, hostName, event["outcome"])
}

// resourceOf is the kind and name of the resource an event is about.
func resourceOf(raw mapstr.M, hostName string) (string, string) {
	for _, r := range [...]struct{ field, kind string }{
		{"db_service", "db"}, {"kubernetes_cluster", "kube"}, {"app_name", "app"}, {"desktop_name", "desktop"},
	} {
		if v := str(raw, r.field); v != "" {
			return r.kind, v
		}
	}
	if hostName != "" {
		return "node", hostName
	}
	if id := str(raw, "server_id"); id != "" {
		return "node", id
	}
	return "", ""
}

func addrMap(s string) mapstr.M {
	ip, port, ok := SplitAddr(s)
	if !ok {
		return mapstr.M{"address": s}
	}
	out := mapstr.M{"address": s, "ip": ip.String()}
	if port > 0 {
		out["port"] = port
	}
	return out
}

// summary is a one-line human account of the event: who did what, to what,
// where, and whether it failed.
func summary(raw mapstr.M, typ string, et *EventType, user, target, host string, outcome any) string {
	var b strings.Builder
	actor := user
	if actor == "" {
		actor = "Teleport"
	}
	b.WriteString(actor)
	b.WriteByte(' ')
	failed := outcome == "failure"
	failedAction := ""
	if failed {
		failedAction = failedActions[typ]
	}
	switch {
	case failedAction != "":
		b.WriteString(failedAction)
	case et != nil:
		b.WriteString(et.Action)
	case typ != "":
		b.WriteString(typ)
	default:
		b.WriteString("(event without a type)")
	}
	object := target
	if object == "" && et != nil && !et.TargetsUser && typ != "user.login" {
		object = str(raw, "name")
	}
	if object != "" {
		b.WriteByte(' ')
		b.WriteString(object)
	}
	if host != "" {
		b.WriteString(" on ")
		b.WriteString(host)
	}
	for _, k := range []string{"db_service", "kubernetes_cluster", "app_name"} {
		if v := str(raw, k); v != "" {
			b.WriteString(" on ")
			b.WriteString(v)
			break
		}
	}
	if login := str(raw, "login"); login != "" && login != user {
		b.WriteString(" as ")
		b.WriteString(login)
	}
	detail := ""
	switch typ {
	case "exec":
		detail = str(raw, "command")
	case "db.session.query", "db.session.query.failed":
		detail = str(raw, "db_query")
	case "kube.request":
		detail = strings.TrimSpace(str(raw, "verb") + " " + str(raw, "request_path"))
	case "app.session.request":
		detail = strings.TrimSpace(str(raw, "method") + " " + str(raw, "path"))
	case "user.login":
		if m := str(raw, "method"); m != "" {
			detail = "with " + m
		}
	}
	if detail != "" {
		detail = cut(detail, 200)
		if strings.HasPrefix(detail, "with ") {
			b.WriteByte(' ')
		} else {
			b.WriteString(": ")
		}
		b.WriteString(detail)
	}
	switch {
	case failedAction != "":
		if e := str(raw, "error"); e != "" {
			b.WriteString(": ")
			b.WriteString(cut(e, 200))
		}
	case failed:
		b.WriteString(" (failed")
		if e := str(raw, "error"); e != "" {
			b.WriteString(": ")
			b.WriteString(cut(e, 200))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// failedActions are the verb phrases of the event types that are mostly
// seen failing, so that a failure reads as one ("alice failed to log in
// with local: invalid password", not "alice logged in ... (failed)").
var failedActions = map[string]string{
	"user.login":                    "failed to log in",
	"auth":                          "failed to authenticate",
	"session.rejected":              "was refused a session",
	"db.session.start":              "was refused a database session",
	"app.session.start":             "was refused an application session",
	"windows.desktop.session.start": "was refused a desktop session",
	"session.start":                 "was refused a session",
	"kube.request":                  "was refused a Kubernetes request",
	"mfa_auth_challenge.validate":   "failed an MFA challenge",
	"access_request.create":         "failed to request access",
	"exec":                          "ran a command that failed",
}

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
