package ecs

import (
	"net/netip"
	"strings"
	"time"

	"github.com/elastic/beats/v7/libbeat/common"
	"github.com/elastic/elastic-agent-libs/mapstr"
)

// The ECS field sets the mapper derives from a raw Teleport event, one
// function each. Which raw keys feed them is data in the event type table
// (EventType.HTTP, .Process, .FileKey, ...): a new Teleport event type of
// a known shape is a table row, not a new case here.

// actor is user.* and the users it relates.
type actor struct {
	fields       mapstr.M
	name, target string // the acting user and the user acted on
	related      []string
}

// actorOf is the user who acted (user.name; with impersonation the
// impersonator, and the identity used as user.effective.name), their
// roles, and the user an admin action is about (user.target.*).
func actorOf(raw mapstr.M, typ string, info *EventType) actor {
	var a actor
	a.fields = mapstr.M{}
	user := str(raw, "user")
	identity := sub(raw, "identity")
	if user == "" && identity != nil {
		user = str(identity, "user")
	}
	if user != "" {
		a.fields["name"] = user
		a.related = addUnique(a.related, user)
	}
	if identity != nil {
		if roles, ok := identity["roles"].([]any); ok && len(roles) > 0 {
			a.fields["roles"] = roles
		}
	}
	if login := str(raw, "login"); login != "" {
		a.related = addUnique(a.related, login)
	}
	if imp := str(raw, "impersonator"); imp != "" && imp != user {
		// Impersonation: the impersonator acted (user.name), with the
		// identity of user (user.effective.name), as ECS has it.
		if user != "" {
			a.fields["effective"] = mapstr.M{"name": user}
		}
		a.fields["name"] = imp
		a.related = addUnique(a.related, imp)
	}
	a.name = user
	targetsUser := info != nil && info.TargetsUser
	if targetsUser {
		a.target = str(raw, "name")
		if a.target == "" && typ == "user.password_change" {
			a.target = user
		}
	}
	if typ == "lock.created" || typ == "lock.deleted" {
		if t := sub(raw, "target_object"); t != nil {
			a.target = str(t, "user")
		}
	}
	if a.target != "" {
		tf := mapstr.M{"name": a.target}
		if targetsUser {
			if roles, ok := raw["roles"].([]any); ok && len(roles) > 0 {
				tf["roles"] = roles
			}
		}
		a.fields["target"] = tf
		a.related = addUnique(a.related, a.target)
	}
	return a
}

// endpoints are source.*, destination.*, network.* and the addresses they
// relate.
type endpoints struct {
	source, destination, network mapstr.M
	related                      []string
}

// endpointsOf reads the connection's addresses: the client (addr.remote,
// or a certificate's client_ip) is the source, the server (addr.local or
// server_addr) the destination.
func endpointsOf(raw mapstr.M) endpoints {
	var ep endpoints
	if src := addrFields(raw, "addr", "remote"); src != nil {
		ep.source = src
	} else if identity := sub(raw, "identity"); identity != nil {
		if a, err := netip.ParseAddr(str(identity, "client_ip")); err == nil {
			ep.source = mapstr.M{"ip": a.String()}
		}
	}
	if ip, ok := ep.source["ip"].(string); ok {
		ep.related = addUnique(ep.related, ip)
	}
	ep.destination = addrFields(raw, "addr", "local")
	if ep.destination == nil {
		if s := str(raw, "server_addr"); s != "" {
			ep.destination = addrMap(s)
		}
	}
	if ip, ok := ep.destination["ip"].(string); ok {
		ep.related = addUnique(ep.related, ip)
	}
	for _, k := range []string{"src_addr", "dst_addr"} {
		ep.related = addUnique(ep.related, str(raw, k))
	}
	if p := str(raw, "proto"); p != "" {
		ep.network = mapstr.M{"protocol": p}
	}
	return ep
}

// hostOf is host.* (the Teleport node or desktop the event is about) and
// its name.
func hostOf(raw mapstr.M) (mapstr.M, string) {
	host := mapstr.M{}
	name := str(raw, "server_hostname")
	if name == "" {
		name = str(raw, "desktop_name")
	}
	if name != "" {
		host["name"] = name
	}
	if id := str(raw, "server_id"); id != "" {
		host["id"] = id
	}
	return host, name
}

