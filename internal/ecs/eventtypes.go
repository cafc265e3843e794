package ecs

// The Teleport event types teleportbeat knows, with their ECS
// categorisation.
//
// Each "event" string Teleport emits is decoded by Teleport into one struct
// of teleport/api's types/events (the members of events.OneOf); the pairs
// below are Teleport's own (lib/events/api.go and lib/events/dynamic.go,
// FromEventFields) for the pinned API, 18.0.0-dev. A test checks that every
// OneOf member of the pinned API has at least one event type here.
//
// Categories and types follow ECS 8.x's allowed values and the choices of
// Elastic's own audit integrations (Teleport's in elastic/integrations,
// Okta, GitHub audit): logins are authentication/start, interactive
// sessions session/start|end, commands process/start, changes to users,
// roles and access iam, changes to cluster resources configuration, queries
// database/access, HTTP requests web/access.

// ECS event.category values.
const (
	catAuthentication = "authentication"
	catConfiguration  = "configuration"
	catDatabase       = "database"
	catFile           = "file"
	catHost           = "host"
	catIAM            = "iam"
	catNetwork        = "network"
	catProcess        = "process"
	catSession        = "session"
	catWeb            = "web"
)

// ECS event.type values.
const (
	typAccess     = "access"
	typAdmin      = "admin"
	typChange     = "change"
	typConnection = "connection"
	typCreation   = "creation"
	typDeletion   = "deletion"
	typDenied     = "denied"
	typEnd        = "end"
	typError      = "error"
	typGroup      = "group"
	typInfo       = "info"
	typStart      = "start"
	typUser       = "user"
)

// EventType is the categorisation of one Teleport event type.
type EventType struct {
	// Name is the Teleport event type, the "event" field.
	Name string
	// Struct is the teleport/api types/events struct Teleport decodes it into.
	Struct string
	// Category and Type are ECS event.category and event.type.
	Category []string
	Type     []string
	// Action is a short verb phrase for the one-line message ("logged in").
	Action string
	// TargetsUser marks admin events on another user: the "name" field is
	// that user (user.target.name).
	TargetsUser bool

	// What else the event's raw fields hold, for the field sets the
	// mapper fills (fieldsets.go); zero values mean none.
	HTTP         *HTTPKeys    // http.*, url.*
	Process      *ProcessKeys // process.*
	FileKey      string       // file.path
	Kubernetes   bool         // orchestrator.*
	Detail       []string     // raw keys whose values, joined, close the message ("alice ran a command: ls")
	DetailPrefix string       // written before the detail instead of ": " (user.login: "with local")
	// FailedAction is the verb phrase of a failure, for types mostly seen
	// failing ("failed to log in", not "logged in ... (failed)").
	FailedAction string
}

// HTTPKeys are the raw keys of an HTTP request's parts.
type HTTPKeys struct {
	Method, Path, Query, Status string
}

// ProcessKeys are the raw keys of a process's fields. A process without
// a Name key is named by the first word of its command line.
type ProcessKeys struct {
	CommandLine, Executable, Name, Args, PID, PPID, ExitCode string
}

func et(name, strct string, cat, typ []string, action string) EventType {
	return EventType{Name: name, Struct: strct, Category: cat, Type: typ, Action: action}
}

func (e EventType) withHTTP(method, path, query, status string) EventType {
	e.HTTP = &HTTPKeys{Method: method, Path: path, Query: query, Status: status}
	return e
}

func (e EventType) withProcess(k ProcessKeys) EventType {
	e.Process = &k
	return e
}

func (e EventType) withFile(key string) EventType {
	e.FileKey = key
	return e
}

func (e EventType) withKubernetes() EventType {
	e.Kubernetes = true
	return e
}

func (e EventType) withDetail(prefix string, keys ...string) EventType {
	e.Detail, e.DetailPrefix = keys, prefix
	return e
}

func (e EventType) failing(action string) EventType {
	e.FailedAction = action
	return e
}

func c(v ...string) []string { return v }

