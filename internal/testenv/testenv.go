// Package testenv gives each test its own database and its own Redis key
// space: a fresh SQLite file by default, or a fresh PostgreSQL database and
// Redis prefix when HMIS_TEST_DATABASE_URL / HMIS_TEST_REDIS_URL are set, so
// parallel tests and concurrent CI runs never see each other's data.
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hmis-dev/hmis/internal/crypt"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/store"
)

// DatabaseURL returns a URL to a new, empty database for t, dropped when t
// ends, or "" when the test should use an SQLite file (see SQLitePath).
func DatabaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("HMIS_TEST_DATABASE_URL")
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("HMIS_TEST_DATABASE_URL: %v", err)
	}
	name := "hmis_t_" + strings.ToLower(globalid.New("x")[2:])
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("open test database server: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("postgres", base)
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// SQLitePath returns a path for a fresh SQLite file in t's temporary directory.
func SQLitePath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "hmis.db")
}

// migrations serialises schema migrations within a test process. Each test
// has a database of its own, but ent's migration writes to the generated,
// package-level table descriptions (column maps, index lists) as it runs,
// so two stores migrating at once in one process race on them.
var migrations sync.Mutex

// Migrating runs fn, which migrates a store (directly, or by opening an
// app), while no other test in the process migrates: parallel tests call
// it around whatever creates their schema.
func Migrating(fn func()) {
	migrations.Lock()
	defer migrations.Unlock()
	fn()
}

// Store opens a migrated, empty store for t and closes it when t ends.
func Store(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(DatabaseURL(t), SQLitePath(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	Migrating(func() { err = st.Migrate(ctx) })
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if _, err := st.UnlockKeys(ctx, MasterKey()); err != nil {
		t.Fatalf("unlock keys: %v", err)
	}
	return st
}

// MasterKey is the master key of the test process: each test database
// makes data keys of its own under it.
var MasterKey = sync.OnceValue(func() *crypt.MasterKey {
	text, err := crypt.NewMasterKeyText()
	if err != nil {
		panic(err)
	}
	k, err := crypt.ParseMasterKey(text)
	if err != nil {
		panic(err)
	}
	return k
})

// Redis returns a client to the test Redis and a key prefix of t's own (its
// keys are deleted when t ends), or nil when HMIS_TEST_REDIS_URL is unset and
// the test should use the in-process implementations.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	raw := os.Getenv("HMIS_TEST_REDIS_URL")
	if raw == "" {
		return nil, ""
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("HMIS_TEST_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("test redis: %v", err)
	}
	prefix := fmt.Sprintf("hmis-test:%s:", globalid.New("t"))
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		client.Close()
	})
	return client, prefix
}

// UsingPostgres reports whether tests run against PostgreSQL.
func UsingPostgres() bool { return os.Getenv("HMIS_TEST_DATABASE_URL") != "" }

// RedisConfig returns the test Redis URL and a key prefix of t's own (its
// keys deleted when t ends), or two empty strings when HMIS_TEST_REDIS_URL
// is unset and the test should use the in-process broker and cache.
func RedisConfig(t testing.TB) (url, prefix string) {
	t.Helper()
	client, prefix := Redis(t)
	if client == nil {
		return "", ""
	}
	return os.Getenv("HMIS_TEST_REDIS_URL"), prefix
}
