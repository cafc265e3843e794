// Package configure writes what a new teleportbeat installation needs, as
// `teleportbeat configure` (the counterpart of the event handler's
// `configure`): the Teleport role and user with the tctl commands to create
// them and sign an identity, the mutual-TLS material and pipeline for
// Logstash's beats input, and a starter teleportbeat.yml wired to it all.
package configure

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/teleportbeat/teleportbeat/internal/certs"
)

// Options for Write.
type Options struct {
	Dir          string // output directory
	TeleportAddr string // Proxy or Auth Service address
	// MoreClusters are the addresses of further clusters, each read by
	// the same beat (teleportbeat.clusters): the role and user are
	// created in each, and each gets its tctl script and identity.
	MoreClusters []string
	LogstashHost []string // names and IPs of the Logstash host(s), for its certificate
	LogstashPort int
	Lock         bool // grant lock creation (for teleportbeat.lock)
	Force        bool // overwrite existing files
	KeyType      certs.KeyType
	RSABits      int
	TTL          time.Duration
	User         string // Teleport user (and role) name
	// TeleportVersion is the cluster's Teleport version (major, or
	// major.minor...), for the role's version: v7 from Teleport 14 on, v6
	// before (and when unknown: every Teleport from 11 to 18 takes v6,
	// and the rules teleportbeat needs mean the same in both).
	TeleportVersion string
}

// RoleVersion is the role version for a Teleport version ("" when unknown).
func RoleVersion(teleportVersion string) (string, error) {
	if teleportVersion == "" {
		return "v6", nil
	}
	major, _, _ := strings.Cut(strings.TrimPrefix(teleportVersion, "v"), ".")
	n, err := strconv.Atoi(major)
	if err != nil || n < 1 {
		return "", fmt.Errorf("--teleport-version: %q is not a Teleport version such as 13 or 16.4.6", teleportVersion)
	}
	switch {
	case n < 11:
		return "", fmt.Errorf("--teleport-version: Teleport %s is older than teleportbeat supports (11 and newer; see README's support matrix)", teleportVersion)
	case n < 14:
		return "v6", nil
	}
	return "v7", nil
}

// File is one written file.
type File struct {
	Name string
	Mode os.FileMode
	What string
}

// Write writes every file into o.Dir and returns them.
func Write(o Options) ([]File, error) {
	if o.User == "" {
		o.User = "teleportbeat"
	}
	if o.TeleportAddr == "" {
		o.TeleportAddr = "teleport.example.com:443"
	}
	if len(o.LogstashHost) == 0 {
		o.LogstashHost = []string{"localhost", "127.0.0.1"}
	}
	if o.LogstashPort == 0 {
		o.LogstashPort = 5044
	}
	if o.KeyType == "" {
		o.KeyType = certs.RSA
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	o.Dir = dir

	files, err := render(o)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	if !o.Force {
		var existing []string
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(o.Dir, n)); err == nil {
				existing = append(existing, n)
			}
		}
		if len(existing) > 0 {
			return nil, fmt.Errorf("%s already holds %s: not overwriting them (use --force to replace them)", o.Dir, strings.Join(existing, ", "))
		}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.Dir, err)
	}
	var out []File
	for _, n := range names {
		f := files[n]
		p := filepath.Join(o.Dir, n)
		// Remove first: a forced overwrite must not keep an old file's
		// looser mode.
		_ = os.Remove(p)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return nil, fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return nil, err
		}
		out = append(out, File{Name: n, Mode: f.mode, What: f.what})
	}
	return out, nil
}

type file struct {
	data []byte
	mode os.FileMode
	what string
}

func render(o Options) (map[string]file, error) {
	roleVersion, err := RoleVersion(o.TeleportVersion)
	if err != nil {
		return nil, err
	}
	ca, err := certs.NewCA("teleportbeat Logstash CA", certs.Options{Type: o.KeyType, RSABits: o.RSABits, TTL: o.TTL})
	if err != nil {
		return nil, err
	}
	server, err := ca.Server("logstash", o.LogstashHost...)
	if err != nil {
		return nil, err
	}
	client, err := ca.Client(o.User)
	if err != nil {
		return nil, err
	}
	clusters := clustersOf(o)
	data := map[string]any{
		"RoleVersion":  roleVersion,
		"O":            o,
		"Dir":          o.Dir,
		"LogstashHost": o.LogstashHost[0],
		"Clusters":     clusters,
	}
	out := map[string]file{
		"ca.crt":           {ca.CertPEM, 0o644, "CA of the Logstash mutual TLS"},
		"ca.key":           {ca.KeyPEM, 0o600, "CA key (keep it offline; only needed to issue more certificates)"},
		"logstash.crt":     {server.CertPEM, 0o644, "Logstash server certificate"},
		"logstash.key":     {server.KeyPEM, 0o600, "Logstash server key, unencrypted PKCS#8 as Logstash wants"},
		"teleportbeat.crt": {client.CertPEM, 0o644, "teleportbeat client certificate for Logstash"},
		"teleportbeat.key": {client.KeyPEM, 0o600, "teleportbeat client key (PKCS#8)"},
	}
	type tmpl struct {
		tmpl string
		mode os.FileMode
		what string
		data map[string]any
	}
	tmpls := map[string]tmpl{
		"teleportbeat-role.yaml":     {roleTmpl, 0o644, "Teleport role: read and list audit events and session recordings", data},
		"teleportbeat-user.yaml":     {userTmpl, 0o644, "Teleport user with that role", data},
		"logstash-teleportbeat.conf": {logstashTmpl, 0o644, "Logstash pipeline: beats input with mutual TLS to Elasticsearch", data},
		"teleportbeat.yml":           {beatTmpl, 0o600, "starter teleportbeat.yml, wired to the identity and Logstash", data},
	}
	for _, c := range clusters {
		what := "tctl commands to create the role and user and sign an identity"
		if len(clusters) > 1 {
			what += " in " + c.Addr
		}
		tmpls[c.Script] = tmpl{tctlTmpl, 0o700, what, map[string]any{"O": o, "C": c}}
	}
	for name, t := range tmpls {
		var b bytes.Buffer
		tpl, err := template.New(name).Option("missingkey=error").Parse(t.tmpl)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		if err := tpl.Execute(&b, t.data); err != nil {
			return nil, fmt.Errorf("render %s: %w", name, err)
		}
		out[name] = file{b.Bytes(), t.mode, t.what}
	}
	return out, nil
}