// resourceCRUD describes create/update/delete events of a cluster resource.
func resourceCRUD(prefix, structPrefix, what string, cat ...string) []EventType {
	if len(cat) == 0 {
		cat = c(catConfiguration)
	}
	return []EventType{
		et(prefix+".create", structPrefix+"Create", cat, c(typCreation), "created "+what),
		et(prefix+".update", structPrefix+"Update", cat, c(typChange), "updated "+what),
		et(prefix+".delete", structPrefix+"Delete", cat, c(typDeletion), "deleted "+what),
	}
}

func userAdmin(e EventType) EventType {
	e.TargetsUser = true
	return e
}

var eventTypeList = concat(
	// Interactive sessions and what happens in them.
	[]EventType{
		et("session.start", "SessionStart", c(catSession), c(typStart), "started a session").failing("was refused a session"),
		et("session.end", "SessionEnd", c(catSession), c(typEnd), "ended a session"),
		et("session.join", "SessionJoin", c(catSession), c(typStart), "joined a session"),
		et("session.leave", "SessionLeave", c(catSession), c(typEnd), "left a session"),
		et("session.data", "SessionData", c(catSession, catNetwork), c(typInfo), "transferred session data"),
		et("session.upload", "SessionUpload", c(catSession), c(typInfo), "session recording uploaded"),
		et("session.connect", "SessionConnect", c(catSession, catNetwork), c(typConnection), "connected"),
		et("session.rejected", "SessionReject", c(catSession), c(typDenied), "was refused a session").failing("was refused a session"),
		et("session.recording.access", "SessionRecordingAccess", c(catSession), c(typAccess), "viewed a session recording"),
		et("session.command", "SessionCommand", c(catProcess), c(typStart), "ran a program").
			withProcess(ProcessKeys{Executable: "path", Name: "program", Args: "argv", PID: "pid", PPID: "ppid", ExitCode: "return_code"}),
		et("session.disk", "SessionDisk", c(catFile), c(typAccess), "opened a file").withFile("path"),
		et("session.network", "SessionNetwork", c(catNetwork), c(typConnection, typStart), "opened a network connection"),
		et("print", "SessionPrint", c(catSession), c(typInfo), "printed to the terminal"),
		et("resize", "Resize", c(catSession), c(typChange), "resized the terminal"),
		et("client.disconnect", "ClientDisconnect", c(catSession, catNetwork), c(typEnd), "was disconnected"),
		et("exec", "Exec", c(catProcess), c(typStart), "ran a command").
			withProcess(ProcessKeys{CommandLine: "command", ExitCode: "exitCode"}).withDetail("", "command").failing("ran a command that failed"),
		et("subsystem", "Subsystem", c(catProcess), c(typStart), "started a subsystem"),
		et("x11-forward", "X11Forward", c(catNetwork), c(typConnection), "forwarded X11"),
		et("port", "PortForward", c(catNetwork), c(typConnection), "forwarded a port"),
		et("port.local", "PortForward", c(catNetwork), c(typConnection), "forwarded a local port"),
		et("port.remote", "PortForward", c(catNetwork), c(typConnection), "forwarded a remote port"),
		et("port.remote_conn", "PortForward", c(catNetwork), c(typConnection), "accepted a remote port connection"),
		et("auth", "AuthAttempt", c(catAuthentication), c(typInfo), "attempted to authenticate").failing("failed to authenticate"),
		et("scp", "SCP", c(catFile), c(typAccess), "copied a file with scp").withFile("path"),
		et("sftp", "SFTP", c(catFile), c(typAccess), "used sftp").withFile("path"),
		et("sftp_summary", "SFTPSummary", c(catFile), c(typInfo), "used sftp (summary)"),
		et("git.command", "GitCommand", c(catProcess), c(typStart), "ran a git command"),
		et("ssm.run", "SSMRun", c(catProcess, catHost), c(typStart), "ran an install script on a discovered instance"),
	},
	// Logins, identities and credentials.
	[]EventType{
		et("user.login", "UserLogin", c(catAuthentication), c(typStart), "logged in").withDetail("with ", "method").failing("failed to log in"),
		et("user_login.invalid_access_list", "UserLoginAccessListInvalid", c(catAuthentication, catIAM), c(typInfo), "logged in as a member of an invalid access list"),
		et("cert.create", "CertificateCreate", c(catIAM, catAuthentication), c(typCreation), "was issued a certificate"),
		et("cert.generation_mismatch", "RenewableCertificateGenerationMismatch", c(catIAM, catAuthentication), c(typError), "presented a renewable certificate with a generation mismatch"),
		et("mfa.add", "MFADeviceAdd", c(catIAM, catAuthentication), c(typUser, typChange), "added an MFA device"),
		et("mfa.delete", "MFADeviceDelete", c(catIAM, catAuthentication), c(typUser, typChange), "deleted an MFA device"),
		et("mfa_auth_challenge.create", "CreateMFAAuthChallenge", c(catAuthentication), c(typInfo), "was sent an MFA challenge"),
		et("mfa_auth_challenge.validate", "ValidateMFAAuthResponse", c(catAuthentication), c(typInfo), "answered an MFA challenge").failing("failed an MFA challenge"),
		et("recovery_code.generated", "RecoveryCodeGenerate", c(catIAM), c(typUser, typCreation), "generated recovery codes"),
		et("recovery_code.used", "RecoveryCodeUsed", c(catAuthentication), c(typInfo), "used a recovery code"),
		et("saml.idp.auth", "SAMLIdPAuthAttempt", c(catAuthentication), c(typStart), "authenticated through the SAML IdP"),
		et("bot.join", "BotJoin", c(catAuthentication), c(typStart), "bot joined the cluster"),
		et("instance.join", "InstanceJoin", c(catAuthentication, catHost), c(typStart), "instance joined the cluster"),
		et("spiffe.svid.issued", "SPIFFESVIDIssued", c(catIAM), c(typCreation), "was issued a SPIFFE SVID"),
		et("device", "DeviceEvent", c(catHost, catIAM), c(typInfo), "device trust event"),
		et("device.create", "DeviceEvent2", c(catHost, catIAM), c(typCreation), "registered a trusted device"),
		et("device.delete", "DeviceEvent2", c(catHost, catIAM), c(typDeletion), "deleted a trusted device"),
		et("device.update", "DeviceEvent2", c(catHost, catIAM), c(typChange), "updated a trusted device"),
		et("device.enroll", "DeviceEvent2", c(catHost, catIAM), c(typCreation), "enrolled a trusted device"),
		et("device.authenticate", "DeviceEvent2", c(catAuthentication), c(typInfo), "authenticated a trusted device"),
		et("device.authenticate.confirm", "DeviceEvent2", c(catAuthentication), c(typInfo), "confirmed a device web authentication"),
		et("device.token.create", "DeviceEvent2", c(catIAM), c(typCreation), "created a device enrollment token"),
		et("device.webtoken.create", "DeviceEvent2", c(catIAM), c(typCreation), "created a device web token"),
	},
	// Users, roles, access: identity and access management.
	[]EventType{
		userAdmin(et("user.create", "UserCreate", c(catIAM), c(typUser, typCreation), "created user")),
		userAdmin(et("user.update", "UserUpdate", c(catIAM), c(typUser, typChange), "updated user")),
		userAdmin(et("user.delete", "UserDelete", c(catIAM), c(typUser, typDeletion), "deleted user")),
		userAdmin(et("user.password_change", "UserPasswordChange", c(catIAM), c(typUser, typChange), "changed the password of")),
		userAdmin(et("reset_password_token.create", "UserTokenCreate", c(catIAM), c(typUser, typCreation), "created a password reset token for")),
		userAdmin(et("recovery_token.create", "UserTokenCreate", c(catIAM), c(typUser, typCreation), "created a recovery token for")),
		userAdmin(et("privilege_token.create", "UserTokenCreate", c(catIAM), c(typUser, typCreation), "created a privilege token for")),
		et("role.created", "RoleCreate", c(catIAM, catConfiguration), c(typAdmin, typCreation), "created role"),
		et("role.updated", "RoleUpdate", c(catIAM, catConfiguration), c(typAdmin, typChange), "updated role"),
		et("role.deleted", "RoleDelete", c(catIAM, catConfiguration), c(typAdmin, typDeletion), "deleted role"),
		et("access_request.create", "AccessRequestCreate", c(catIAM), c(typCreation), "requested access").failing("failed to request access"),
		et("access_request.review", "AccessRequestCreate", c(catIAM), c(typChange), "reviewed an access request"),
		et("access_request.update", "AccessRequestCreate", c(catIAM), c(typChange), "updated an access request"),
		et("access_request.delete", "AccessRequestDelete", c(catIAM), c(typDeletion), "deleted an access request"),
		et("access_request.expire", "AccessRequestExpire", c(catIAM), c(typChange), "access request expired"),
		et("access_request.search", "AccessRequestResourceSearch", c(catIAM), c(typInfo), "searched resources to request"),
		et("lock.created", "LockCreate", c(catIAM), c(typAdmin, typCreation), "created lock"),
		et("lock.deleted", "LockDelete", c(catIAM), c(typAdmin, typDeletion), "deleted lock"),
		et("access_list.create", "AccessListCreate", c(catIAM), c(typGroup, typCreation), "created access list"),
		et("access_list.update", "AccessListUpdate", c(catIAM), c(typGroup, typChange), "updated access list"),
		et("access_list.delete", "AccessListDelete", c(catIAM), c(typGroup, typDeletion), "deleted access list"),
		et("access_list.review", "AccessListReview", c(catIAM), c(typGroup, typChange), "reviewed access list"),
		et("access_list.member.create", "AccessListMemberCreate", c(catIAM), c(typGroup, typChange), "added a member to access list"),
		et("access_list.member.update", "AccessListMemberUpdate", c(catIAM), c(typGroup, typChange), "updated a member of access list"),
		et("access_list.member.delete", "AccessListMemberDelete", c(catIAM), c(typGroup, typChange), "removed a member from access list"),
		et("access_list.member.delete_all_for_access_list", "AccessListMemberDeleteAllForAccessList", c(catIAM), c(typGroup, typChange), "removed every member from access list"),
		et("access_graph.access_path_changed", "AccessPathChanged", c(catIAM), c(typChange), "access path changed"),
		et("bot.create", "BotCreate", c(catIAM), c(typUser, typCreation), "created bot"),
		et("bot.update", "BotUpdate", c(catIAM), c(typUser, typChange), "updated bot"),
		et("bot.delete", "BotDelete", c(catIAM), c(typUser, typDeletion), "deleted bot"),
		et("join_token.create", "ProvisionTokenCreate", c(catIAM, catConfiguration), c(typCreation), "created join token"),
		et("trusted_cluster_token.create", "TrustedClusterTokenCreate", c(catIAM, catConfiguration), c(typCreation), "created trusted cluster token"),
		et("okta.groups.update", "OktaResourcesUpdate", c(catIAM), c(typGroup, typChange), "Okta groups synced"),
		et("okta.applications.update", "OktaResourcesUpdate", c(catIAM, catConfiguration), c(typChange), "Okta applications synced"),
		et("okta.sync.failure", "OktaSyncFailure", c(catIAM), c(typError), "Okta synchronization failed"),
		et("okta.assignment.process", "OktaAssignmentResult", c(catIAM), c(typChange), "Okta assignment processed"),
		et("okta.assignment.cleanup", "OktaAssignmentResult", c(catIAM), c(typChange), "Okta assignment cleaned up"),
		et("okta.user.sync", "OktaUserSync", c(catIAM), c(typUser, typChange), "Okta users synced"),
		et("okta.access_list.sync", "OktaAccessListSync", c(catIAM), c(typGroup, typChange), "Okta access lists synced"),
	},
	// Authentication connectors and cluster configuration.
	[]EventType{
		et("github.created", "GithubConnectorCreate", c(catIAM, catConfiguration), c(typAdmin, typCreation), "created GitHub connector"),
		et("github.updated", "GithubConnectorUpdate", c(catIAM, catConfiguration), c(typAdmin, typChange), "updated GitHub connector"),
		et("github.deleted", "GithubConnectorDelete", c(catIAM, catConfiguration), c(typAdmin, typDeletion), "deleted GitHub connector"),
		et("oidc.created", "OIDCConnectorCreate", c(catIAM, catConfiguration), c(typAdmin, typCreation), "created OIDC connector"),
		et("oidc.updated", "OIDCConnectorUpdate", c(catIAM, catConfiguration), c(typAdmin, typChange), "updated OIDC connector"),
		et("oidc.deleted", "OIDCConnectorDelete", c(catIAM, catConfiguration), c(typAdmin, typDeletion), "deleted OIDC connector"),
		et("saml.created", "SAMLConnectorCreate", c(catIAM, catConfiguration), c(typAdmin, typCreation), "created SAML connector"),
		et("saml.updated", "SAMLConnectorUpdate", c(catIAM, catConfiguration), c(typAdmin, typChange), "updated SAML connector"),
		et("saml.deleted", "SAMLConnectorDelete", c(catIAM, catConfiguration), c(typAdmin, typDeletion), "deleted SAML connector"),
		et("login_rule.create", "LoginRuleCreate", c(catIAM, catConfiguration), c(typAdmin, typCreation), "created login rule"),
		et("login_rule.delete", "LoginRuleDelete", c(catIAM, catConfiguration), c(typAdmin, typDeletion), "deleted login rule"),
		et("saml.idp.service.provider.create", "SAMLIdPServiceProviderCreate", c(catConfiguration), c(typCreation), "created SAML service provider"),
		et("saml.idp.service.provider.update", "SAMLIdPServiceProviderUpdate", c(catConfiguration), c(typChange), "updated SAML service provider"),
		et("saml.idp.service.provider.delete", "SAMLIdPServiceProviderDelete", c(catConfiguration), c(typDeletion), "deleted SAML service provider"),
		et("saml.idp.service.provider.delete_all", "SAMLIdPServiceProviderDeleteAll", c(catConfiguration), c(typDeletion), "deleted every SAML service provider"),
		et("trusted_cluster.create", "TrustedClusterCreate", c(catConfiguration), c(typCreation), "created trusted cluster"),
		et("trusted_cluster.delete", "TrustedClusterDelete", c(catConfiguration), c(typDeletion), "deleted trusted cluster"),
		et("auth_preference.update", "AuthPreferenceUpdate", c(catConfiguration, catAuthentication), c(typChange), "updated the cluster authentication preference"),
		et("cluster_networking_config.update", "ClusterNetworkingConfigUpdate", c(catConfiguration, catNetwork), c(typChange), "updated the cluster networking configuration"),
		et("session_recording_config.update", "SessionRecordingConfigUpdate", c(catConfiguration), c(typChange), "updated the session recording configuration"),
		et("access_graph_settings.update", "AccessGraphSettingsUpdate", c(catConfiguration), c(typChange), "updated the Access Graph settings"),
		et("upgradewindowstart.update", "UpgradeWindowStartUpdate", c(catConfiguration), c(typChange), "updated the upgrade window"),
		et("external_audit_storage.enable", "ExternalAuditStorageEnable", c(catConfiguration), c(typChange), "enabled External Audit Storage"),
		et("external_audit_storage.disable", "ExternalAuditStorageDisable", c(catConfiguration), c(typChange), "disabled External Audit Storage"),
		et("spiffe.federation.create", "SPIFFEFederationCreate", c(catConfiguration, catIAM), c(typCreation), "created SPIFFE federation"),
		et("spiffe.federation.delete", "SPIFFEFederationDelete", c(catConfiguration, catIAM), c(typDeletion), "deleted SPIFFE federation"),
		et("discovery_config.delete_all", "DiscoveryConfigDeleteAll", c(catConfiguration), c(typDeletion), "deleted every discovery config"),
		et("billing.create_card", "BillingCardCreate", c(catConfiguration), c(typCreation), "added a credit card"),
		et("billing.update_card", "BillingCardCreate", c(catConfiguration), c(typChange), "updated a credit card"),
		et("billing.delete_card", "BillingCardDelete", c(catConfiguration), c(typDeletion), "deleted a credit card"),
		et("billing.update_info", "BillingInformationUpdate", c(catConfiguration), c(typChange), "updated billing information"),
		et("secreports.audit.query.run", "AuditQueryRun", c(catDatabase), c(typAccess), "ran an audit query"),
		et("secreports.report.run", "SecurityReportRun", c(catDatabase), c(typAccess), "ran a security report"),
	},
	resourceCRUD("app", "App", "application"),
	resourceCRUD("db", "Database", "database"),
	resourceCRUD("kube", "KubernetesCluster", "Kubernetes cluster"),
	resourceCRUD("integration", "Integration", "integration"),
	resourceCRUD("plugin", "Plugin", "plugin"),
	resourceCRUD("discovery_config", "DiscoveryConfig", "discovery config"),
	resourceCRUD("static_host_user", "StaticHostUser", "static host user", catConfiguration, catIAM),
	resourceCRUD("access_graph.crown_jewel", "CrownJewel", "crown jewel"),
	resourceCRUD("user_task", "UserTask", "user task"),
	resourceCRUD("auto_update_config", "AutoUpdateConfig", "auto update config"),
	resourceCRUD("auto_update_version", "AutoUpdateVersion", "auto update version"),
	resourceCRUD("workload_identity", "WorkloadIdentity", "workload identity", catConfiguration, catIAM),
	[]EventType{
		et("contact.create", "ContactCreate", c(catConfiguration), c(typCreation), "created contact"),
		et("contact.delete", "ContactDelete", c(catConfiguration), c(typDeletion), "deleted contact"),
	},
	// Application access.
	[]EventType{
		et("app.session.start", "AppSessionStart", c(catSession, catWeb), c(typStart), "started an app session").failing("was refused an application session"),
		et("app.session.end", "AppSessionEnd", c(catSession, catWeb), c(typEnd), "ended an app session"),
		et("app.session.chunk", "AppSessionChunk", c(catSession, catWeb), c(typInfo), "app session chunk"),
		et("app.session.request", "AppSessionRequest", c(catWeb), c(typAccess), "sent an app request").
			withHTTP("method", "path", "raw_query", "status_code").withDetail("", "method", "path"),
		et("app.session.dynamodb.request", "AppSessionDynamoDBRequest", c(catWeb, catDatabase), c(typAccess), "sent a DynamoDB request"),
	},
	// Kubernetes access.
	[]EventType{
		et("kube.request", "KubeRequest", c(catWeb), c(typAccess), "sent a Kubernetes request").
			withHTTP("verb", "request_path", "", "response_code").withKubernetes().withDetail("", "verb", "request_path").failing("was refused a Kubernetes request"),
	},
	// Database access.
	[]EventType{
		et("db.session.start", "DatabaseSessionStart", c(catDatabase, catSession), c(typStart), "started a database session").failing("was refused a database session"),
		et("db.session.end", "DatabaseSessionEnd", c(catDatabase, catSession), c(typEnd), "ended a database session"),
		et("db.session.query", "DatabaseSessionQuery", c(catDatabase), c(typAccess), "ran a query").withDetail("", "db_query"),
		et("db.session.query.failed", "DatabaseSessionQuery", c(catDatabase), c(typAccess, typError), "ran a query that failed").withDetail("", "db_query"),
		et("db.session.result", "DatabaseSessionCommandResult", c(catDatabase), c(typInfo), "got a command result"),
		et("db.session.malformed_packet", "DatabaseSessionMalformedPacket", c(catDatabase), c(typError), "sent a malformed packet"),
		et("db.session.permissions.update", "DatabasePermissionUpdate", c(catDatabase, catIAM), c(typChange), "updated database permissions"),
		et("db.session.user.create", "DatabaseUserCreate", c(catDatabase, catIAM), c(typUser, typCreation), "provisioned a database user"),
		et("db.session.user.deactivate", "DatabaseUserDeactivate", c(catDatabase, catIAM), c(typUser, typDeletion), "deactivated a database user"),
		et("db.session.postgres.statements.parse", "PostgresParse", c(catDatabase), c(typAccess), "prepared a statement"),
		et("db.session.postgres.statements.bind", "PostgresBind", c(catDatabase), c(typAccess), "bound a prepared statement"),
		et("db.session.postgres.statements.execute", "PostgresExecute", c(catDatabase), c(typAccess), "executed a prepared statement"),
		et("db.session.postgres.statements.close", "PostgresClose", c(catDatabase), c(typAccess), "closed a prepared statement"),
		et("db.session.postgres.function", "PostgresFunctionCall", c(catDatabase), c(typAccess), "called a function"),
		et("db.session.mysql.statements.prepare", "MySQLStatementPrepare", c(catDatabase), c(typAccess), "prepared a statement"),
		et("db.session.mysql.statements.execute", "MySQLStatementExecute", c(catDatabase), c(typAccess), "executed a prepared statement"),
		et("db.session.mysql.statements.send_long_data", "MySQLStatementSendLongData", c(catDatabase), c(typAccess), "sent long data"),
		et("db.session.mysql.statements.close", "MySQLStatementClose", c(catDatabase), c(typAccess), "closed a prepared statement"),
		et("db.session.mysql.statements.reset", "MySQLStatementReset", c(catDatabase), c(typAccess), "reset a prepared statement"),
		et("db.session.mysql.statements.fetch", "MySQLStatementFetch", c(catDatabase), c(typAccess), "fetched rows"),
		et("db.session.mysql.statements.bulk_execute", "MySQLStatementBulkExecute", c(catDatabase), c(typAccess), "bulk executed a prepared statement"),
		et("db.session.mysql.init_db", "MySQLInitDB", c(catDatabase), c(typChange), "changed the default schema"),
		et("db.session.mysql.create_db", "MySQLCreateDB", c(catDatabase), c(typCreation), "created a schema"),
		et("db.session.mysql.drop_db", "MySQLDropDB", c(catDatabase), c(typDeletion), "dropped a schema"),
		et("db.session.mysql.shut_down", "MySQLShutDown", c(catDatabase), c(typChange), "asked the server to shut down"),
		et("db.session.mysql.process_kill", "MySQLProcessKill", c(catDatabase), c(typChange), "killed a connection"),
		et("db.session.mysql.debug", "MySQLDebug", c(catDatabase), c(typAccess), "asked for debug output"),
		et("db.session.mysql.refresh", "MySQLRefresh", c(catDatabase), c(typChange), "sent a refresh command"),
		et("db.session.sqlserver.rpc_request", "SQLServerRPCRequest", c(catDatabase), c(typAccess), "sent an RPC request"),
		et("db.session.elasticsearch.request", "ElasticsearchRequest", c(catDatabase, catWeb), c(typAccess), "sent an Elasticsearch request").
			withHTTP("method", "path", "raw_query", "status_code"),
		et("db.session.opensearch.request", "OpenSearchRequest", c(catDatabase, catWeb), c(typAccess), "sent an OpenSearch request").
			withHTTP("method", "path", "raw_query", "status_code"),
		et("db.session.dynamodb.request", "DynamoDBRequest", c(catDatabase, catWeb), c(typAccess), "sent a DynamoDB request"),
		et("db.session.cassandra.batch", "CassandraBatch", c(catDatabase), c(typAccess), "ran a batch"),
		et("db.session.cassandra.prepare", "CassandraPrepare", c(catDatabase), c(typAccess), "prepared a query"),
		et("db.session.cassandra.execute", "CassandraExecute", c(catDatabase), c(typAccess), "executed a query"),
		et("db.session.cassandra.register", "CassandraRegister", c(catDatabase), c(typAccess), "registered for events"),
		et("db.session.spanner.rpc", "SpannerRPC", c(catDatabase), c(typAccess), "called a Spanner RPC"),
	},
	// Desktop access.
	[]EventType{
		et("windows.desktop.session.start", "WindowsDesktopSessionStart", c(catSession), c(typStart), "started a desktop session").failing("was refused a desktop session"),
		et("windows.desktop.session.end", "WindowsDesktopSessionEnd", c(catSession), c(typEnd), "ended a desktop session"),
		et("desktop.recording", "DesktopRecording", c(catSession), c(typInfo), "desktop session recording"),
		et("desktop.clipboard.send", "DesktopClipboardSend", c(catSession), c(typInfo), "sent clipboard data to a desktop"),
		et("desktop.clipboard.receive", "DesktopClipboardReceive", c(catSession), c(typInfo), "received clipboard data from a desktop"),
		et("desktop.directory.share", "DesktopSharedDirectoryStart", c(catFile), c(typAccess), "shared a directory with a desktop"),
		et("desktop.directory.read", "DesktopSharedDirectoryRead", c(catFile), c(typAccess), "read from a shared directory").withFile("file_path"),
		et("desktop.directory.write", "DesktopSharedDirectoryWrite", c(catFile), c(typChange), "wrote to a shared directory").withFile("file_path"),
	},
	// Events Teleport could not decode (from components newer than the
	// Auth Service).
	[]EventType{
		et("unknown", "Unknown", nil, c(typInfo), "unknown event"),
	},
)

