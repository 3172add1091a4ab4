package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/demo"
)

// GQLError is one entry of a GraphQL response's errors.
type GQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code is the error's extensions.code: what tests assert on, since
// messages are for people and may be reworded.
func (e GQLError) Code() string { c, _ := e.Extensions["code"].(string); return c }

// Field is the input field a BAD_USER_INPUT error names.
func (e GQLError) Field() string { f, _ := e.Extensions["field"].(string); return f }

// Response is a GraphQL answer as a client sees it, with the HTTP status.
type Response struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []GQLError      `json:"errors"`
}

// Codes lists the error codes of the response, in order.
func (r Response) Codes() []string {
	var out []string
	for _, e := range r.Errors {
		out = append(out, e.Code())
	}
	return out
}

// HasCode reports whether any error carries code.
func (r Response) HasCode(code string) bool {
	for _, e := range r.Errors {
		if e.Code() == code {
			return true
		}
	}
	return false
}

// Decode unmarshals data into v, failing the test if there were errors.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", r.Data, err)
	}
}

// Do posts a GraphQL document with a bearer credential ("" for none).
func (s *Server) Do(credential, query string, vars map[string]any) Response {
	s.T.Helper()
	r, err := s.Send(nil, credential, query, vars)
	if err != nil {
		s.T.Fatal(err)
	}
	return r
}

// Send posts a GraphQL document with extra request headers and a bearer
// credential ("" for none). It reports a failed request instead of failing
// the test, so goroutines other than the test's may call it.
func (s *Server) Send(header http.Header, credential, query string, vars map[string]any) (Response, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.HTTP.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := s.HTTP.Client().Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	var r Response
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		return Response{}, fmt.Errorf("response is not JSON (%d): %.200s", resp.StatusCode, raw)
	}
	r.Status = resp.StatusCode
	return r, nil
}

// As runs a document as the demo user with that name, signing in once per
// server: most tests act as several users and sign-ins are slow by design.
func (s *Server) As(username, query string, vars map[string]any) Response {
	s.T.Helper()
	return s.Do(s.Token(username), query, vars)
}

// Token is the access token of the demo user username, signed in once.
func (s *Server) Token(username string) string {
	s.T.Helper()
	s.mu.Lock()
	tok, ok := s.tokens[username]
	s.mu.Unlock()
	if ok {
		return tok
	}
	tok = s.Login(username, DemoPassword).AccessToken
	s.mu.Lock()
	s.tokens[username] = tok
	s.mu.Unlock()
	return tok
}

// AuthPayload is what login, verifyMfa and refreshToken return.
type AuthPayload struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	ExpiresAt    string `json:"expiresAt"`
	User         struct {
		ID       string   `json:"id"`
		Username string   `json:"username"`
		Roles    []string `json:"roles"`
	} `json:"user"`
	MfaRequired bool `json:"mfaRequired"`
	Challenge   *struct {
		Token             string   `json:"token"`
		Methods           []string `json:"methods"`
		ExpiresAt         string   `json:"expiresAt"`
		EnrolmentRequired bool     `json:"enrolmentRequired"`
	} `json:"challenge"`
}

// AuthPayloadFields selects every field of an AuthPayload.
const AuthPayloadFields = `accessToken refreshToken expiresAt user { id username roles } mfaRequired challenge { token methods expiresAt enrolmentRequired }`

// LoginMutation signs in with variables u and p.
const LoginMutation = `mutation($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) { ` + AuthPayloadFields + ` }
}`

// VerifyMfaMutation completes a login's challenge with variable in (a VerifyMfaInput).
const VerifyMfaMutation = `mutation($in: VerifyMfaInput!) { verifyMfa(input: $in) { ` + AuthPayloadFields + ` } }`

// Login signs in afresh, a new session each time (unlike Token). For a
// demo user with a second factor (doctor, admin, auditor) it completes the
// challenge as the user's authenticator app would (CompleteMFA), so tests
// that are not about sign-in need not know about it.
func (s *Server) Login(username, password string) AuthPayload {
	s.T.Helper()
	var out struct{ Login AuthPayload }
	s.Do("", LoginMutation, map[string]any{"u": username, "p": password}).Decode(s.T, &out)
	switch ch := out.Login.Challenge; {
	case ch == nil:
	case ch.EnrolmentRequired:
		return s.EnrolToSignIn(username, ch.Token)
	default:
		return s.CompleteMFA(username, ch.Token)
	}
	return out.Login
}

