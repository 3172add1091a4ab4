// Package config reads HMIS's settings from HMIS_* environment variables.
// Settings lists every one with its default; the README's table is
// generated from the same list (hmis config).
package config

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration of a server process.
type Config struct {
	Addr                    string
	DatabaseURL             string
	SQLitePath              string
	RedisURL                string
	RedisPrefix             string
	TokenSecret             string
	AuditKey                string
	MasterKey               string
	MasterKeyFile           string
	AuditCheckpointFile     string
	AuditSealInterval       time.Duration
	AuditStaleAfter         time.Duration
	Demo                    bool
	DemoPassword            string
	AdminPassword           string
	AccessTokenTTL          time.Duration
	RefreshTokenTTL         time.Duration
	LoginMaxFailures        int64
	LoginMaxFailuresPerAddr int64
	LoginLockout            time.Duration
	MFAIssuer               string
	MFAChallengeTTL         time.Duration
	MaxPageSize             int
	DefaultPageSize         int
	QueryDepthLimit         int
	ComplexityLimit         int
	ListWeight              int
	FieldLimit              int
	RootFieldLimit          int
	MaxBodyBytes            int64
	MaxVariablesBytes       int64
	MaxResponseBytes        int64
	RequestTimeout          time.Duration
	GraphiQL                Switch
	Introspection           string
	EventRetention          int
	InvoiceTaxBasisPoints   int
	DrugMarkupPercent       int
	WSSessionCheck          time.Duration
	BreakGlassTTL           time.Duration
	RosterMinRestHours      int
	TLSCertFile             string
	TLSKeyFile              string
	MLLPAddr                string
	TrustedProxies          []netip.Prefix
	LogLevel                string
	LogFormat               string
	TimeZone                string
	HospitalName            string
	FHIRBaseURL             string
	FHIRMRNSystem           string
	PaymentProvider         string
	PaymentCallbackSecrets  string
	PayrollOvertimePercent  int
	PayrollWeeklyHours      int
	PayrollNightAllowance   string
	PayrollOnCallAllowance  string
	PayrollTaxBands         string
	// LeaveDefaultDays is each kind of leave's yearly entitlement for
	// staff HR has set none for, by kind (ANNUAL, SICK, …).
	LeaveDefaultDays       map[string]int
	AttendanceMatchWindow  int
	AttendanceGraceMinutes int
	ReportCacheTTL         time.Duration
	PersistedQueryTTL      time.Duration
	KnownDocumentsFile     string
	PolicyFile             string
	PolicyPollInterval     time.Duration
}

// Setting is one environment variable.
type Setting struct {
	Name        string
	Default     string
	Description string
	apply       func(c *Config, v string) error
}

