// Package kibana defines teleportbeat's Kibana saved objects as code: the
// dashboards, their Lens visualizations and the saved searches. `go tool
// mage update` writes them under kibana/7/ in the layout libbeat's
// dashboard loader reads (`teleportbeat setup --dashboards`); Kibana
// migrates them to its own version on import.
package kibana

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/elastic/beats/v7/libbeat/dashboards"
	"github.com/elastic/elastic-agent-libs/logp"
)

// IndexPattern is the id (and title) of the data view libbeat creates from
// fields.yml for the teleportbeat data stream.
const IndexPattern = "teleportbeat-*"

// Object is one saved object file.
type Object struct {
	ID               string            `json:"id"`
	Type             string            `json:"type"`
	Attributes       map[string]any    `json:"attributes"`
	References       []Reference       `json:"references"`
	MigrationVersion map[string]string `json:"migrationVersion"`
	CoreMigration    string            `json:"coreMigrationVersion"`
}

// Reference links a saved object to another.
type Reference struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// stableID derives a UUID-shaped id from a name, so that ids do not
// change between generations.
func stableID(name string) string {
	h := sha1.Sum([]byte("teleportbeat/" + name))
	h[6] = (h[6] & 0x0f) | 0x50
	h[8] = (h[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// column is one Lens column.
type column struct {
	id  string
	def map[string]any
}

func count(label string) column {
	return column{id: stableID("col/count/" + label), def: map[string]any{
		"dataType": "number", "isBucketed": false, "label": label, "customLabel": true,
		"operationType": "count", "scale": "ratio", "sourceField": "Records",
	}}
}

func metricOf(op, field, label string) column {
	return column{id: stableID("col/" + op + "/" + field + "/" + label), def: map[string]any{
		"dataType": "number", "isBucketed": false, "label": label, "customLabel": true,
		"operationType": op, "scale": "ratio", "sourceField": field,
	}}
}

// duration is metricOf for a field in the given unit (nanoseconds for
// event.duration, seconds for teleport.certificate.ttl), shown as a
// duration ("2 hours"), not as a number.
func duration(op, field, label, unit string) column {
	c := metricOf(op, field, label)
	c.def["params"] = map[string]any{"format": map[string]any{"id": "duration", "params": map[string]any{"inputFormat": unit, "outputFormat": "humanizePrecise", "outputPrecision": 1}}}
	return c
}

// firstSeen is the earliest @timestamp of a bucket.
func firstSeen() column {
	return column{id: stableID("col/min/@timestamp"), def: map[string]any{
		"dataType": "date", "isBucketed": false, "label": "First seen", "customLabel": true,
		"operationType": "min", "scale": "ratio", "sourceField": "@timestamp",
	}}
}

func dateHistogram() column {
	return column{id: stableID("col/@timestamp"), def: map[string]any{
		"dataType": "date", "isBucketed": true, "label": "@timestamp",
		"operationType": "date_histogram", "params": map[string]any{"interval": "auto"},
		"scale": "interval", "sourceField": "@timestamp",
	}}
}

func terms(field, label string, size int, orderBy column) column {
	return column{id: stableID("col/terms/" + field + "/" + label), def: map[string]any{
		"dataType": "string", "isBucketed": true, "label": label, "customLabel": true,
		"operationType": "terms", "scale": "ordinal", "sourceField": field,
		"params": map[string]any{
			"orderBy":        map[string]any{"type": "column", "columnId": orderBy.id},
			"orderDirection": "desc",
			"otherBucket":    size > 5,
			"missingBucket":  false,
			"size":           size,
		},
	}}
}

// vis is a Lens visualization, placed by value on a dashboard: its
// attributes live in the dashboard's panel (Kibana's and package-spec's
// rule for integration dashboards), not in a saved object of its own.
// A map (kind "map") is placed by value the same way; a Lens
// visualization over Kibana Security's alerts (adHoc) carries its own
// data view of the alerts index.
type vis struct {
	title, description, visType string
	layer                       string
	state                       map[string]any
	kind                        string         // "lens" (""), "map"
	mapAttrs                    map[string]any // a map's attributes
	adHoc                       bool           // over the alerts' own data view
}

// lens builds a Lens visualization over the data view.
func lens(title, description, query, visType string, cols []column, visualization func(layer string) map[string]any) vis {
	layer := stableID("layer/" + title)
	order := make([]string, 0, len(cols))
	defs := map[string]any{}
	for _, c := range cols {
		order = append(order, c.id)
		defs[c.id] = c.def
	}
	return vis{
		title: title, description: description, visType: visType, layer: layer,
		state: map[string]any{
			"datasourceStates": map[string]any{
				"indexpattern": map[string]any{
					"layers": map[string]any{
						layer: map[string]any{"columnOrder": order, "columns": defs, "incompleteColumns": map[string]any{}},
					},
				},
			},
			"filters":       []any{},
			"query":         map[string]any{"language": "kuery", "query": query},
			"visualization": visualization(layer),
		},
	}
}

// mapLayer is a layer of a map: the clusters of documents matching query
// at their geo field, sized by count, in color.
type mapLayer struct {
	label, query, geoField, color string
}

// mapVis is a map (Kibana Maps) of layers over a road map.
func mapVis(title, description string, layers []mapLayer) vis {
	list := []any{map[string]any{
		"id": stableID("map/" + title + "/base"), "label": nil, "minZoom": 0, "maxZoom": 24, "alpha": 1, "visible": true,
		"includeInFitToBounds": true, "type": "EMS_VECTOR_TILE", "style": map[string]any{"type": "TILE"}, "locale": "autoselect",
		"sourceDescriptor": map[string]any{"type": "EMS_TMS", "isAutoSelect": true, "lightModeDefault": "road_map_desaturated"},
	}}
	for i, l := range layers {
		list = append(list, map[string]any{
			"id": stableID("map/" + title + "/" + l.label), "label": l.label, "minZoom": 0, "maxZoom": 24, "alpha": 0.75,
			"visible": true, "includeInFitToBounds": true, "type": "GEOJSON_VECTOR", "joins": []any{},
			"query": map[string]any{"language": "kuery", "query": l.query},
			"sourceDescriptor": map[string]any{
				"type": "ES_GEO_GRID", "id": stableID("map/" + title + "/" + l.label + "/source"),
				"geoField": l.geoField, "requestType": "point", "resolution": "COARSE",
				"metrics":          []any{map[string]any{"type": "count"}, map[string]any{"type": "cardinality", "field": "user.name"}},
				"applyGlobalQuery": true, "applyGlobalTime": true, "applyForceRefresh": true,
				"indexPatternRefName": fmt.Sprintf("layer_%d_source_index_pattern", i+1),
			},
			"style": map[string]any{"type": "VECTOR", "isTimeAware": true, "properties": map[string]any{
				"fillColor": map[string]any{"type": "STATIC", "options": map[string]any{"color": l.color}},
				"lineColor": map[string]any{"type": "STATIC", "options": map[string]any{"color": "#FFFFFF"}},
				"iconSize": map[string]any{"type": "DYNAMIC", "options": map[string]any{
					"minSize": 4, "maxSize": 28, "field": map[string]any{"name": "doc_count", "origin": "source"},
					"fieldMetaOptions": map[string]any{"isEnabled": true, "sigma": 3},
				}},
			}},
		})
	}
	layerList, _ := json.Marshal(list)
	mapState, _ := json.Marshal(map[string]any{
		"zoom": 1.2, "center": map[string]any{"lon": 0, "lat": 25},
		"timeFilters":   map[string]any{"from": "now-24h", "to": "now"},
		"refreshConfig": map[string]any{"isPaused": true, "interval": 0},
		"query":         map[string]any{"query": "", "language": "kuery"}, "filters": []any{},
		"settings": map[string]any{"autoFitToDataBounds": false, "initialLocation": "LAST_SAVED_LOCATION", "showSpatialFilters": true},
	})
	return vis{title: title, description: description, kind: "map", mapAttrs: map[string]any{
		"layerListJSON": string(layerList),
		"mapStateJSON":  string(mapState),
		"uiStateJSON":   `{"isLayerTOCOpen":true,"openTOCDetails":[]}`,
	}}
}

// mapLayerRefs are the data view references a map's layers name.
func mapLayerRefs(v vis) []string {
	var layers []map[string]any
	_ = json.Unmarshal([]byte(v.mapAttrs["layerListJSON"].(string)), &layers)
	var out []string
	for _, l := range layers {
		if src, ok := l["sourceDescriptor"].(map[string]any); ok {
			if name, ok := src["indexPatternRefName"].(string); ok {
				out = append(out, name)
			}
		}
	}
	return out
}

// AlertsIndex is where Kibana Security writes the alerts of its rules
// (one index per space).
const AlertsIndex = ".alerts-security.alerts-*"

// qAlerts selects the alerts of teleportbeat's rules.
const qAlerts = `kibana.alert.rule.tags:"Data Source: Teleport"`

// alertsLens builds a Lens visualization over the alerts of teleportbeat's
// rules, with its own (ad hoc) data view of the alerts index: the alerts
// are not in teleportbeat's data view.
func alertsLens(title, description, visType string, cols []column, visualization func(layer string) map[string]any) vis {
	v := lens(title, description, qAlerts, visType, cols, visualization)
	dv := stableID("dataview/alerts")
	layers := v.state["datasourceStates"].(map[string]any)["indexpattern"].(map[string]any)["layers"]
	for _, c := range cols {
		if c.def["operationType"] == "count" {
			c.def["sourceField"] = "___records___" // Lens 8's name
		}
	}
	v.state["datasourceStates"] = map[string]any{"formBased": map[string]any{"layers": layers}}
	v.state["adHocDataViews"] = map[string]any{dv: map[string]any{
		"id": dv, "title": AlertsIndex, "name": "Security alerts (teleportbeat)", "timeFieldName": "@timestamp",
		"sourceFilters": []any{}, "fieldFormats": map[string]any{}, "runtimeFieldMap": map[string]any{}, "fieldAttrs": map[string]any{}, "allowNoIndex": true,
	}}
	v.state["internalReferences"] = []any{map[string]any{"type": "index-pattern", "id": dv, "name": v.layerRef()}}
	v.adHoc = true
	return v
}

// layerRef is the name of the reference of a Lens layer to its data view.
func (v vis) layerRef() string { return "indexpattern-datasource-layer-" + v.layer }

func metricVis(title, description, query string, m column) vis {
	return lens(title, description, query, "lnsMetric", []column{m}, func(layer string) map[string]any {
		return map[string]any{"accessor": m.id, "layerId": layer}
	})
}

// barOverTime is a stacked bar chart of m over time, split by split (when
// split is not nil).
func barOverTime(title, description, query string, m column, split *column) vis {
	cols := []column{dateHistogram(), m}
	layerVis := map[string]any{"accessors": []string{m.id}, "seriesType": "bar_stacked", "xAccessor": cols[0].id}
	if split != nil {
		cols = append([]column{*split}, cols...)
		layerVis["splitAccessor"] = split.id
	}
	return lens(title, description, query, "lnsXY", cols, func(layer string) map[string]any {
		layerVis["layerId"] = layer
		return map[string]any{
			"legend":              map[string]any{"isVisible": true, "position": "right"},
			"preferredSeriesType": "bar_stacked",
			"valueLabels":         "hide",
			"fittingFunction":     "None",
			"layers":              []any{layerVis},
		}
	})
}

// table is a data table of the bucket columns and the metrics.
func table(title, description, query string, cols ...column) vis {
	return lens(title, description, query, "lnsDatatable", cols, func(layer string) map[string]any {
		var cs []any
		for _, c := range cols {
			cs = append(cs, map[string]any{"columnId": c.id, "isTransposed": false})
		}
		return map[string]any{"layerId": layer, "columns": cs}
	})
}

func donut(title, description, query string, group, m column) vis {
	return lens(title, description, query, "lnsPie", []column{group, m}, func(layer string) map[string]any {
		return map[string]any{
			"shape": "donut",
			"layers": []any{map[string]any{
				"layerId": layer, "groups": []string{group.id}, "metric": m.id,
				"numberDisplay": "percent", "categoryDisplay": "default", "legendDisplay": "default", "nestedLegend": false,
			}},
		}
	})
}

// search is a saved search (Discover) of one dataset.
func search(title, description, query string, columns []string, dataView string) Object {
	return Object{
		ID:   stableID("search/" + title),
		Type: "search",
		Attributes: map[string]any{
			"title":       title,
			"description": description,
			"columns":     columns,
			"sort":        []any{[]string{"@timestamp", "desc"}},
			"kibanaSavedObjectMeta": map[string]any{
				"searchSourceJSON": map[string]any{
					"query":        map[string]any{"language": "kuery", "query": query},
					"filter":       []any{},
					"indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
				},
			},
		},
		References:       []Reference{{ID: dataView, Name: "kibanaSavedObjectMeta.searchSourceJSON.index", Type: "index-pattern"}},
		MigrationVersion: map[string]string{"search": "7.9.3"},
		CoreMigration:    "7.14.0",
	}
}

// panel places a visualization on a dashboard grid.
type panel struct {
	vis        vis
	x, y, w, h int
}

// filterRef is the reference name of a dashboard's filter data view.
const filterRef = "kibanaSavedObjectMeta.searchSourceJSON.filter[0].meta.index"

// dashboard returns the dashboard, its panels held by value, filtered on
// field: value (package-spec wants a filter on every dashboard of an
// integration, so that it reads only its own data).
func dashboard(title, description, field, value, dataView string, panels []panel) Object {
	var ps []any
	refs := []Reference{{ID: dataView, Name: filterRef, Type: "index-pattern"}}
	seen := map[string]bool{}
	for _, p := range panels {
		if seen[p.vis.title] {
			panic(fmt.Sprintf("kibana: dashboard %q has two panels titled %q", title, p.vis.title))
		}
		seen[p.vis.title] = true
		idx := stableID("panel/" + title + "/" + p.vis.title)
		gridData := map[string]any{"x": p.x, "y": p.y, "w": p.w, "h": p.h, "i": idx}
		switch {
		case p.vis.kind == "map":
			attrs := map[string]any{}
			for k, v := range p.vis.mapAttrs {
				attrs[k] = v
			}
			attrs["title"] = p.vis.title
			attrs["description"] = p.vis.description
			var inner []any
			for _, name := range mapLayerRefs(p.vis) {
				inner = append(inner, map[string]any{"id": dataView, "name": name, "type": "index-pattern"})
				refs = append(refs, Reference{ID: dataView, Name: idx + ":" + name, Type: "index-pattern"})
			}
			attrs["references"] = inner
			ps = append(ps, map[string]any{
				"version": "8.11.0", "type": "map", "panelIndex": idx, "title": p.vis.title, "gridData": gridData,
				"embeddableConfig": map[string]any{
					"attributes":     attrs,
					"enhancements":   map[string]any{},
					"hiddenLayers":   []any{},
					"isLayerTOCOpen": false,
					"mapCenter":      map[string]any{"lat": 25, "lon": 0, "zoom": 1.2},
					"openTOCDetails": []any{},
				},
			})
		case p.vis.adHoc:
			// Lens over the alerts index: its data view is its own (an
			// ad hoc one), so the panel has no reference.
			ps = append(ps, map[string]any{
				"version": "8.11.0", "type": "lens", "panelIndex": idx, "title": p.vis.title, "gridData": gridData,
				"embeddableConfig": map[string]any{
					"attributes": map[string]any{
						"title": p.vis.title, "description": p.vis.description, "visualizationType": p.vis.visType,
						"type": "lens", "references": []any{}, "state": p.vis.state,
					},
					"enhancements": map[string]any{},
				},
			})
		default:
			ps = append(ps, map[string]any{
				"version":    "7.14.0",
				"type":       "lens",
				"panelIndex": idx,
				"title":      p.vis.title,
				"gridData":   gridData,
				"embeddableConfig": map[string]any{
					"attributes": map[string]any{
						"title":             p.vis.title,
						"description":       p.vis.description,
						"visualizationType": p.vis.visType,
						"type":              "lens",
						"references": []any{
							map[string]any{"id": dataView, "name": "indexpattern-datasource-current-indexpattern", "type": "index-pattern"},
							map[string]any{"id": dataView, "name": p.vis.layerRef(), "type": "index-pattern"},
						},
						"state": p.vis.state,
					},
					"enhancements": map[string]any{},
				},
			})
			refs = append(refs,
				Reference{ID: dataView, Name: idx + ":indexpattern-datasource-current-indexpattern", Type: "index-pattern"},
				Reference{ID: dataView, Name: idx + ":" + p.vis.layerRef(), Type: "index-pattern"})
		}
	}
	return Object{
		ID:   stableID("dashboard/" + title),
		Type: "dashboard",
		Attributes: map[string]any{
			"title":       title,
			"description": description,
			"hits":        0,
			"timeRestore": false,
			"optionsJSON": map[string]any{"hidePanelTitles": false, "useMargins": true, "syncColors": false},
			"panelsJSON":  ps,
			"kibanaSavedObjectMeta": map[string]any{
				"searchSourceJSON": map[string]any{
					"query": map[string]any{"language": "kuery", "query": ""},
					"filter": []any{map[string]any{
						"meta": map[string]any{
							"alias": nil, "negate": false, "disabled": false, "type": "phrase", "key": field,
							"params": map[string]any{"query": value}, "indexRefName": filterRef,
						},
						"query":  map[string]any{"match_phrase": map[string]any{field: value}},
						"$state": map[string]any{"store": "appState"},
					}},
				},
			},
		},
		References:       refs,
		MigrationVersion: map[string]string{"dashboard": "7.14.0"},
		CoreMigration:    "7.14.0",
	}
}

// Queries shared by the dashboards.
const (
	qAudit         = `event.dataset:"teleportbeat.audit"`
	qSessionData   = `event.dataset:"teleportbeat.session"`
	qFailedLogins  = `event.dataset:"teleportbeat.audit" and event.action:"user.login" and event.outcome:"failure"`
	qLogins        = `event.dataset:"teleportbeat.audit" and event.action:"user.login" and event.outcome:"success" and source.ip:*`
	qPrivileged    = `event.dataset:"teleportbeat.audit" and event.action:("user.create" or "user.update" or "user.delete" or "user.password_change" or "role.created" or "role.updated" or "role.deleted" or "join_token.create" or "trusted_cluster_token.create" or "reset_password_token.create" or "recovery_token.create" or "privilege_token.create" or "lock.created" or "lock.deleted" or "access_request.create" or "access_request.review" or "access_request.update" or "access_request.delete" or "access_request.expire" or "bot.create" or "bot.update" or "bot.delete" or "github.created" or "github.updated" or "github.deleted" or "oidc.created" or "oidc.updated" or "oidc.deleted" or "saml.created" or "saml.updated" or "saml.deleted")`
	qAccessReq     = `event.dataset:"teleportbeat.audit" and event.action:access_request.*`
	qReviews       = `event.dataset:"teleportbeat.audit" and event.action:"access_request.review"`
	qDenied        = `event.dataset:"teleportbeat.audit" and event.outcome:"failure" and teleport.resource.kind:*`
	qLocksMFA      = `event.dataset:"teleportbeat.audit" and event.action:("lock.created" or "lock.deleted" or "mfa.add" or "mfa.delete" or "mfa_auth_challenge.create" or "mfa_auth_challenge.validate" or "recovery_code.used")`
	qCerts         = `event.dataset:"teleportbeat.audit" and event.action:"cert.create"`
	qSessionStart  = `event.dataset:"teleportbeat.audit" and event.action:("session.start" or "windows.desktop.session.start" or "db.session.start" or "app.session.start")`
	qSessionEnd    = `event.dataset:"teleportbeat.audit" and event.action:("session.end" or "windows.desktop.session.end" or "db.session.end" or "app.session.end")`
	qExec          = `event.dataset:"teleportbeat.audit" and event.action:"exec"`
	qSessionCmds   = `event.action:"session.command"`
	qSessionUpload = `event.dataset:"teleportbeat.audit" and event.action:"session.upload"`
	qLoginsGeo     = `event.dataset:"teleportbeat.audit" and event.action:"user.login" and event.outcome:"success" and source.geo.location:*`
	qFailedGeo     = `event.dataset:"teleportbeat.audit" and event.action:"user.login" and event.outcome:"failure" and source.geo.location:*`
	qPrivilegedOS  = `event.dataset:"teleportbeat.audit" and event.action:("session.start" or "windows.desktop.session.start") and not event.outcome:"failure" and user.effective.name:("root" or "Administrator" or "administrator")`
	qBots          = `event.dataset:"teleportbeat.audit" and teleport.actor.kind:"bot"`
	qBotJoins      = `event.dataset:"teleportbeat.audit" and event.action:"bot.join"`
	qCertFailures  = `event.dataset:"teleportbeat.audit" and event.action:"auth" and event.outcome:"failure"`
)

// Objects returns every saved object teleportbeat ships, over the
// teleportbeat data view.
func Objects() []Object { return objects(IndexPattern) }

// objects returns the saved objects over the data view dataView.
func objects(dataView string) []Object {
	n := count("Events")

	auditSearch := search("Teleport audit events [Teleportbeat]", "Every Teleport audit event.", qAudit,
		[]string{"event.action", "event.outcome", "user.name", "source.ip", "host.name", "message"}, dataView)
	sessionSearch := search("Teleport session recordings [Teleportbeat]", "Events of Teleport session recordings.", qSessionData,
		[]string{"event.action", "user.name", "host.name", "teleport.session.sid", "message"}, dataView)

	byType := terms("event.action", "Event type", 10, n)
	byOutcome := terms("event.outcome", "Outcome", 3, n)
	denied := count("Denied")
	logins := count("Logins")
	overview := dashboard("[Teleportbeat] Teleport Audit Overview",
		"Teleport audit events: activity, users, sources, failed logins, denied access, privileged changes, locks and MFA, certificates and access requests. Discover: \"Teleport audit events [Teleportbeat]\".",
		"event.dataset", "teleportbeat.audit", dataView,
		[]panel{
			{metricVis("Audit events [Teleportbeat]", "Number of audit events.", qAudit, n), 0, 0, 12, 8},
			{metricVis("Failed logins [Teleportbeat]", "Failed user logins.", qFailedLogins, count("Failed logins")), 12, 0, 12, 8},
			{metricVis("Active users [Teleportbeat]", "Distinct users.", qAudit, metricOf("unique_count", "user.name", "Users")), 24, 0, 12, 8},
			{metricVis("Privileged changes (count) [Teleportbeat]", "Changes to users, roles, tokens, locks, connectors and access requests.", qPrivileged, count("Privileged changes")), 36, 0, 12, 8},
			{barOverTime("Events over time by type [Teleportbeat]", "Audit events over time, by event type.", qAudit, n, &byType), 0, 8, 24, 15},
			{barOverTime("Events over time by outcome [Teleportbeat]", "Audit events over time, by outcome.", qAudit, n, &byOutcome), 24, 8, 24, 15},
			{table("Top users [Teleportbeat]", "Users with the most audit events.", qAudit, terms("user.name", "User", 10, n), n), 0, 23, 16, 15},
			{table("Top source IPs [Teleportbeat]", "Source addresses with the most audit events.", qAudit, terms("source.ip", "Source IP", 10, n), n), 16, 23, 16, 15},
			{donut("Event categories [Teleportbeat]", "Audit events by ECS category.", qAudit, terms("event.category", "Category", 10, n), n), 32, 23, 16, 15},
			{table("Failed logins by user and source [Teleportbeat]", "Failed logins, by user and source address.", qFailedLogins,
				terms("user.name", "User", 20, n), terms("source.ip", "Source IP", 5, n), n), 0, 38, 24, 15},
			{table("Privileged changes [Teleportbeat]", "Who changed users, roles, tokens, locks, connectors and access requests, and for whom.", qPrivileged,
				terms("event.action", "Change", 20, n), terms("user.name", "By", 10, n), terms("user.target.name", "Target user", 10, n), n), 24, 38, 24, 15},
			{barOverTime("Access denied over time by resource kind [Teleportbeat]", "Sessions and requests Teleport refused, by kind of resource (SSH node, Kubernetes, database, application, desktop).", qDenied, denied, ptr(terms("teleport.resource.kind", "Resource kind", 6, denied))), 0, 53, 24, 15},
			{table("Access denied by resource [Teleportbeat]", "Who was refused access to what: resource kind and name, user.", qDenied,
				terms("teleport.resource.kind", "Kind", 6, denied), terms("teleport.resource.name", "Resource", 20, denied), terms("user.name", "User", 10, denied), denied), 24, 53, 24, 15},
			{table("Locks and MFA events [Teleportbeat]", "Locks created and removed, MFA devices added and removed, MFA challenges, recovery codes used.", qLocksMFA,
				terms("event.action", "Event", 10, n), terms("user.name", "By", 10, n), terms("user.target.name", "Target user", 10, n), n), 0, 68, 24, 15},
			{table("Certificates issued [Teleportbeat]", "User certificates: who asked, for whom (impersonation), the longest TTL.", qCerts,
				terms("user.name", "Issued by", 20, n), terms("user.target.name", "For (impersonated)", 10, n), duration("max", "teleport.certificate.ttl", "Longest TTL", "seconds"), n), 24, 68, 24, 15},
			{barOverTime("Access requests over time [Teleportbeat]", "Access requests: created, reviewed, updated, expired.", qAccessReq, n, &byType), 0, 83, 24, 15},
			{table("Access request reviews [Teleportbeat]", "Who approved or denied which access requests.", qReviews,
				terms("user.name", "Reviewer", 20, n), terms("teleport.audit.proposed_state", "Decision", 3, n), terms("teleport.audit.id", "Request", 10, n), n), 24, 83, 24, 15},
			// Where logins come from (source.geo and source.as, from
			// teleportbeat's GeoIP ingest pipeline).
			{table("Logins by source country [Teleportbeat]", "Successful logins by the country of their source address (GeoIP).", qLogins,
				terms("source.geo.country_name", "Country", 20, logins), metricOf("unique_count", "user.name", "Users"), logins), 0, 98, 16, 15},
			{table("Logins by network (ASN) [Teleportbeat]", "Successful logins by the autonomous system (network owner) of their source address.", qLogins,
				terms("source.as.organization.name", "Network", 20, logins), terms("source.as.number", "ASN", 3, logins), logins), 16, 98, 16, 15},
			{table("First seen source countries per user [Teleportbeat]", "For each user, the countries they logged in from and when each was first seen: a new country for a user is worth a look.", qLogins,
				terms("user.name", "User", 50, logins), terms("source.geo.country_name", "Country", 10, logins), firstSeen(), logins), 32, 98, 16, 15},
			// One beat can read several clusters: a cluster clicked
			// here filters the whole dashboard to it.
			{table("Events by cluster [Teleportbeat]", "Audit events by Teleport cluster (teleport.cluster) and type: click a cluster to filter the dashboard to it.", qAudit,
				terms("teleport.cluster", "Cluster", 20, n), terms("event.action", "Event type", 5, n), n), 0, 113, 48, 12},
		})

	sessions := dashboard("[Teleportbeat] Teleport Sessions",
		"Interactive sessions: who connected where, for how long, and the commands they ran. Discover: \"Teleport session recordings [Teleportbeat]\".",
		"event.module", "teleport", dataView,
		[]panel{
			{metricVis("Sessions started [Teleportbeat]", "SSH, desktop, database and app sessions started.", qSessionStart, count("Sessions")), 0, 0, 16, 8},
			{metricVis("Average session duration [Teleportbeat]", "Average duration of the sessions that ended.", qSessionEnd, duration("average", "event.duration", "Average duration", "nanoseconds")), 16, 0, 16, 8},
			{metricVis("Recordings uploaded [Teleportbeat]", "Session recordings uploaded.", qSessionUpload, count("Recordings")), 32, 0, 16, 8},
			{barOverTime("Sessions over time by node [Teleportbeat]", "Sessions started, by node.", qSessionStart, count("Sessions"), ptr(terms("host.name", "Node", 10, count("Sessions")))), 0, 8, 24, 15},
			{table("Sessions by user and node [Teleportbeat]", "Who opened sessions where.", qSessionStart,
				terms("user.name", "User", 20, count("Sessions")), terms("host.name", "Node", 10, count("Sessions")), count("Sessions")), 24, 8, 24, 15},
			{table("Session duration by user [Teleportbeat]", "How long sessions lasted, by user.", qSessionEnd,
				terms("user.name", "User", 20, duration("max", "event.duration", "Longest", "nanoseconds")), duration("average", "event.duration", "Average", "nanoseconds"), duration("max", "event.duration", "Longest", "nanoseconds"), count("Sessions")), 0, 23, 24, 15},
			{table("Commands run [Teleportbeat]", "Commands run with exec, by user and node.", qExec,
				terms("process.command_line", "Command", 20, n), terms("user.name", "User", 5, n), terms("host.name", "Node", 5, n), n), 24, 23, 24, 15},
			{table("Programs run in sessions [Teleportbeat]", "Programs started inside sessions (enhanced session recording).", qSessionCmds,
				terms("process.executable", "Program", 20, n), terms("user.name", "User", 5, n), n), 0, 38, 24, 15},
			{barOverTime("Recorded session events over time [Teleportbeat]", "Events of session recordings, by type.", qSessionData, n, &byType), 24, 38, 24, 15},
		})

	alerts := count("Alerts")
	severity := terms("kibana.alert.severity", "Severity", 4, alerts)
	alertTable := []column{terms("kibana.alert.rule.name", "Rule", 25, alerts), severity, terms("kibana.alert.workflow_status", "Status", 3, alerts), alerts}
	security := dashboard("[Teleportbeat] Teleport Security",
		"What a SOC opens first: where logins come from, the alerts of teleportbeat's detection rules, logins as root or Administrator, Machine ID bots, and certificate authentication failures.",
		"event.dataset", "teleportbeat.audit", dataView,
		[]panel{
			{mapVis("Login sources [Teleportbeat]", "Where logins come from (GeoIP of the source address): successful logins in green, failed in red, sized by count.", []mapLayer{
				{label: "Successful logins", query: qLoginsGeo, geoField: "source.geo.location", color: "#54B399"},
				{label: "Failed logins", query: qFailedGeo, geoField: "source.geo.location", color: "#E7664C"},
			}), 0, 0, 32, 20},
			{alertsLens("Alerts by rule [Teleportbeat]", "Alerts of teleportbeat's detection rules (Kibana Security's alerts index), by rule, severity and status.", "lnsDatatable",
				alertTable, func(layer string) map[string]any {
					var cs []any
					for _, c := range alertTable {
						cs = append(cs, map[string]any{"columnId": c.id, "isTransposed": false})
					}
					return map[string]any{"layerId": layer, "layerType": "data", "columns": cs}
				}), 32, 0, 16, 20},
			{alertsLens("Alerts over time by severity [Teleportbeat]", "Alerts of teleportbeat's detection rules over time, by severity.", "lnsXY",
				[]column{severity, dateHistogram(), alerts},
				func(layer string) map[string]any {
					return map[string]any{
						"legend": map[string]any{"isVisible": true, "position": "right"}, "preferredSeriesType": "bar_stacked", "valueLabels": "hide",
						"layers": []any{map[string]any{"layerId": layer, "layerType": "data", "seriesType": "bar_stacked", "accessors": []string{alerts.id}, "xAccessor": dateHistogram().id, "splitAccessor": severity.id}},
					}
				}), 0, 20, 24, 15},
			{table("Privileged OS logins [Teleportbeat]", "Sessions as root or Administrator: who, as which account, on which host.", qPrivilegedOS,
				terms("user.name", "User", 20, count("Sessions")), terms("user.effective.name", "As", 3, count("Sessions")), terms("host.name", "Host", 10, count("Sessions")), count("Sessions")), 24, 20, 24, 15},
			{barOverTime("Privileged OS logins over time [Teleportbeat]", "Sessions as root or Administrator over time, by user.", qPrivilegedOS, count("Sessions"), ptr(terms("user.name", "User", 10, count("Sessions")))), 0, 35, 24, 15},
			{table("Certificate authentication failures [Teleportbeat]", "Connections refused for their certificate (principal not allowed, expired, wrong cluster; app sessions with a bad token): reason, user or whose session, source.", qCertFailures,
				terms("error.message", "Reason", 10, n), terms("user.name", "User", 10, n), terms("user.target.name", "Session of", 5, n), terms("source.ip", "Source", 5, n), n), 24, 35, 24, 15},
			{barOverTime("Machine ID bot activity [Teleportbeat]", "What Machine ID bots did over time, by bot user.", qBots, n, ptr(terms("user.name", "Bot", 10, n))), 0, 50, 24, 15},
			{table("Machine ID bot actions [Teleportbeat]", "Each bot's actions and their outcome.", qBots,
				terms("user.name", "Bot", 20, n), terms("event.action", "Action", 10, n), terms("event.outcome", "Outcome", 3, n), n), 24, 50, 24, 15},
			{table("Machine ID bot joins [Teleportbeat]", "Bots joining the cluster: by bot, join method and outcome.", qBotJoins,
				terms("teleport.audit.bot_name", "Bot", 20, n), terms("teleport.audit.method", "Join method", 5, n), terms("event.outcome", "Outcome", 3, n), n), 0, 65, 24, 15},
			{barOverTime("Certificate authentication failures over time [Teleportbeat]", "Certificate authentication failures over time, by source address.", qCertFailures, n, ptr(terms("source.ip", "Source", 10, n))), 24, 65, 24, 15},
		})

	objs := []Object{overview, sessions, security, auditSearch, sessionSearch}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].Type+objs[i].ID < objs[j].Type+objs[j].ID })
	return objs
}