// cluster is one cluster configure writes for: its address, its tctl
// script and the identity file that script signs.
type cluster struct {
	Addr, Script, Identity string
}

// clustersOf are the clusters of o: one (tctl.sh, identity), or, with
// MoreClusters, a script and identity each, named after the host.
func clustersOf(o Options) []cluster {
	if len(o.MoreClusters) == 0 {
		return []cluster{{Addr: o.TeleportAddr, Script: "tctl.sh", Identity: "identity"}}
	}
	var out []cluster
	for _, a := range append([]string{o.TeleportAddr}, o.MoreClusters...) {
		host := a
		if h, _, err := net.SplitHostPort(a); err == nil {
			host = h
		}
		out = append(out, cluster{Addr: a, Script: "tctl-" + host + ".sh", Identity: host + ".identity"})
	}
	return out
}

const roleTmpl = `# Role for teleportbeat: read and list the audit log and session recordings
# (least privilege){{if .O.Lock}}, and create locks (teleportbeat.lock){{end}}.
kind: role
version: {{.RoleVersion}}
metadata:
  name: {{.O.User}}
spec:
  allow:
    rules:
      - resources: ['event', 'session']
        verbs: ['list', 'read']
{{- if .O.Lock}}
      - resources: ['lock']
        verbs: ['create', 'update']
{{- end}}
`

const userTmpl = `# The Teleport user teleportbeat signs in as.
kind: user
version: v2
metadata:
  name: {{.O.User}}
spec:
  roles: ['{{.O.User}}']
`

const tctlTmpl = `#!/bin/sh
# Run on a machine where tctl can reach the cluster ({{.C.Addr}}).
set -e
cd "$(dirname "$0")"

tctl create -f teleportbeat-role.yaml
tctl create -f teleportbeat-user.yaml

# An identity file for teleportbeat (its teleport.identity_file).
# Renew it before it expires, or let Machine ID (tbot) write and renew it:
# teleportbeat follows the file when it changes.
tctl auth sign --user={{.O.User}} --format=file --out={{.C.Identity}} --ttl=8760h
chmod 600 {{.C.Identity}}
`

const logstashTmpl = `# Logstash pipeline for teleportbeat: the beats input with mutual TLS (only
# clients with a certificate from ca.crt are accepted), into Elasticsearch.
# Copy ca.crt, logstash.crt and logstash.key to the Logstash host.
input {
  beats {
    port => {{.O.LogstashPort}}
    ssl_enabled => true
    ssl_certificate_authorities => ["{{.Dir}}/ca.crt"]
    ssl_certificate => "{{.Dir}}/logstash.crt"
    ssl_key => "{{.Dir}}/logstash.key"
    ssl_client_authentication => "required"
  }
}

output {
  elasticsearch {
    hosts => ["https://localhost:9200"]
    # api_key => "id:api_key"
    # Into teleportbeat's data stream, teleportbeat-<version> (load its
    # template and lifecycle policy once with teleportbeat setup
    # --index-management), one document per Teleport event: the _id makes
    # a replay a duplicate.
    index => "%{[@metadata][beat]}-%{[@metadata][version]}"
    action => "create"
    document_id => "%{[@metadata][_id]}"
    # GeoIP and ASN of the addresses: teleportbeat's ingest pipeline (load
    # it once with teleportbeat setup --pipelines).
    pipeline => "%{[@metadata][beat]}-%{[@metadata][version]}-geoip"
  }
}
`

const beatTmpl = `# Written by teleportbeat configure. See teleportbeat.reference.yml for
# every setting.

{{- if eq (len .Clusters) 1}}
teleportbeat.teleport:
  addr: ["{{.O.TeleportAddr}}"]
  # Written by tctl.sh (tctl auth sign), or by Machine ID.
  identity_file: {{.Dir}}/identity
{{- else}}
# The clusters this beat reads; each identity is written by its
# tctl-<host>.sh (tctl auth sign), or by Machine ID.
teleportbeat.clusters:
{{- range .Clusters}}
  - teleport.addr: ["{{.Addr}}"]
    teleport.identity_file: {{$.Dir}}/{{.Identity}}
{{- end}}
{{- end}}

teleportbeat.audit:
  # Where to start on the first run (default: late_events.max_delay, 15
  # minutes, before the first start). Later runs resume from the registry.
  #start_time: "2025-01-01T00:00:00Z"

#teleportbeat.sessions.enabled: true
{{- if .O.Lock}}

# Lock users after repeated failed logins.
teleportbeat.lock:
  enabled: true
  #failed_attempts: 3
  #period: 1m
  #lock_for: 1h
{{- end}}

output.logstash:
  hosts: ["{{.LogstashHost}}:{{.O.LogstashPort}}"]
  ssl.certificate_authorities: ["{{.Dir}}/ca.crt"]
  ssl.certificate: {{.Dir}}/teleportbeat.crt
  ssl.key: {{.Dir}}/teleportbeat.key

# Or straight to Elasticsearch:
#output.elasticsearch:
#  hosts: ["https://localhost:9200"]
#  api_key: "id:api_key"
`