// Settings lists every variable HMIS reads.
var Settings = []Setting{
	{"HMIS_ADDR", ":8080", "Address the server listens on.", str(func(c *Config) *string { return &c.Addr })},
	{"HMIS_DATABASE_URL", "", "PostgreSQL URL (`postgres://user:pass@host:5432/db?sslmode=require`). Empty: the embedded SQLite file.", str(func(c *Config) *string { return &c.DatabaseURL })},
	{"HMIS_SQLITE_PATH", "hmis.db", "SQLite file used when HMIS_DATABASE_URL is empty.", str(func(c *Config) *string { return &c.SQLitePath })},
	{"HMIS_REDIS_URL", "", "Redis URL (`redis://host:6379/0`, `rediss://` for TLS). Empty: in-process broker and cache (one server process only).", str(func(c *Config) *string { return &c.RedisURL })},
	{"HMIS_REDIS_PREFIX", "hmis:", "Prefix of every Redis key, so deployments can share a Redis.", str(func(c *Config) *string { return &c.RedisPrefix })},
	{"HMIS_TOKEN_SECRET", "", "Secret that signs access tokens, at least 32 bytes. Required unless HMIS_DEMO is on; every server process of a deployment needs the same one.", str(func(c *Config) *string { return &c.TokenSecret })},
	{"HMIS_AUDIT_KEY", "", "Secret that seals the audit trail: `keyid:base64secret` (at least 32 bytes; `echo \"a1:$(openssl rand -base64 32)\"`), or several separated by commas to rotate: the first seals, all verify. Keep it out of the database's reach. Required unless HMIS_DEMO is on or the database is the embedded SQLite file, which then use a key file created beside the SQLite file (`<HMIS_SQLITE_PATH>.audit-key`, also in demo mode on PostgreSQL).", str(func(c *Config) *string { return &c.AuditKey })},
	{"HMIS_AUDIT_CHECKPOINT_FILE", "", "File the sealer appends signed checkpoints of the audit chain's head to, for `hmis audit verify` to find a cut-off tail; keep it (or a copy) where the database's operators cannot write. Empty: `<HMIS_SQLITE_PATH>.audit-checkpoints` for the embedded database, `hmis-audit-checkpoints.jsonl` in the working directory on PostgreSQL.", str(func(c *Config) *string { return &c.AuditCheckpointFile })},
	{"HMIS_MASTER_KEY", "", "Master key that wraps the keys encrypting sensitive fields at rest: 32 bytes in base64 (`openssl rand -base64 32`). Keep it out of the database's reach; every server process of a deployment needs the same one. Required (or HMIS_MASTER_KEY_FILE) unless HMIS_DEMO is on or the database is the embedded SQLite file, which then use a key file created beside the SQLite file (`<HMIS_SQLITE_PATH>.master-key`, also in demo mode on PostgreSQL).", str(func(c *Config) *string { return &c.MasterKey })},
	{"HMIS_MASTER_KEY_FILE", "", "File holding the master key (as HMIS_MASTER_KEY), read at start; used when HMIS_MASTER_KEY is empty.", str(func(c *Config) *string { return &c.MasterKeyFile })},
	{"HMIS_AUDIT_SEAL_INTERVAL", "150ms", "How often the sealer chains rows written since its last round; while writes keep coming it waits for a 50 ms pause, at most a second. One process per database seals at a time.", duration(func(c *Config) *time.Duration { return &c.AuditSealInterval })},
	{"HMIS_AUDIT_STALE_AFTER", "1m", "Age after which `hmis audit verify` reports a row still unsealed (a sealer that stopped).", duration(func(c *Config) *time.Duration { return &c.AuditStaleAfter })},
	{"HMIS_DEMO", "false", "Demo mode: seed a small demo hospital into an empty database, print the demo logins, and use a random token secret if none is set.", boolean(func(c *Config) *bool { return &c.Demo })},
	{"HMIS_DEMO_PASSWORD", "hmis-demo", "Password of every demo user.", str(func(c *Config) *string { return &c.DemoPassword })},
	{"HMIS_ADMIN_PASSWORD", "", "Password of the `admin` user that `hmis seed` creates in an empty database outside demo mode.", str(func(c *Config) *string { return &c.AdminPassword })},
	{"HMIS_ACCESS_TOKEN_TTL", "15m", "Lifetime of an access token.", duration(func(c *Config) *time.Duration { return &c.AccessTokenTTL })},
	{"HMIS_REFRESH_TOKEN_TTL", "720h", "Lifetime of a session's refresh token.", duration(func(c *Config) *time.Duration { return &c.RefreshTokenTTL })},
	{"HMIS_LOGIN_MAX_FAILURES", "5", "Failed logins after which a username is locked for HMIS_LOGIN_LOCKOUT. A wrong current password given to changePassword counts as one; a successful login does not clear earlier failures.", integer64(func(c *Config) *int64 { return &c.LoginMaxFailures })},
	{"HMIS_LOGIN_MAX_FAILURES_PER_ADDR", "50", "Failed logins (and wrong current passwords) after which a client address is refused for HMIS_LOGIN_LOCKOUT; the address is the connection's peer, or what HMIS_TRUSTED_PROXIES saw.", integer64(func(c *Config) *int64 { return &c.LoginMaxFailuresPerAddr })},
	{"HMIS_LOGIN_LOCKOUT", "15m", "How long a lockout lasts, and the window failures are counted in.", duration(func(c *Config) *time.Duration { return &c.LoginLockout })},
	{"HMIS_MFA_ISSUER", "HMIS", "The name authenticator apps show beside a user's TOTP codes (the otpauth issuer).", str(func(c *Config) *string { return &c.MFAIssuer })},
	{"HMIS_MFA_CHALLENGE_TTL", "5m", "How long the second step of a sign-in (verifyMfa, or enrolment for a user whose role requires a second factor) may take after the password.", duration(func(c *Config) *time.Duration { return &c.MFAChallengeTTL })},
	{"HMIS_MAX_PAGE_SIZE", "100", "Largest `first`/`last` a connection accepts.", integer(func(c *Config) *int { return &c.MaxPageSize })},
	{"HMIS_DEFAULT_PAGE_SIZE", "20", "Page size of a connection queried without `first` or `last`.", integer(func(c *Config) *int { return &c.DefaultPageSize })},
	{"HMIS_QUERY_DEPTH_LIMIT", "12", "Deepest selection a query may nest (introspection excepted).", integer(func(c *Config) *int { return &c.QueryDepthLimit })},
	{"HMIS_QUERY_COMPLEXITY_LIMIT", "20000", "Largest query cost: one per field, a connection's fields once per item of the page asked for, a plain list's fields HMIS_QUERY_LIST_WEIGHT times.", integer(func(c *Config) *int { return &c.ComplexityLimit })},
	{"HMIS_QUERY_LIST_WEIGHT", "5", "Items a plain list field (one without `first`/`last`, e.g. a panel's `tests`) is assumed to hold when a query's cost is weighed, so nested lists multiply.", integer(func(c *Config) *int { return &c.ListWeight })},
	{"HMIS_QUERY_FIELD_LIMIT", "500", "Most fields (aliases included, fragments expanded) one operation may select.", integer(func(c *Config) *int { return &c.FieldLimit })},
	{"HMIS_QUERY_ROOT_FIELD_LIMIT", "20", "Most root fields (aliases included) one operation may select.", integer(func(c *Config) *int { return &c.RootFieldLimit })},
	{"HMIS_MAX_BODY_BYTES", "1048576", "Largest GraphQL request body (and WebSocket message) in bytes; a larger one is refused with HTTP 413.", integer64(func(c *Config) *int64 { return &c.MaxBodyBytes })},
	{"HMIS_MAX_VARIABLES_BYTES", "262144", "Largest `variables` of one operation, in bytes of JSON.", integer64(func(c *Config) *int64 { return &c.MaxVariablesBytes })},
	{"HMIS_MAX_RESPONSE_BYTES", "8388608", "Largest GraphQL response in bytes; a larger one is replaced by an error, never sent in part.", integer64(func(c *Config) *int64 { return &c.MaxResponseBytes })},
	{"HMIS_REQUEST_TIMEOUT", "30s", "Deadline of every request and of every query or mutation over WebSocket; its database work is cancelled when it passes. Subscriptions stream on.", duration(func(c *Config) *time.Duration { return &c.RequestTimeout })},
	{"HMIS_GRAPHIQL", "", "Serve GraphiQL at `/`: true or false; empty: only in demo mode.", optionalBool(func(c *Config) *Switch { return &c.GraphiQL })},
	{"HMIS_INTROSPECTION", "", "Who may introspect the schema (`__schema`, `__type`): `anyone`, `signed-in` or `nobody`; empty: `anyone` in demo mode, `signed-in` otherwise.", oneOf([]string{"", IntrospectionAnyone, IntrospectionSignedIn, IntrospectionNobody}, func(c *Config) *string { return &c.Introspection })},
	{"HMIS_EVENT_RETENTION", "10000", "Events kept per topic for subscriptions resuming with `after`.", integer(func(c *Config) *int { return &c.EventRetention })},
	{"HMIS_WS_SESSION_CHECK", "15s", "How often an open WebSocket checks whether its session has ended (logout, password change, revoked API key), to close it with 4401. Every operation and event on a socket is checked regardless, and a socket closes at its access token's expiry.", duration(func(c *Config) *time.Duration { return &c.WSSessionCheck })},
	{"HMIS_BREAK_GLASS_TTL", "8h", "How long a break-the-glass access opens a patient's record to the clinician who asked for it.", duration(func(c *Config) *time.Duration { return &c.BreakGlassTTL })},
	{"HMIS_ROSTER_MIN_REST_HOURS", "8", "Least rest, in whole hours, a member of staff has between the end of one rostered shift and the start of the next (any department); assignShifts refuses less. 0 allows back-to-back shifts; at most 48.", integer(func(c *Config) *int { return &c.RosterMinRestHours })},
	{"HMIS_TLS_CERT_FILE", "", "PEM certificate: with HMIS_TLS_KEY_FILE, serve HTTPS.", str(func(c *Config) *string { return &c.TLSCertFile })},
	{"HMIS_TLS_KEY_FILE", "", "PEM private key of HMIS_TLS_CERT_FILE.", str(func(c *Config) *string { return &c.TLSKeyFile })},
	{"HMIS_MLLP_ADDR", "", "Address (e.g. `:2575`) of the MLLP listener for lab analyzers' HL7 v2 results. MLLP has no credentials: a message is believed to be the instrument its MSH-3/MSH-4 name, from that instrument's allowed address, so listen only on the lab's network. Empty: off; analyzers can still POST to /hl7/v2 with their API key.", str(func(c *Config) *string { return &c.MLLPAddr })},
	{"HMIS_TRUSTED_PROXIES", "", "Comma-separated addresses or CIDRs of the reverse proxies in front of HMIS (e.g. `10.0.0.0/8,192.168.1.7`). A request from one of them has its client address taken from X-Forwarded-For, read from the right: the first entry that is not a trusted proxy. Empty: the header is ignored and the connection's peer is the client.", prefixes(func(c *Config) *[]netip.Prefix { return &c.TrustedProxies })},
	{"HMIS_TIMEZONE", "UTC", "The hospital's IANA time zone (e.g. Africa/Nairobi): working hours and \"today\" are local to it; the API itself speaks UTC.", str(func(c *Config) *string { return &c.TimeZone })},
	{"HMIS_INVOICE_TAX_BASIS_POINTS", "0", "Tax on what the patient owes on each new invoice, in hundredths of a percent (1600 is 16 %); 0: none. Payers are billed their share untaxed.", integer(func(c *Config) *int { return &c.InvoiceTaxBasisPoints })},
	{"HMIS_DRUG_MARKUP_PERCENT", "25", "What a drug with no price of its own on the price list is charged above its cost, in percent.", integer(func(c *Config) *int { return &c.DrugMarkupPercent })},
	{"HMIS_FHIR_BASE_URL", "", "The FHIR API's public absolute URL (`https://hmis.example.org/fhir/R4`), for Bundle fullUrls and paging links. Empty: from each request's Host header, which is right only when clients reach HMIS directly.", str(func(c *Config) *string { return &c.FHIRBaseURL })},
	{"HMIS_FHIR_MRN_SYSTEM", "urn:hmis:mrn", "The FHIR Identifier.system of medical record numbers: a URI the hospital owns (`https://hospital.example.org/mrn`, or its OID as `urn:oid:…`). A Patient search by identifier with another system finds no one.", str(func(c *Config) *string { return &c.FHIRMRNSystem })},
	{"HMIS_HOSPITAL_NAME", "HMIS Hospital", "The name printed at the head of reports.", str(func(c *Config) *string { return &c.HospitalName })},
	{"HMIS_PAYMENT_PROVIDER", "", "The payment provider the patient app pays invoices through (`payMyInvoice`): `simulated` (moves no money; for demos and staging) or empty: `simulated` in demo mode, none otherwise (patients then pay at the cashier).", oneOf([]string{"", "simulated"}, func(c *Config) *string { return &c.PaymentProvider })},
	{"HMIS_PAYMENT_CALLBACK_SECRETS", "", "The secret each payment provider signs its callbacks (`POST /payments/callback/{provider}`) with: `provider:secret` pairs separated by commas, each secret at least 32 bytes (`simulated:$(openssl rand -hex 32)`). A provider without one can confirm no payment. Required for the configured provider outside demo mode; demo mode makes a random one for the simulated provider.", str(func(c *Config) *string { return &c.PaymentCallbackSecrets })},
	{"HMIS_PAYROLL_OVERTIME_PERCENT", "150", "What an overtime hour pays, in percent of an ordinary hour (100 to 1000).", integer(func(c *Config) *int { return &c.PayrollOvertimePercent })},
	{"HMIS_PAYROLL_WEEKLY_HOURS", "40", "A monthly salary's ordinary hours a week, which give its hourly equivalent for overtime: salary × 12 / (52 × hours).", integer(func(c *Config) *int { return &c.PayrollWeeklyHours })},
	{"HMIS_PAYROLL_NIGHT_ALLOWANCE", "0.00", "Paid per attended NIGHT roster entry, as money (`1500.00`).", str(func(c *Config) *string { return &c.PayrollNightAllowance })},
	{"HMIS_PAYROLL_ON_CALL_ALLOWANCE", "0.00", "Paid per ON_CALL roster entry, as money (`1000.00`).", str(func(c *Config) *string { return &c.PayrollOnCallAllowance })},
	{"HMIS_PAYROLL_TAX_BANDS", "", "Progressive tax on each payslip's gross pay: `lowerBound:percent` pairs, bounds increasing, each percent applying from its bound to the next (`0:10,24000.00:25,32333.00:30`); pay below the first bound is untaxed. Empty: no tax.", str(func(c *Config) *string { return &c.PayrollTaxBands })},
	{"HMIS_LEAVE_DEFAULT_DAYS", "ANNUAL=21,SICK=14,MATERNITY=90,PATERNITY=14,COMPASSIONATE=5,STUDY=5", "Days of each kind of leave a member of staff is entitled to in a calendar year unless HR sets otherwise for them (`setLeaveEntitlement`): `KIND=days` pairs separated by commas; a kind left out has none. UNPAID leave has no balance and cannot be listed.", leaveDays(func(c *Config) *map[string]int { return &c.LeaveDefaultDays })},
	{"HMIS_ATTENDANCE_MATCH_WINDOW_MINUTES", "120", "A clock-in belongs to the person's roster entry running then or starting within this many minutes; otherwise it is unrostered work.", integer(func(c *Config) *int { return &c.AttendanceMatchWindow })},
	{"HMIS_ATTENDANCE_GRACE_MINUTES", "5", "Minutes after a rostered start a clock-in is not yet late; once later, lateness counts from the rostered start.", integer(func(c *Config) *int { return &c.AttendanceGraceMinutes })},
	{"HMIS_REPORT_CACHE_TTL", "5m", "How long a report's answer is cached (Redis, or in-process) when nothing invalidates it first; any change that publishes an event invalidates every cached answer at once.", duration(func(c *Config) *time.Duration { return &c.ReportCacheTTL })},
	{"HMIS_PERSISTED_QUERY_TTL", "24h", "How long the server keeps a document registered by an automatic persisted query (a client then sends only its SHA-256 hash).", duration(func(c *Config) *time.Duration { return &c.PersistedQueryTTL })},
	{"HMIS_KNOWN_DOCUMENTS_FILE", "", "A JSON file listing the GraphQL documents the server executes (`[\"query …\", …]`, or an object of hash to document as persisted-query manifests are): anything else is refused, and a hash alone reaches only these. Empty: any document.", str(func(c *Config) *string { return &c.KnownDocumentsFile })},
	{"HMIS_POLICY_FILE", "", "The access policy to start from instead of the built-in one: a directory of `*.csv` files (read as the built-in `policies/` directory is, `roles.csv` first) or one CSV file. `hmis policy check FILE` validates it. Changes made through the API are stored as numbered versions in the database and win over it.", str(func(c *Config) *string { return &c.PolicyFile })},
	{"HMIS_POLICY_POLL_INTERVAL", "5s", "How often each instance checks the database for a newer access-policy version, in case it missed the Redis message that normally tells it within a second.", duration(func(c *Config) *time.Duration { return &c.PolicyPollInterval })},
	{"HMIS_LOG_LEVEL", "info", "debug, info, warn or error.", str(func(c *Config) *string { return &c.LogLevel })},
	{"HMIS_LOG_FORMAT", "text", "text or json.", str(func(c *Config) *string { return &c.LogFormat })},
}