// EnrolToSignIn answers an enrolment challenge (a user a test made, whose
// role requires a second factor) by enrolling TOTP, and remembers the
// secret for the user's later sign-ins.
func (s *Server) EnrolToSignIn(username, challengeToken string) AuthPayload {
	s.T.Helper()
	var e struct {
		EnrollTotp struct{ Secret string } `json:"enrollTotp"`
	}
	s.Do("", `mutation($t: String!) { enrollTotp(input: {challengeToken: $t}) { secret } }`,
		map[string]any{"t": challengeToken}).Decode(s.T, &e)
	code, err := auth.TOTPCode(e.EnrollTotp.Secret, time.Now())
	Must(s.T, err == nil, "TOTP code: %v", err)
	var c struct {
		ConfirmTotp struct{ Auth AuthPayload } `json:"confirmTotp"`
	}
	s.Do("", `mutation($t: String!, $c: String!) { confirmTotp(input: {challengeToken: $t, code: $c}) { auth { `+AuthPayloadFields+` } } }`,
		map[string]any{"t": challengeToken, "c": code}).Decode(s.T, &c)
	s.mu.Lock()
	s.secrets[strings.ToLower(username)] = e.EnrollTotp.Secret
	s.mu.Unlock()
	return c.ConfirmTotp.Auth
}

// CompleteMFA answers a login challenge with the current code of the
// user's secret: the demo's, or the one EnrolToSignIn set up. A code is accepted once per user and 30-second
// step, and tests sign in as one user more often than that; so, on a
// server this process runs, the user's last used step is forgotten first.
// Replay protection itself is tested without this helper (apitest/mfa).
func (s *Server) CompleteMFA(username, challengeToken string) AuthPayload {
	s.T.Helper()
	if s.App != nil {
		err := s.App.Store.Client.User.Update().Where(user.UsernameEqualFold(username)).SetTotpLastStep(0).
			Exec(auth.SystemContext(context.Background()))
		Must(s.T, err == nil, "forget %s's last TOTP step: %v", username, err)
	}
	s.mu.Lock()
	secret, ok := s.secrets[strings.ToLower(username)]
	s.mu.Unlock()
	if !ok {
		secret = demo.TOTPSecret
	}
	code, err := auth.TOTPCode(secret, time.Now())
	Must(s.T, err == nil, "TOTP code: %v", err)
	var out struct{ VerifyMfa AuthPayload }
	s.Do("", VerifyMfaMutation, map[string]any{"in": map[string]any{"challengeToken": challengeToken, "code": code}}).Decode(s.T, &out)
	return out.VerifyMfa
}

// Must fails the test with the message unless cond holds.
func Must(t testing.TB, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

// Describe renders a response for a failure message.
func Describe(r Response) string {
	return fmt.Sprintf("status %d, errors %v, data %s", r.Status, r.Errors, strings.TrimSpace(string(r.Data)))
}

// DeniedCode is the code the field guard refuses a viewer with: an
// anonymous one is told to sign in, a signed-in one is forbidden.
func DeniedCode(who string) string {
	if who == "" || who == "anonymous" {
		return "UNAUTHENTICATED"
	}
	return "FORBIDDEN"
}

// DeniedByGuard says whether the field guard refused something in r: a
// wrong password is UNAUTHENTICATED too, but not a refusal of the guard.
func DeniedByGuard(r Response, who string) bool {
	for _, e := range r.Errors {
		if e.Code() == DeniedCode(who) && (e.Code() == "FORBIDDEN" || strings.HasPrefix(e.Message, "sign in to access ")) {
			return true
		}
	}
	return false
}

// WantBadInput asserts that r failed with exactly one BAD_USER_INPUT that
// names field, the contract for every rejected input.
func WantBadInput(t testing.TB, what string, r Response, field string) {
	t.Helper()
	Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "BAD_USER_INPUT" && r.Errors[0].Field() == field,
		"%s: want BAD_USER_INPUT on %s, got %s", what, field, Describe(r))
}

// ContainsJSON reports whether raw response data holds fragment; empty
// data holds nothing, so a refusal never passes for a match.
func ContainsJSON(raw []byte, fragment string) bool {
	return len(raw) > 0 && strings.Contains(string(raw), fragment)
}

// IDs maps xs to their IDs, for comparing lists of results by identity.
func IDs[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}
