// Package apitest drives the real HTTP handler with real GraphQL documents,
// as a frontend would, on the embedded defaults or — when
// HMIS_TEST_DATABASE_URL / HMIS_TEST_REDIS_URL are set — on PostgreSQL and
// Redis, each test with its own database and key prefix.
package apitest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/app"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/testenv"
)

const demoPassword = "hmis-demo"

// server is one HMIS process under test.
type server struct {
	t      testing.TB
	app    *app.App
	http   *httptest.Server
	mu     sync.Mutex
	tokens map[string]string
}

// backing is the database and Redis a group of servers share.
type backing struct {
	databaseURL, sqlitePath, redisURL, redisPrefix string
}

func newBacking(t testing.TB) backing {
	url, prefix := testenv.RedisConfig(t)
	return backing{
		databaseURL: testenv.DatabaseURL(t),
		sqlitePath:  testenv.SQLitePath(t),
		redisURL:    url,
		redisPrefix: prefix,
	}
}

// newServer starts a server on a fresh database seeded with the demo hospital.
func newServer(t testing.TB, tweak ...func(*config.Config)) *server {
	t.Helper()
	return newServerOn(t, newBacking(t), tweak...)
}

func testConfig(b backing) config.Config {
	cfg, err := config.Load()
	if err != nil {
		panic(err)
	}
	cfg.DatabaseURL = b.databaseURL
	cfg.SQLitePath = b.sqlitePath
	cfg.RedisURL = b.redisURL
	cfg.RedisPrefix = b.redisPrefix
	cfg.TokenSecret = "test-secret-test-secret-test-secret-0123"
	// Set, not left to demo mode: tests also run servers outside it, which
	// on PostgreSQL need a key. The checkpoints go to the test's directory.
	cfg.AuditKey = "apitest:" + base64.StdEncoding.EncodeToString([]byte("apitest-audit-key-apitest-audit-key"))
	cfg.AuditCheckpointFile = b.sqlitePath + ".audit-checkpoints"
	cfg.DemoPassword = demoPassword
	cfg.Demo = true
	// Set explicitly, not left to demo mode: tests introspect anonymously.
	cfg.GraphiQL = config.SwitchOn
	cfg.Introspection = config.IntrospectionAnyone
	return cfg
}

// newServerOn starts a server on b; servers on the same backing behave as
// one service.
func newServerOn(t testing.TB, b backing, tweak ...func(*config.Config)) *server {
	t.Helper()
	return newServerLogging(t, b, nil, tweak...)
}

// newServerLogging starts a server on b whose log also goes to logTo, at
// every level, so a test can read what the server logged.
func newServerLogging(t testing.TB, b backing, logTo io.Writer, tweak ...func(*config.Config)) *server {
	t.Helper()
	cfg := testConfig(b)
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
	a, err := app.Open(ctx, cfg, log)
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
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		<-relayDone
		a.Close()
	})
	return &server{t: t, app: a, http: hs, tokens: map[string]string{}}
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) code() string  { c, _ := e.Extensions["code"].(string); return c }
func (e gqlError) field() string { f, _ := e.Extensions["field"].(string); return f }

type response struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// codes lists the error codes of the response, in order.
func (r response) codes() []string {
	var out []string
	for _, e := range r.Errors {
		out = append(out, e.code())
	}
	return out
}

func (r response) hasCode(code string) bool {
	for _, e := range r.Errors {
		if e.code() == code {
			return true
		}
	}
	return false
}

// decode unmarshals data into v, failing the test if there were errors.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", r.Data, err)
	}
}

