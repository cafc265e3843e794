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

// actor is user.* and the users it relates (docs/identity.md is the
// model this implements).
type actor struct {
	fields       mapstr.M
	name, target string // the acting user and the user acted on
	issuer       string // who issued the certificate the action used, when not its holder
	kind         string // human, bot, host or system
	related      []string
}

// actorOf is who acted, as the identity model has it:
//
//   - user.name is the Teleport user the action was taken as: the holder
//     of the certificate used (Teleport's "user"), whoever issued it. The
//     reviewer (access_request.review) and updated_by (access_request.update,
//     access lists) act on requests; a certificate issued by impersonation
//     (cert.create with an impersonator other than the holder: `tctl auth
//     sign` by an admin or the Auth host) was the issuer's act, with the
//     holder as the target.
//   - user.effective.name is the principal used on the resource: the OS
//     login, the database user, the Windows user, the Kubernetes users.
//   - user.target.* is the user acted on (admin actions, locks, the holder
//     of a certificate issued by impersonation, the requester of a
//     reviewed request).
//   - user.roles are the actor's roles.
//   - teleport.certificate.issuer is the impersonator of the certificate
//     the action used, when it is not the holder (also in related.user).
//   - teleport.actor.kind tells people from bots (Machine ID), host and
//     service identities (<uuid>.<cluster>) and Teleport itself (system).
func actorOf(raw mapstr.M, typ string, info *EventType) actor {
	var a actor
	a.fields = mapstr.M{}
	identity := sub(raw, "identity")
	holder := str(raw, "user")
	if holder == "" && identity != nil {
		holder = str(identity, "user")
	}
	issuer := str(raw, "impersonator")
	if issuer == "" && identity != nil {
		issuer = str(identity, "impersonator")
	}
	if issuer == holder {
		issuer = "" // a certificate renewed by its own holder (Machine ID)
	}
	roles := rolesOf(raw, identity)
	actorName, target := holder, ""
	actorRoles := roles
	effective := effectiveOf(raw)
	if typ == "auth" && holder == "unknown" {
		// Teleport's app access handler (lib/web/app) reports a failed
		// app session authentication as User "unknown" with the session's
		// owner, a Teleport user, as Login: who tried is not known, the
		// owner is whose session was tried.
		actorName, target, effective = "", str(raw, "login"), nil
		holder = ""
	}
	switch typ {
	case "access_request.review":
		actorName, target, actorRoles = str(raw, "reviewer"), holder, nil
	case "access_request.update":
		actorName, target, actorRoles = str(raw, "updated_by"), holder, nil
	case "cert.create":
		if issuer != "" {
			// The issuer asked for a certificate of the holder.
			actorName, target, actorRoles = issuer, holder, nil
		}
	}
	if actorName == "" && target == "" {
		actorName = str(raw, "updated_by")
	}
	if actorName == "" && target == "" {
		actorName = str(raw, "user_name") // bot.join: the bot's user
	}
	if actorName != "" {
		a.fields["name"] = actorName
	}
	if len(actorRoles) > 0 {
		a.fields["roles"] = actorRoles
	}
	if eff := effective; len(eff) > 0 {
		if len(eff) == 1 {
			a.fields["effective"] = mapstr.M{"name": eff[0]}
		} else {
			a.fields["effective"] = mapstr.M{"name": eff}
		}
	}
	targetsUser := info != nil && info.TargetsUser
	if targetsUser {
		target = str(raw, "name")
		if target == "" && typ == "user.password_change" {
			target = holder
		}
	}
	if typ == "lock.created" || typ == "lock.deleted" {
		// The lock's target: target (deprecated, kept by Teleport) or
		// lock.target of newer events.
		t := sub(raw, "target_object")
		if t == nil {
			if l := sub(raw, "lock"); l != nil {
				t = sub(l, "target")
			}
		}
		if t != nil {
			target = str(t, "user")
		}
	}
	if target != "" && target != actorName {
		tf := mapstr.M{"name": target}
		if targetsUser {
			if r, ok := raw["roles"].([]any); ok && len(r) > 0 {
				tf["roles"] = r
			}
		} else if typ == "cert.create" && len(roles) > 0 {
			tf["roles"] = roles
		}
		a.fields["target"] = tf
	} else {
		target = ""
	}
	a.name, a.target = actorName, target
	a.issuer = issuer
	a.kind = actorKind(actorName, raw)
	for _, u := range []string{actorName, holder, target, issuer} {
		a.related = addUnique(a.related, u)
	}
	for _, u := range effective {
		a.related = addUnique(a.related, u)
	}
	return a
}

// rolesOf are the roles of the user Teleport names (user_roles of newer
// events, else the roles of the certificate's identity).
func rolesOf(raw, identity mapstr.M) []any {
	if r, ok := raw["user_roles"].([]any); ok && len(r) > 0 {
		return r
	}
	if identity != nil {
		if r, ok := identity["roles"].([]any); ok && len(r) > 0 {
			return r
		}
	}
	return nil
}

// effectiveOf are the principals used on the resource: the OS login, the
// database user, the Windows user, the Kubernetes users.
func effectiveOf(raw mapstr.M) []string {
	var out []string
	for _, k := range []string{"login", "db_user", "windows_user"} {
		out = addUnique(out, str(raw, k))
	}
	if l, ok := raw["kubernetes_users"].([]any); ok {
		for _, v := range l {
			if s, ok := v.(string); ok {
				out = addUnique(out, s)
			}
		}
	}
	return out
}

// Actor kinds (teleport.actor.kind).
const (
	KindHuman  = "human"
	KindBot    = "bot"
	KindHost   = "host"
	KindSystem = "system"
)

// actorKind tells what kind of identity a user name is: Teleport's
// user_kind where the event has it (newer Teleport), else its shape: a
// Machine ID bot's user is bot-<name>, a host or service identity is
// <host uuid>.<cluster>, and Teleport's own actions are by "system".
func actorKind(name string, raw mapstr.M) string {
	if name == "" {
		return ""
	}
	switch {
	case name == "system" || strings.HasPrefix(name, "@"):
		return KindSystem
	case strings.HasPrefix(name, "bot-"):
		return KindBot
	case isHostIdentity(name):
		return KindHost
	}
	if k, ok := intOf(raw["user_kind"]); ok {
		switch k {
		case 2:
			return KindBot
		case 1:
			return KindHuman
		}
	}
	if str(raw, "bot_name") != "" && name == str(raw, "user") {
		return KindBot
	}
	return KindHuman
}

// isHostIdentity reports whether a user name is a host or service
// identity: a UUID, then a dot and the cluster's name.
func isHostIdentity(name string) bool {
	id, _, ok := strings.Cut(name, ".")
	if !ok || len(id) != 36 {
		return false
	}
	for i, c := range id {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
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
	if name == "" {
		// A node's name in Teleport is its UUID (session.data and the
		// other events that carry only server_id).
		name = str(raw, "server_id")
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
