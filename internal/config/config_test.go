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
