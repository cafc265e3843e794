package ecs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic/elastic-agent-libs/mapstr"
)

func typeOf(t *testing.T, name string) *EventType {
	t.Helper()
	et, ok := LookupEventType(name)
	require.True(t, ok, name)
	return et
}

func TestEndpoints(t *testing.T) {
	ep := endpointsOf(mapstr.M{"addr": mapstr.M{"remote": "203.0.113.5:51234", "local": "10.0.0.1:3022"}, "proto": "ssh"})
	require.Equal(t, "203.0.113.5", ep.source["ip"])
	require.Equal(t, 3022, ep.destination["port"])
	require.Equal(t, mapstr.M{"protocol": "ssh"}, ep.network)
	require.Equal(t, []string{"203.0.113.5", "10.0.0.1"}, ep.related)

	ep = endpointsOf(mapstr.M{"identity": mapstr.M{"client_ip": "198.51.100.1"}, "server_addr": "10.0.0.9:443"})
	require.Equal(t, mapstr.M{"ip": "198.51.100.1"}, ep.source, "a certificate's client address")
	require.Equal(t, "10.0.0.9", ep.destination["ip"])
}

func TestProcessFromTheTable(t *testing.T) {
	p := processOf(mapstr.M{"command": "systemctl status nginx", "exitCode": "3"}, typeOf(t, "exec"))
	require.Equal(t, mapstr.M{"command_line": "systemctl status nginx", "name": "systemctl", "exit_code": int64(3)}, p)
	p = processOf(mapstr.M{"program": "nmap", "path": "/usr/bin/nmap", "argv": []any{"-sS"}, "pid": int64(7), "ppid": int64(1), "return_code": int64(0)}, typeOf(t, "session.command"))
	require.Equal(t, mapstr.M{"name": "nmap", "executable": "/usr/bin/nmap", "args": []any{"-sS"}, "pid": int64(7), "parent": mapstr.M{"pid": int64(1)}, "exit_code": int64(0)}, p)
	require.Nil(t, processOf(mapstr.M{"command": "ls"}, typeOf(t, "session.start")), "no process for a type without one")
}

func TestHTTPAndOrchestratorFromTheTable(t *testing.T) {
	h, u := httpOf(mapstr.M{"verb": "GET", "request_path": "/api/v1/pods", "response_code": int64(403)}, typeOf(t, "kube.request"))
	require.Equal(t, mapstr.M{"request": mapstr.M{"method": "GET"}, "response": mapstr.M{"status_code": int64(403)}}, h)
	require.Equal(t, mapstr.M{"path": "/api/v1/pods"}, u)
	o := orchestratorOf(mapstr.M{"kubernetes_cluster": "prod", "resource_namespace": "payments", "resource_kind": "pods"}, typeOf(t, "kube.request"))
	require.Equal(t, mapstr.M{"type": "kubernetes", "cluster": mapstr.M{"name": "prod"}, "namespace": "payments", "resource": mapstr.M{"type": "pods"}}, o)
	h, _ = httpOf(mapstr.M{"method": "POST", "path": "/x", "raw_query": "a=1"}, typeOf(t, "app.session.request"))
	require.Equal(t, "POST", h["request"].(mapstr.M)["method"])
	require.Nil(t, orchestratorOf(mapstr.M{"kubernetes_cluster": "prod"}, typeOf(t, "exec")))
}

func TestFileTimingErrorAndTTL(t *testing.T) {
	require.Equal(t, mapstr.M{"path": "/etc/hosts"}, fileOf(mapstr.M{"path": "/etc/hosts"}, typeOf(t, "scp")))
	require.Equal(t, mapstr.M{"path": "C:/x"}, fileOf(mapstr.M{"file_path": "C:/x"}, typeOf(t, "desktop.directory.read")))

	ev := mapstr.M{}
	timingOf(mapstr.M{"session_start": "2025-01-01T00:00:00Z", "session_stop": "2025-01-01T00:01:00Z"}, ev)
	require.Equal(t, int64(time.Minute), ev["duration"])

	require.Equal(t, mapstr.M{"message": "boom"}, errorOf(mapstr.M{"exitError": "boom"}))

	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ttl, ok := certificateTTL(mapstr.M{"identity": mapstr.M{"expires": "2025-01-01T12:00:00Z"}}, "cert.create", at)
	require.True(t, ok)
	require.Equal(t, int64(12*3600), ttl)
	_, ok = certificateTTL(mapstr.M{"identity": mapstr.M{"expires": "2024-01-01T12:00:00Z"}}, "cert.create", at)
	require.False(t, ok, "an expiry before the event is no lifetime")
}

// The keys the table names are raw fields Teleport writes for that type
// (they are in the generated raw field types).
func TestTableKeysAreRawFields(t *testing.T) {
	for _, et := range eventTypeList {
		var keys []string
		if h := et.HTTP; h != nil {
			keys = append(keys, h.Method, h.Path, h.Query, h.Status)
		}
		if p := et.Process; p != nil {
			keys = append(keys, p.CommandLine, p.Executable, p.Name, p.Args, p.PID, p.PPID, p.ExitCode)
		}
		keys = append(keys, et.FileKey)
		keys = append(keys, et.Detail...)
		for _, k := range keys {
			if k == "" {
				continue
			}
			_, ok := rawFieldTypes[k]
			require.True(t, ok, "%s: %q is not a raw field of the pinned API", et.Name, k)
		}
	}
}
