package ecs

import "strings"

// CodeFamily is the family of a Teleport event code: its letters before
// the digits ("TDB02I" → "TDB", "TSPN001I" → "TSPN", "TMCP003E" → "TMCP",
// "INF014I" → "INF"), or for the older numeric codes of the letter T, its
// first three characters ("T5000I" → "T50", "T9001I" → "T90"). Codes grew
// longer than six characters in newer Teleport versions, so the family is
// read, not cut at a fixed width.
func CodeFamily(code string) string {
	code = strings.TrimSpace(code)
	i := 0
	for i < len(code) && code[i] >= 'A' && code[i] <= 'Z' {
		i++
	}
	if i == 0 || i == len(code) || code[i] < '0' || code[i] > '9' {
		return "" // not letters then digits: not a code
	}
	if i >= 2 {
		return code[:i]
	}
	if len(code) >= 4 {
		return code[:3]
	}
	return ""
}

// newerFamilies are the event families of Teleport releases newer than the
// pinned API (from Teleport's audit event reference, docs/pages/reference/
// audit-events of github.com/gravitational/teleport): by the name's family
// and by the code's, the ECS categories of their events.
var newerFamilies = map[string][]string{
	// MCP servers behind Teleport: sessions of requests over HTTP.
	"mcp": {catSession, catWeb}, "TMCP": {catSession, catWeb},
	// SCIM provisioning of users and groups from an identity provider.
	"scim": {catIAM}, "TSCIM": {catIAM},
	// AI and inference resources (models, policies, secrets), Beams.
	"inference_model": {catConfiguration}, "inference_policy": {catConfiguration},
	"inference_secret": {catConfiguration}, "retrieval_model": {catConfiguration},
	"classifier": {catConfiguration}, "beams": {catConfiguration}, "INF": {catConfiguration}, "TBEAM": {catConfiguration},
	// Client IP restrictions.
	"cir": {catConfiguration, catNetwork}, "CIR": {catConfiguration, catNetwork},
	// Workload identities (Machine ID).
	"WID": {catIAM},
	// VNet configuration.
	"vnet_config": {catConfiguration, catNetwork}, "TVNET": {catConfiguration, catNetwork},
	// Managed agent updates.
	"AUAR": {catConfiguration}, "autoupdate_agent_rollout": {catConfiguration},
}

// keywordCategories is the last resort for an event type no family or code
// tells: a word of its name. An event of a kind nothing names is an API
// call (ECS's api category).
var keywordCategories = []struct {
	word string
	cat  []string
}{
	{"session", []string{catSession}},
	{"login", []string{catAuthentication}},
	{"mfa", []string{catAuthentication}},
	{"auth", []string{catAuthentication}},
	{"user", []string{catIAM}},
	{"role", []string{catIAM}},
	{"access", []string{catIAM}},
	{"token", []string{catIAM}},
	{"bot", []string{catIAM}},
	{"identity", []string{catIAM}},
	{"lock", []string{catIAM}},
	{"db", []string{catDatabase}},
	{"database", []string{catDatabase}},
	{"kube", []string{catWeb}},
	{"app", []string{catWeb}},
	{"file", []string{catFile}},
	{"desktop", []string{catSession}},
	{"device", []string{catHost}},
	{"network", []string{catNetwork}},
	{"config", []string{catConfiguration}},
	{"integration", []string{catConfiguration}},
}

const catAPI = "api"

// lastResortCategory is the category of an event type nothing else tells.
func lastResortCategory(name string) []string {
	words := strings.FieldsFunc(name, func(r rune) bool { return r == '.' || r == '_' || r == '-' })
	for _, kw := range keywordCategories {
		for _, w := range words {
			if w == kw.word {
				return kw.cat
			}
		}
	}
	return []string{catAPI}
}