func ptr(c column) *column { return &c }

// Files renders the objects as libbeat's loader expects them:
// kibana/7/dashboard/<id>.json, one object per file. libbeat imports every
// file of that directory (and what the objects reference from the others);
// the saved searches are there too, since no dashboard references them
// (dashboards hold their panels by value).
func Files() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, o := range Objects() {
		b, err := json.MarshalIndent(o, "", "  ")
		if err != nil {
			return nil, err
		}
		out[filepath.Join("kibana", "7", "dashboard", o.ID+".json")] = append(b, '\n')
	}
	return out, nil
}

// FleetIndexPattern is the data view Fleet creates for logs data streams.
const FleetIndexPattern = "logs-*"

// FleetFiles renders the objects for the Fleet package in pkgDir:
// <pkgDir>/kibana/<type>/<package>-<id>.json with ids prefixed by the
// package name (package-spec requires it, and it keeps them apart from the
// objects `teleportbeat setup` loads), the logs-* data view instead of
// teleportbeat-*, and the JSON-in-string attributes Kibana's import
// expects (libbeat encodes them the same way when it loads dashboards).
func FleetFiles(pkgDir string) (map[string][]byte, error) {
	pkg := filepath.Base(pkgDir)
	out := map[string][]byte{}
	for _, o := range objects(FleetIndexPattern) {
		o.ID = pkg + "-" + o.ID
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		b = dashboards.EncodeJSONObjects(b, logp.NewNopLogger())
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, b, "", "  "); err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.Type, o.ID, err)
		}
		pretty.WriteByte('\n')
		out[filepath.Join(pkgDir, "kibana", o.Type, o.ID+".json")] = pretty.Bytes()
	}
	return out, nil
}
