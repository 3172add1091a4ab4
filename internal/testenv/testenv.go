// Package testenv gives each test its own database and its own Redis key
// space: a fresh SQLite file by default, or a fresh PostgreSQL database and
// Redis prefix when HMIS_TEST_DATABASE_URL / HMIS_TEST_REDIS_URL are set, so
// parallel tests and concurrent CI runs never see each other's data.
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
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

// DatabaseURL returns a URL to a new database for t, dropped when t ends,
// or "" when the test should use an SQLite file (see SQLitePath). The
// database has the current schema and no rows; migrating it again finds
// nothing to do.
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
	template, err := migratedTemplate()
	if err != nil {
		t.Fatalf("migrated template database: %v", err)
	}
	// Named after the template, so that the sweep of a process that was
	// killed drops the databases its tests left as well.
	name := testDatabasePrefix(template) + strings.ToLower(globalid.New("x")[2:])
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("open test database server: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name + " TEMPLATE " + template); err != nil {
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

// templatePrefix names the template databases of test processes.
const templatePrefix = "hmis_tpl_"

// migratedTemplate returns the name of a database, migrated once per test
// process, that DatabaseURL copies. Copying it takes a fraction of a
// second; migrating an empty database takes one or two, and tests take
// turns at it (see Migrating), so with one migration per test a package of
// parallel tests waited mostly on the others' migrations. An empty SQLite
// file migrates in tens of milliseconds and has no template.
//
// The process holds a session advisory lock named after its template for
// as long as it runs. A template whose lock is free belongs to a process
// that has ended, and the next process to start drops it, so templates do
// not pile up on a developer's server.
var migratedTemplate = sync.OnceValues(func() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := os.Getenv("HMIS_TEST_DATABASE_URL")
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	admin, err := sql.Open("postgres", base)
	if err != nil {
		return "", err
	}
	// Never closed: the session is the template's proof of life.
	owner, err := admin.Conn(ctx)
	if err != nil {
		return "", err
	}
	// Housekeeping: what a failed sweep leaves, the next one drops.
	_ = dropAbandonedTemplates(ctx, owner)
	name := templatePrefix + strings.ToLower(globalid.New("x")[2:])
	if _, err := owner.ExecContext(ctx, "SELECT pg_advisory_lock($1)", templateLock(name)); err != nil {
		return "", err
	}
	if _, err := owner.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	u.Path = "/" + name
	st, err := store.Open(u.String(), "")
	if err != nil {
		return "", err
	}
	Migrating(func() { err = st.Migrate(ctx) })
	// A database cannot be copied while anyone is connected to it.
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return name, err
})

// testDatabasePrefix begins the name of every test database copied from
// template: hmis_t_<template's ID>_.
func testDatabasePrefix(template string) string {
	return "hmis_t_" + strings.TrimPrefix(template, templatePrefix) + "_"
}

// dropAbandonedTemplates drops the templates of test processes that have
// ended, and the test databases copied from them that a killed process
// left behind.
func dropAbandonedTemplates(ctx context.Context, conn *sql.Conn) error {
	templates, err := databasesNamed(ctx, conn, templatePrefix)
	if err != nil {
		return err
	}
	for _, template := range templates {
		var abandoned bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", templateLock(template)).Scan(&abandoned); err != nil {
			return err
		}
		if !abandoned {
			continue
		}
		left, err := databasesNamed(ctx, conn, testDatabasePrefix(template))
		if err != nil {
			return err
		}
		for _, name := range append(left, template) {
			if _, err := conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				return err
			}
		}
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", templateLock(template)); err != nil {
			return err
		}
	}
	return nil
}

// databasesNamed lists the databases whose names begin with prefix.
func databasesNamed(ctx context.Context, conn *sql.Conn, prefix string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, prefix)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, rows.Err()
}

// templateLock is the advisory lock key of a template's owner.
func templateLock(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
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