// do posts a GraphQL document with a bearer credential ("" for none).
func (s *server) do(credential, query string, vars map[string]any) response {
	s.t.Helper()
	r, err := s.send(nil, credential, query, vars)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// send posts a GraphQL document with extra request headers and a bearer
// credential ("" for none). It reports a failed request instead of failing
// the test, so goroutines other than the test's may call it.
func (s *server) send(header http.Header, credential, query string, vars map[string]any) (response, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.http.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := s.http.Client().Do(req)
	if err != nil {
		return response{}, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	var r response
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		return response{}, fmt.Errorf("response is not JSON (%d): %.200s", resp.StatusCode, raw)
	}
	r.Status = resp.StatusCode
	return r, nil
}

// as runs a document as the demo user with that name, signing in once.
func (s *server) as(username, query string, vars map[string]any) response {
	s.t.Helper()
	return s.do(s.token(username), query, vars)
}

func (s *server) token(username string) string {
	s.t.Helper()
	s.mu.Lock()
	tok, ok := s.tokens[username]
	s.mu.Unlock()
	if ok {
		return tok
	}
	tok = s.login(username, demoPassword).AccessToken
	s.mu.Lock()
	s.tokens[username] = tok
	s.mu.Unlock()
	return tok
}

type authPayload struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	ExpiresAt    string `json:"expiresAt"`
	User         struct {
		ID       string   `json:"id"`
		Username string   `json:"username"`
		Roles    []string `json:"roles"`
	} `json:"user"`
}

const loginMutation = `mutation($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) { accessToken refreshToken expiresAt user { id username roles } }
}`

func (s *server) login(username, password string) authPayload {
	s.t.Helper()
	var out struct{ Login authPayload }
	s.do("", loginMutation, map[string]any{"u": username, "p": password}).decode(s.t, &out)
	return out.Login
}

// ids returns the IDs the demo seeded, by kind, through the admin's eyes.
type demoIDs struct {
	patients   []string // in MRN order; patients[0] is the patient user's own record
	doctor     string   // the doctor user's staff ID
	nurse      string
	cardiology string // department
	general    string
	labtech    string
}

func (s *server) demo() demoIDs {
	s.t.Helper()
	var out struct {
		Patients struct {
			Edges []struct{ Node struct{ ID string } }
		}
		Staffs struct {
			Edges []struct {
				Node struct {
					ID   string
					Kind string
					User *struct{ Username string }
				}
			}
		}
		Departments struct {
			Edges []struct{ Node struct{ ID, Code string } }
		}
	}
	s.as("admin", `{
	  patients(first: 100, orderBy: {field: MRN}) { edges { node { id } } }
	  staffs(first: 100) { edges { node { id kind user { username } } } }
	  departments(first: 100) { edges { node { id code } } }
	}`, nil).decode(s.t, &out)
	var d demoIDs
	for _, e := range out.Patients.Edges {
		d.patients = append(d.patients, e.Node.ID)
	}
	for _, e := range out.Staffs.Edges {
		if e.Node.User == nil {
			continue
		}
		switch e.Node.User.Username {
		case "doctor":
			d.doctor = e.Node.ID
		case "nurse":
			d.nurse = e.Node.ID
		case "labtech":
			d.labtech = e.Node.ID
		}
	}
	for _, e := range out.Departments.Edges {
		switch e.Node.Code {
		case "CAR":
			d.cardiology = e.Node.ID
		case "GEN":
			d.general = e.Node.ID
		}
	}
	if len(d.patients) != 5 || d.doctor == "" || d.nurse == "" || d.cardiology == "" {
		s.t.Fatalf("demo data incomplete: %+v", d)
	}
	return d
}

// slot returns a start and end an hour long, days from now, at a fixed hour.
func slot(days, hour int) (string, string) {
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, days).Add(time.Duration(hour) * time.Hour)
	return start.Format(time.RFC3339), start.Add(time.Hour).Format(time.RFC3339)
}

const bookMutation = `mutation($in: BookAppointmentInput!) {
  bookAppointment(input: $in) { id status startAt endAt patient { id } provider { id } department { id } }
}`

func bookingInput(patientID, providerID, start, end string) map[string]any {
	return map[string]any{"in": map[string]any{
		"patientId": patientID, "providerId": providerID, "startAt": start, "endAt": end, "reason": "check-up",
	}}
}

func must(t testing.TB, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

func describe(r response) string {
	return fmt.Sprintf("status %d, errors %v, data %s", r.Status, r.Errors, strings.TrimSpace(string(r.Data)))
}

type configT = config.Config

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
