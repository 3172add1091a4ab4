package harness

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/internal/app"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// DemoPassword is every demo user's password in a test server.
const DemoPassword = "hmis-demo"

// Server is one HMIS process under test. App is there for what the API
// cannot do (seeding rows it has no mutation for, breaking the database on
// purpose, reading counters); everything a frontend does goes through HTTP.
type Server struct {
	T    testing.TB
	App  *app.App
	HTTP *httptest.Server

	mu      sync.Mutex
	tokens  map[string]string
	secrets map[string]string // TOTP secrets EnrolToSignIn set up, by lower-case username
	stop    func()
	// ctx ends when the server stops; background holds what runs beside
	// the handler until then.
	ctx        context.Context
	background sync.WaitGroup
}

// Backing is the database and Redis a group of servers share: two servers
// on one backing behave as two instances of one service.
type Backing struct {
	DatabaseURL, SQLitePath, RedisURL, RedisPrefix string
}

// NewBacking gives t a database and Redis prefix of its own, dropped when
// t ends, so tests can run in parallel.
func NewBacking(t testing.TB) Backing {
	url, prefix := testenv.RedisConfig(t)
	return Backing{
		DatabaseURL: testenv.DatabaseURL(t),
		SQLitePath:  testenv.SQLitePath(t),
		RedisURL:    url,
		RedisPrefix: prefix,
	}
}

// NewServer starts a server on a fresh database seeded with the demo
// hospital; tweak adjusts its configuration first.
func NewServer(t testing.TB, tweak ...func(*config.Config)) *Server {
	t.Helper()
	return NewServerOn(t, NewBacking(t), tweak...)
}

// ConfigFor is the configuration every test server starts from.
func ConfigFor(b Backing) config.Config {
	cfg, err := config.Load()
	if err != nil {
		panic(err)
	}
	cfg.DatabaseURL = b.DatabaseURL
	cfg.SQLitePath = b.SQLitePath
	cfg.RedisURL = b.RedisURL
	cfg.RedisPrefix = b.RedisPrefix
	cfg.TokenSecret = "test-secret-test-secret-test-secret-0123"
	// Set, not left to demo mode: tests also run servers outside it, which
	// on PostgreSQL need a key. The checkpoints go to the test's directory.
	cfg.AuditKey = "apitest:" + base64.StdEncoding.EncodeToString([]byte("apitest-audit-key-apitest-audit-key"))
	cfg.AuditCheckpointFile = b.SQLitePath + ".audit-checkpoints"
	// Likewise the master key, the same for every server on a backing.
	cfg.MasterKey = base64.StdEncoding.EncodeToString([]byte("apitest-master-key-32-bytes-long"))
	cfg.DemoPassword = DemoPassword
	cfg.Demo = true
	// Set explicitly, not left to demo mode: tests introspect anonymously.
	cfg.GraphiQL = config.SwitchOn
	cfg.Introspection = config.IntrospectionAnyone
	return cfg
}

// NewServerOn starts a server on b; servers on the same backing behave as
// one service.
func NewServerOn(t testing.TB, b Backing, tweak ...func(*config.Config)) *Server {
	t.Helper()
	return NewServerLogging(t, b, nil, tweak...)
}

// NewServerLogging starts a server on b whose log also goes to logTo, at
// every level, so a test can read what the server logged.
func NewServerLogging(t testing.TB, b Backing, logTo io.Writer, tweak ...func(*config.Config)) *Server {
	t.Helper()
	cfg := ConfigFor(b)
	for _, f := range tweak {
		f(&cfg)
	}
	// Server logs go nowhere unless asked for: they would bury test output.
	var out []io.Writer
	if logTo != nil {
		out = append(out, logTo)
	}
	if os.Getenv("HMIS_TEST_LOG") != "" {
		out = append(out, os.Stderr)
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(out...), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	var a *app.App
	var err error
	// Opening migrates the schema, which tests in parallel must take turns at.
	testenv.Migrating(func() { a, err = app.Open(ctx, cfg, log) })
	if err != nil {
		cancel()
		t.Fatalf("open app: %v", err)
	}
	if err := a.SeedDemo(ctx, io.Discard); err != nil {
		t.Fatalf("seed: %v", err)
	}
	relayDone := make(chan struct{})
	go func() { a.RunRelay(ctx); close(relayDone) }()
	hs := httptest.NewServer(a.Handler)
	srv := &Server{T: t, App: a, HTTP: hs, tokens: map[string]string{}, secrets: map[string]string{}, ctx: ctx}
	srv.stop = sync.OnceFunc(func() {
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		<-relayDone
		srv.background.Wait()
		a.Close()
	})
	t.Cleanup(srv.stop)
	return srv
}

// CaptureCharges runs billing's capture of charges from the broker, as
// Serve does, until the server stops. Only the tests of billing want it:
// the others would pay for four more broker readers per server.
func (s *Server) CaptureCharges() {
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		s.App.Charges.Consume(auth.SystemContext(s.ctx), s.App.Broker, s.App.Log)
	}()
}

// Stop shuts the server down before the test ends, as a restart does; a
// new server on the same Backing is the process that comes back. (An
// upgraded WebSocket is not the test server's to close: cut it first, as
// a proxy in front of the server can.)
func (s *Server) Stop() {
	if s.stop != nil {
		s.stop()
	}
}

// SyncBuffer collects a server's log lines, written from its goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// RepoFile is the path of a file at the repository's root (README.md),
// found from the test's working directory, so tests that check documents
// against the server do not depend on how deep their package sits.
func RepoFile(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, name)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the working directory, looking for %s", name)
		}
		dir = parent
	}
}

// Remote is a client of a server this process does not run (a child
// process, behind a proxy the test controls); App is nil.
func Remote(t testing.TB, hs *httptest.Server) *Server {
	return &Server{T: t, HTTP: hs, tokens: map[string]string{}, secrets: map[string]string{}}
}