// Load reads the configuration from the environment, defaults filling gaps.
func Load() (Config, error) { return load(os.LookupEnv) }

// Removed names variables HMIS no longer reads and why, so that a
// deployment still setting one fails to start instead of silently running
// without it.
var Removed = map[string]string{
	"HMIS_TRUST_PROXY": "it believed the client-controlled leftmost X-Forwarded-For entry; list the proxies in HMIS_TRUSTED_PROXIES instead",
}

func load(lookup func(string) (string, bool)) (Config, error) {
	for name, why := range Removed {
		if _, ok := lookup(name); ok {
			return Config{}, fmt.Errorf("%s is no longer supported: %s", name, why)
		}
	}
	var c Config
	for _, s := range Settings {
		v, ok := lookup(s.Name)
		if !ok {
			v = s.Default
		}
		if err := s.apply(&c, strings.TrimSpace(v)); err != nil {
			return Config{}, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return c, c.check()
}

func (c Config) check() error {
	switch {
	case c.MaxPageSize < 1:
		return fmt.Errorf("HMIS_MAX_PAGE_SIZE must be at least 1")
	case c.DefaultPageSize < 1 || c.DefaultPageSize > c.MaxPageSize:
		return fmt.Errorf("HMIS_DEFAULT_PAGE_SIZE must be between 1 and HMIS_MAX_PAGE_SIZE")
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return fmt.Errorf("HMIS_TLS_CERT_FILE and HMIS_TLS_KEY_FILE go together")
	case c.ListWeight < 1 || c.FieldLimit < 1 || c.RootFieldLimit < 1:
		return fmt.Errorf("HMIS_QUERY_LIST_WEIGHT, HMIS_QUERY_FIELD_LIMIT and HMIS_QUERY_ROOT_FIELD_LIMIT must be at least 1")
	case c.MaxVariablesBytes > c.MaxBodyBytes:
		return fmt.Errorf("HMIS_MAX_VARIABLES_BYTES must not exceed HMIS_MAX_BODY_BYTES")
	case c.RequestTimeout <= 0:
		return fmt.Errorf("HMIS_REQUEST_TIMEOUT must be positive")
	case !validZone(c.TimeZone):
		return fmt.Errorf("HMIS_TIMEZONE %q is not an IANA time zone", c.TimeZone)
	case c.InvoiceTaxBasisPoints < 0 || c.InvoiceTaxBasisPoints > 10000:
		return fmt.Errorf("HMIS_INVOICE_TAX_BASIS_POINTS must be from 0 to 10000")
	case c.DrugMarkupPercent < 0 || c.DrugMarkupPercent > 1000:
		return fmt.Errorf("HMIS_DRUG_MARKUP_PERCENT must be from 0 to 1000")
	case c.WSSessionCheck <= 0:
		return fmt.Errorf("HMIS_WS_SESSION_CHECK must be positive")
	case c.ReportCacheTTL <= 0 || c.PersistedQueryTTL <= 0:
		return fmt.Errorf("HMIS_REPORT_CACHE_TTL and HMIS_PERSISTED_QUERY_TTL must be positive")
	case c.BreakGlassTTL <= 0:
		return fmt.Errorf("HMIS_BREAK_GLASS_TTL must be positive")
	case c.RosterMinRestHours < 0 || c.RosterMinRestHours > 48:
		return fmt.Errorf("HMIS_ROSTER_MIN_REST_HOURS must be from 0 to 48")
	case c.AuditSealInterval <= 0 || c.AuditStaleAfter <= 0:
		return fmt.Errorf("HMIS_AUDIT_SEAL_INTERVAL and HMIS_AUDIT_STALE_AFTER must be positive")
	case c.AttendanceMatchWindow > 24*60 || c.AttendanceGraceMinutes > 24*60:
		return fmt.Errorf("HMIS_ATTENDANCE_MATCH_WINDOW_MINUTES and HMIS_ATTENDANCE_GRACE_MINUTES must be at most 1440")
	case c.AccessTokenTTL <= 0 || c.RefreshTokenTTL < c.AccessTokenTTL:
		return fmt.Errorf("token lifetimes must be positive, the refresh token's at least the access token's")
	}
	return nil
}

func validZone(name string) bool {
	_, err := time.LoadLocation(name)
	return err == nil
}

// Who may introspect the schema (HMIS_INTROSPECTION).
const (
	IntrospectionAnyone   = "anyone"
	IntrospectionSignedIn = "signed-in"
	IntrospectionNobody   = "nobody"
)

// Switch is an on/off setting whose default depends on another one.
type Switch int8

const (
	SwitchDefault Switch = iota
	SwitchOn
	SwitchOff
)

// Or returns whether s is on, dflt if it was not set.
func (s Switch) Or(dflt bool) bool {
	if s == SwitchDefault {
		return dflt
	}
	return s == SwitchOn
}

// ServeGraphiQL says whether GraphiQL is served. Demo mode is only known
// once flags are read, so the default is settled here and not in Load.
func (c Config) ServeGraphiQL() bool { return c.GraphiQL.Or(c.Demo) }

// IntrospectionPolicy says who may introspect the schema: anyone in demo
// mode unless set, otherwise signed-in viewers, since the frontends'
// code generators introspect with a token while a stranger gains only a
// map of the API.
func (c Config) IntrospectionPolicy() string {
	switch {
	case c.Introspection != "":
		return c.Introspection
	case c.Demo:
		return IntrospectionAnyone
	}
	return IntrospectionSignedIn
}

// AuditKeyFile is where the audit key is kept when HMIS_AUDIT_KEY is not
// set, and whether one may be created there: only for the embedded
// database or in demo mode, the development defaults, and beside the
// SQLite file (where it would be, in demo mode on PostgreSQL). Empty: no
// key file; HMIS_AUDIT_KEY must be set.
func (c Config) AuditKeyFile() (path string, create bool) {
	if c.DatabaseURL == "" || c.Demo {
		return c.SQLitePath + ".audit-key", true
	}
	return "", false
}

// MasterKeyPath is where the master key is read from when HMIS_MASTER_KEY
// is not set: HMIS_MASTER_KEY_FILE, or for the development defaults (the
// embedded database, demo mode) a file beside the SQLite file, which may
// then be created. Empty: no key file; HMIS_MASTER_KEY must be set.
func (c Config) MasterKeyPath() (path string, create bool) {
	switch {
	case c.MasterKeyFile != "":
		return c.MasterKeyFile, false
	case c.DatabaseURL == "" || c.Demo:
		return c.SQLitePath + ".master-key", true
	}
	return "", false
}

// AuditCheckpointPath is HMIS_AUDIT_CHECKPOINT_FILE or its default.
func (c Config) AuditCheckpointPath() string {
	switch {
	case c.AuditCheckpointFile != "":
		return c.AuditCheckpointFile
	case c.DatabaseURL == "":
		return c.SQLitePath + ".audit-checkpoints"
	}
	return "hmis-audit-checkpoints.jsonl"
}

// Location returns the hospital's time zone.
func (c Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Markdown renders Settings as the README's configuration table.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n| --- | --- | --- |\n")
	for _, s := range Settings {
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Name, def, s.Description)
	}
	return b.String()
}

func str(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*field(c) = b
		return nil
	}
}

