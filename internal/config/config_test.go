package config

import (
	"strings"
	"testing"
	"time"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := load(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.SQLitePath != "hmis.db" || c.DemoPassword != "hmis-demo" || c.AccessTokenTTL != 15*time.Minute || c.MaxPageSize != 100 || c.Demo {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	for env, want := range map[string]string{
		"HMIS_DEMO":               "HMIS_DEMO",
		"HMIS_ACCESS_TOKEN_TTL":   "HMIS_ACCESS_TOKEN_TTL",
		"HMIS_MAX_PAGE_SIZE":      "HMIS_MAX_PAGE_SIZE",
		"HMIS_LOGIN_MAX_FAILURES": "HMIS_LOGIN_MAX_FAILURES",
	} {
		_, err := load(lookup(map[string]string{env: "nonsense"}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=nonsense: %v", env, err)
		}
	}
	if _, err := load(lookup(map[string]string{"HMIS_TLS_CERT_FILE": "c.pem"})); err == nil {
		t.Error("a certificate without a key must be refused")
	}
	if _, err := load(lookup(map[string]string{"HMIS_DEFAULT_PAGE_SIZE": "500"})); err == nil {
		t.Error("a default page above the maximum must be refused")
	}
}

func TestProductionSwitchesDefaultClosed(t *testing.T) {
	c, err := load(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ServeGraphiQL() || c.IntrospectionPolicy() != IntrospectionSignedIn {
		t.Fatalf("production defaults: GraphiQL %v, introspection %s", c.ServeGraphiQL(), c.IntrospectionPolicy())
	}
	c.Demo = true // as --demo sets it, after Load
	if !c.ServeGraphiQL() || c.IntrospectionPolicy() != IntrospectionAnyone {
		t.Fatalf("demo defaults: GraphiQL %v, introspection %s", c.ServeGraphiQL(), c.IntrospectionPolicy())
	}
	c, err = load(lookup(map[string]string{"HMIS_DEMO": "true", "HMIS_GRAPHIQL": "false", "HMIS_INTROSPECTION": "nobody"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ServeGraphiQL() || c.IntrospectionPolicy() != IntrospectionNobody {
		t.Fatalf("explicit switches in demo mode: GraphiQL %v, introspection %s", c.ServeGraphiQL(), c.IntrospectionPolicy())
	}
	for env, v := range map[string]string{"HMIS_GRAPHIQL": "maybe", "HMIS_INTROSPECTION": "everyone", "HMIS_REQUEST_TIMEOUT": "0s", "HMIS_MAX_BODY_BYTES": "1000"} {
		if _, err := load(lookup(map[string]string{env: v})); err == nil {
			t.Errorf("%s=%s must be refused", env, v)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := load(lookup(map[string]string{"HMIS_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,"}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if strings.Join(got, " ") != "10.0.0.0/8 192.168.1.7/32 2001:db8::/32" {
		t.Fatalf("trusted proxies: %v", got)
	}
	if c, _ := load(lookup(nil)); len(c.TrustedProxies) != 0 {
		t.Fatalf("no proxy is trusted by default: %v", c.TrustedProxies)
	}
	_, err = load(lookup(map[string]string{"HMIS_TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"}))
	if err == nil || !strings.Contains(err.Error(), "HMIS_TRUSTED_PROXIES") || !strings.Contains(err.Error(), "proxy.local") {
		t.Fatalf("a host name must be refused: %v", err)
	}
}

// TestTrustProxyIsRefused: a deployment still setting the old switch must
// not start and silently take every client for its proxy.
func TestTrustProxyIsRefused(t *testing.T) {
	_, err := load(lookup(map[string]string{"HMIS_TRUST_PROXY": "true"}))
	if err == nil || !strings.Contains(err.Error(), "HMIS_TRUSTED_PROXIES") {
		t.Fatalf("HMIS_TRUST_PROXY: %v", err)
	}
}

func TestAuditFileDefaults(t *testing.T) {
	c, err := load(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditSealInterval != 150*time.Millisecond || c.AuditStaleAfter != time.Minute {
		t.Fatalf("audit timing defaults: %v, %v", c.AuditSealInterval, c.AuditStaleAfter)
	}
	// Embedded: key and checkpoints beside the SQLite file.
	if p, create := c.AuditKeyFile(); p != "hmis.db.audit-key" || !create {
		t.Fatalf("embedded key file: %q %v", p, create)
	}
	if p := c.AuditCheckpointPath(); p != "hmis.db.audit-checkpoints" {
		t.Fatalf("embedded checkpoint file: %q", p)
	}
	// PostgreSQL outside demo mode: no key file, the key must be given.
	c.DatabaseURL = "postgres://db/hmis"
	if p, create := c.AuditKeyFile(); p != "" || create {
		t.Fatalf("PostgreSQL key file: %q %v, want none", p, create)
	}
	if p := c.AuditCheckpointPath(); p != "hmis-audit-checkpoints.jsonl" {
		t.Fatalf("PostgreSQL checkpoint file: %q", p)
	}
	c.Demo = true
	if _, create := c.AuditKeyFile(); !create {
		t.Fatal("demo mode on PostgreSQL must make a key file")
	}
	c.AuditCheckpointFile = "/srv/audit/cp.jsonl"
	if p := c.AuditCheckpointPath(); p != c.AuditCheckpointFile {
		t.Fatalf("explicit checkpoint file: %q", p)
	}
	for env, v := range map[string]string{"HMIS_AUDIT_SEAL_INTERVAL": "0s", "HMIS_AUDIT_STALE_AFTER": "soon"} {
		if _, err := load(lookup(map[string]string{env: v})); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: %v, want a refusal naming the variable", env, v, err)
		}
	}
}
