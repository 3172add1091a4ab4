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