func optionalBool(field func(*Config) *Switch) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v == "" {
			*field(c) = SwitchDefault
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true, false or empty", v)
		}
		*field(c) = SwitchOff
		if b {
			*field(c) = SwitchOn
		}
		return nil
	}
}

func oneOf(allowed []string, field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		for _, a := range allowed {
			if v == a {
				*field(c) = v
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed[1:], ", "))
	}
}

// LeaveKinds are the kinds of leave that have a yearly balance: every
// kind but UNPAID.
var LeaveKinds = []string{"ANNUAL", "SICK", "MATERNITY", "PATERNITY", "COMPASSIONATE", "STUDY"}

func leaveDays(field func(*Config) *map[string]int) func(*Config, string) error {
	return func(c *Config, v string) error {
		out := map[string]int{}
		for _, pair := range strings.Split(v, ",") {
			if pair = strings.TrimSpace(pair); pair == "" {
				continue
			}
			kind, days, ok := strings.Cut(pair, "=")
			kind = strings.ToUpper(strings.TrimSpace(kind))
			n, err := strconv.Atoi(strings.TrimSpace(days))
			switch {
			case !ok || err != nil || n < 0 || n > 366:
				return fmt.Errorf("%q is not KIND=days with 0 to 366 days", pair)
			case !slices.Contains(LeaveKinds, kind):
				return fmt.Errorf("%q is not a kind of leave with a balance (%s)", kind, strings.Join(LeaveKinds, ", "))
			}
			if _, dup := out[kind]; dup {
				return fmt.Errorf("%s is given twice", kind)
			}
			out[kind] = n
		}
		*field(c) = out
		return nil
	}
}

func integer(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*field(c) = n
		return nil
	}
}

func integer64(field func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive whole number", v)
		}
		*field(c) = n
		return nil
	}
}

func prefixes(field func(*Config) *[]netip.Prefix) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []netip.Prefix
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			p, err := netip.ParsePrefix(part)
			if err != nil {
				a, aerr := netip.ParseAddr(part)
				if aerr != nil || a.Zone() != "" {
					return fmt.Errorf("%q is not an IP address or CIDR", part)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			out = append(out, p.Masked())
		}
		*field(c) = out
		return nil
	}
}

func duration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 15m or 720h", v)
		}
		*field(c) = d
		return nil
	}
}