func concat(lists ...[]EventType) []EventType {
	var out []EventType
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// eventTypes indexes eventTypeList by name.
var eventTypes = func() map[string]*EventType {
	m := make(map[string]*EventType, len(eventTypeList))
	for i := range eventTypeList {
		m[eventTypeList[i].Name] = &eventTypeList[i]
	}
	return m
}()

// LookupEventType returns the categorisation of a Teleport event type.
func LookupEventType(name string) (*EventType, bool) {
	e, ok := eventTypes[name]
	return e, ok
}

// EventTypes returns every known event type.
func EventTypes() []EventType { return eventTypeList }

// guessEventType categorises an event type teleportbeat does not know (from
// a newer Teleport, or a component's own type): from the known types that
// share its longest prefix ("x.y.create" is a creation in the category of
// the other "x.y.*" events), else from the families of newer Teleport
// releases, else from its code's family, else from a word of its name;
// its event.type from its last word. ok is false for an event without a
// type.
func guessEventType(name, code string) (EventType, bool) {
	if name == "" {
		return EventType{}, false
	}
	guess := EventType{Name: name, Action: "did " + name}
	last := name
	if i := lastDot(name); i >= 0 {
		last = name[i+1:]
	}
	switch last {
	case "create", "created", "add", "added", "enroll", "issued":
		guess.Type = c(typCreation)
	case "update", "updated", "change", "changed", "sync":
		guess.Type = c(typChange)
	case "delete", "deleted", "remove", "removed", "delete_all", "delete_all_members", "spent", "revoke":
		guess.Type = c(typDeletion)
	case "start":
		guess.Type = c(typStart)
	case "end":
		guess.Type = c(typEnd)
	case "request":
		guess.Type = c(typAccess)
	default:
		guess.Type = c(typInfo)
	}
	for prefix := name; ; {
		i := lastDot(prefix)
		if i < 0 {
			break
		}
		prefix = prefix[:i]
		if cat, ok := familyCategory[prefix]; ok {
			guess.Category = cat
			return guess, true
		}
		if cat, ok := newerFamilies[prefix]; ok {
			guess.Category = cat
			return guess, true
		}
	}
	if cat, ok := newerFamilies[name]; ok {
		guess.Category = cat
		return guess, true
	}
	// An unknown family: the family of its code ("TDB" databases, "T90"
	// roles, "TMCP" MCP sessions), where the known types of that code
	// family agree.
	if f := CodeFamily(code); f != "" {
		if cat, ok := codeCategories[f]; ok {
			guess.Category = cat
			return guess, true
		}
		if cat, ok := newerFamilies[f]; ok {
			guess.Category = cat
			return guess, true
		}
	}
	guess.Category = lastResortCategory(name)
	return guess, true
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// familyCategory maps every proper prefix of a known event type ("db",
// "db.session", "access_list.member") to the category of the first known
// type under it.
var familyCategory = func() map[string][]string {
	m := map[string][]string{}
	for _, e := range eventTypeList {
		for prefix := e.Name; ; {
			i := lastDot(prefix)
			if i < 0 {
				break
			}
			prefix = prefix[:i]
			if _, ok := m[prefix]; !ok && len(e.Category) > 0 {
				m[prefix] = e.Category
			}
		}
	}
	return m
}()
