package ecs

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/elastic/elastic-agent-libs/mapstr"
)

// normalize keeps every event indexable against the generated mapping: a
// value of an ip field that is not an IP moves to <path>_text. (Values
// whose form conflicts with the mapping were moved by rawFields.)
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

// fields is related.*, or nil when empty.
func (r related) fields() mapstr.M {
	out := mapstr.M{}
	if len(r.users) > 0 {
		out["user"] = r.users
	}
	if len(r.ips) > 0 {
		out["ip"] = r.ips
	}
	if len(r.hosts) > 0 {
		out["hosts"] = r.hosts
	}
	return out
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

// enrich adds the ECS fields derived from the raw event: each field set
// from its own function (fieldsets.go), driven by the event type's row in
// the table (eventtypes.go).
func enrich(fields, event, raw mapstr.M, typ string, info *EventType, eventTime time.Time) {
	var rel related
	if info != nil {
		if len(info.Category) > 0 {
			event["category"] = info.Category
		}
		event["type"] = info.Type
	}
	a := actorOf(raw, typ, info)
	if len(a.fields) > 0 {
		fields["user"] = a.fields
	}
	rel.users = a.related

	ep := endpointsOf(raw)
	put(fields, "source", ep.source)
	put(fields, "destination", ep.destination)
	put(fields, "network", ep.network)
	rel.ips = ep.related

	host, hostName := hostOf(raw)
	put(fields, "host", host)
	rel.hosts = addUnique(rel.hosts, hostName)

	if tp, ok := fields["teleport"].(mapstr.M); ok {
		// The resource accessed: a database, Kubernetes cluster,
		// application, desktop or SSH node, by kind and name.
		if kind, name := resourceOf(raw, hostName); kind != "" {
			tp["resource"] = mapstr.M{"kind": kind, "name": name}
		}
		// A certificate's lifetime, which KQL cannot compute (rules and
		// dashboards look for long-lived certificates), and its issuer
		// when it was issued by impersonation.
		cert := mapstr.M{}
		if ttl, ok := certificateTTL(raw, typ, eventTime); ok {
			cert["ttl"] = ttl
		}
		if a.issuer != "" {
			cert["issuer"] = a.issuer
		}
		put(tp, "certificate", cert)
		if a.kind != "" {
			tp["actor"] = mapstr.M{"kind": a.kind}
		}
	}
	put(fields, "process", processOf(raw, info))
	h, u := httpOf(raw, info)
	put(fields, "http", h)
	put(fields, "url", u)
	put(fields, "orchestrator", orchestratorOf(raw, info))
	if ua := str(raw, "user_agent"); ua != "" {
		fields["user_agent"] = mapstr.M{"original": ua}
	}
	put(fields, "file", fileOf(raw, info))
	timingOf(raw, event)
	if r := str(raw, "reason"); r != "" {
		event["reason"] = r
	}
	put(fields, "error", errorOf(raw))
	put(fields, "related", rel.fields())
	fields["message"] = summary(raw, typ, info, a.name, a.target, hostName, event["outcome"])
}

// put sets fields[key] to a non-empty field set.
func put(fields mapstr.M, key string, set mapstr.M) {
	if len(set) > 0 {
		fields[key] = set
	}
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
func summary(raw mapstr.M, typ string, info *EventType, user, target, host string, outcome any) string {
	var b strings.Builder
	actor := user
	if actor == "" {
		actor = "Teleport"
	}
	b.WriteString(actor)
	b.WriteByte(' ')
	failed := outcome == "failure"
	failedAction := ""
	if failed && info != nil {
		failedAction = info.FailedAction
	}
	switch {
	case failedAction != "":
		b.WriteString(failedAction)
	case info != nil:
		b.WriteString(info.Action)
	case typ != "":
		b.WriteString(typ)
	default:
		b.WriteString("(event without a type)")
	}
	object := target
	if object == "" && info != nil && !info.TargetsUser && typ != "user.login" {
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
	detail, prefix := "", ""
	if info != nil && len(info.Detail) > 0 {
		var parts []string
		for _, k := range info.Detail {
			if v := str(raw, k); v != "" {
				parts = append(parts, v)
			}
		}
		detail, prefix = strings.Join(parts, " "), info.DetailPrefix
		if detail != "" {
			detail = prefix + detail
		}
	}
	if detail != "" {
		if prefix != "" {
			b.WriteByte(' ')
		} else {
			b.WriteString(": ")
		}
		b.WriteString(cut(detail, 200))
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