// certificateTTL is a cert.create certificate's lifetime in seconds.
func certificateTTL(raw mapstr.M, typ string, eventTime time.Time) (int64, bool) {
	identity := sub(raw, "identity")
	if typ != "cert.create" || identity == nil || eventTime.IsZero() {
		return 0, false
	}
	exp, err := time.Parse(time.RFC3339Nano, str(identity, "expires"))
	if err != nil || !exp.After(eventTime) {
		return 0, false
	}
	return int64(exp.Sub(eventTime) / time.Second), true
}

// processOf is process.* of the types that run one.
func processOf(raw mapstr.M, info *EventType) mapstr.M {
	if info == nil || info.Process == nil {
		return nil
	}
	k := info.Process
	p := mapstr.M{}
	if k.CommandLine != "" {
		if cmd := str(raw, k.CommandLine); cmd != "" {
			p["command_line"] = cmd
			if k.Name == "" {
				if name, _, _ := strings.Cut(strings.TrimSpace(cmd), " "); name != "" {
					p["name"] = name
				}
			}
		}
	}
	if k.PID != "" {
		if v, ok := intOf(raw[k.PID]); ok {
			p["pid"] = v
		}
	}
	if k.PPID != "" {
		if v, ok := intOf(raw[k.PPID]); ok {
			p["parent"] = mapstr.M{"pid": v}
		}
	}
	if v := str(raw, k.Executable); k.Executable != "" && v != "" {
		p["executable"] = v
	}
	if v := str(raw, k.Name); k.Name != "" && v != "" {
		p["name"] = v
	}
	if k.Args != "" {
		if args, ok := raw[k.Args].([]any); ok && len(args) > 0 {
			p["args"] = args
		}
	}
	if k.ExitCode != "" {
		if v, ok := intOf(raw[k.ExitCode]); ok {
			p["exit_code"] = v
		}
	}
	return p
}

// httpOf is http.* and url.* of the types that carry an HTTP request
// (applications, Kubernetes, Elasticsearch/OpenSearch).
func httpOf(raw mapstr.M, info *EventType) (httpFields, urlFields mapstr.M) {
	if info == nil || info.HTTP == nil {
		return nil, nil
	}
	k := info.HTTP
	method, path := str(raw, k.Method), str(raw, k.Path)
	if method == "" && path == "" {
		return nil, nil
	}
	req := mapstr.M{}
	if method != "" {
		req["method"] = method
	}
	httpFields = mapstr.M{"request": req}
	if code, ok := intOf(raw[k.Status]); ok && code > 0 {
		httpFields["response"] = mapstr.M{"status_code": code}
	}
	urlFields = mapstr.M{}
	if path != "" {
		urlFields["path"] = path
	}
	if q := str(raw, k.Query); k.Query != "" && q != "" {
		urlFields["query"] = q
	}
	if d := str(raw, "app_public_addr"); d != "" {
		urlFields["domain"] = d
	}
	return httpFields, urlFields
}

// orchestratorOf is orchestrator.* of Kubernetes requests.
func orchestratorOf(raw mapstr.M, info *EventType) mapstr.M {
	if info == nil || !info.Kubernetes {
		return nil
	}
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
	return o
}

// fileOf is file.* of the file transfer and access types.
func fileOf(raw mapstr.M, info *EventType) mapstr.M {
	if info == nil || info.FileKey == "" {
		return nil
	}
	if p := str(raw, info.FileKey); p != "" {
		return mapstr.M{"path": p}
	}
	return nil
}

// timingOf sets event.start, .end and .duration of a session.
func timingOf(raw, event mapstr.M) {
	start, err := time.Parse(time.RFC3339Nano, str(raw, "session_start"))
	if err != nil || start.IsZero() {
		return
	}
	// common.Time is the date type libbeat's encoders and processors
	// expect (what event normalization would turn a time.Time into).
	event["start"] = common.Time(start)
	if stop, err := time.Parse(time.RFC3339Nano, str(raw, "session_stop")); err == nil && !stop.Before(start) {
		event["end"] = common.Time(stop)
		event["duration"] = stop.Sub(start).Nanoseconds()
	}
}

// errorOf is error.* of a failed event.
func errorOf(raw mapstr.M) mapstr.M {
	if e := str(raw, "error"); e != "" {
		return mapstr.M{"message": e}
	}
	if e := str(raw, "exitError"); e != "" {
		return mapstr.M{"message": e}
	}
	return nil
}
