// Package auth signs users in and turns a request's credentials into the
// Viewer the rest of the system acts for: password logins with rotating
// refresh tokens, signed access tokens that logout revokes at once, login
// throttling, and API keys for integrators.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/golang-jwt/jwt/v5"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/apikey"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/ent/session"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/cache"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/requestinfo"
	"github.com/hmis-dev/hmis/internal/store"
)

// Config holds the settings of the Service.
type Config struct {
	// Secret signs access tokens; at least 32 bytes.
	Secret          []byte
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// A user is locked out for LockoutWindow after MaxFailuresPerUser failed
	// logins within it; a client address after MaxFailuresPerAddr.
	MaxFailuresPerUser int64
	MaxFailuresPerAddr int64
	LockoutWindow      time.Duration
	// IsRole reports whether a role exists in the policy; API keys may only
	// be bound to one that does.
	IsRole func(string) bool
	// RequiresMFA reports whether a user with these roles must sign in
	// with a second factor (the policy's Require.MFA object); nil: nobody.
	RequiresMFA func(roles []string) bool
	// MFAIssuer names the service in authenticator apps.
	MFAIssuer string
	// MFAChallengeTTL is how long the second step of a login may take.
	MFAChallengeTTL time.Duration
}

// MinSecretLength is the shortest token secret accepted.
const MinSecretLength = 32

// MinPasswordLength is the shortest password changePassword accepts.
const MinPasswordLength = 12

// Service is the authentication service.
type Service struct {
	cfg   Config
	store *store.Store
	cache cache.Cache
	now   func() time.Time
	// dummyHash is compared against when a username does not exist, so that
	// a failed login takes as long for an unknown user as for a wrong password.
	dummyHash string
	// refreshKey signs refresh tokens (see newRefreshToken).
	refreshKey []byte
}

// NewService returns a Service.
func NewService(cfg Config, st *store.Store, c cache.Cache) (*Service, error) {
	if len(cfg.Secret) < MinSecretLength {
		return nil, fmt.Errorf("token secret must be at least %d bytes", MinSecretLength)
	}
	dummy, err := HashPassword("not a real password")
	if err != nil {
		return nil, err
	}
	// A key of its own, derived from the secret, so that no refresh token
	// signature can ever pass for an access token's or the other way round.
	kdf := hmac.New(sha256.New, cfg.Secret)
	kdf.Write([]byte("hmis refresh token"))
	return &Service{cfg: cfg, store: st, cache: c, now: time.Now, dummyHash: dummy, refreshKey: kdf.Sum(nil)}, nil
}

// HashPassword returns the argon2id hash of password in PHC string form.
func HashPassword(password string) (string, error) {
	return argon2id.CreateHash(password, hashParams)
}

// hashParams are argon2id's costs for new hashes: the library's defaults
// (64 MiB, one pass) outside tests, so that each guess costs an attacker
// that much memory. A test binary hashes with 1 MiB: the suite hashes and
// verifies thousands of passwords, and under the race detector a default
// hash took a quarter of a second, a fifth of some packages' CPU. Test
// hashes are argon2id all the same and verified by the same code; a hash
// carries its own costs, so a database seeded by a test could still be
// logged in to, just not with the default's resistance.
var hashParams = func() *argon2id.Params {
	if testing.Testing() {
		return &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	}
	return argon2id.DefaultParams
}()

// Tokens is the result of a login or a refresh: a session's tokens, or,
// from a login that owes a second factor, only Challenge.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresAt    time.Time
	User         *ent.User
	Challenge    *Challenge
}

type claims struct {
	jwt.RegisteredClaims
	Username  string   `json:"usr"`
	Roles     []string `json:"roles"`
	StaffID   string   `json:"stf,omitempty"`
	PatientID string   `json:"pat,omitempty"`
}

const issuer = "hmis"

// Cache keys. Values are IDs and counters only, never patient data.
func revokedSessionKey(sid string) string { return "auth:revoked-session:" + sid }
func revokedKeyKey(id string) string      { return "auth:revoked-key:" + id }
func userFailuresKey(username string) string {
	return "auth:fail:user:" + strings.ToLower(username)
}
func addrFailuresKey(addr string) string { return "auth:fail:addr:" + addr }

var errBadCredentials = apperr.Unauthenticatedf("wrong username or password")

// Login checks a username and password and opens a session, or, when the
// user has a second factor or their role requires one, answers with a
// challenge instead (see VerifyMFA).
func (s *Service) Login(ctx context.Context, username, password, clientAddr string) (*Tokens, error) {
	username = strings.TrimSpace(username)
	if username == "" {
		return nil, apperr.BadInput("input.username", "is required")
	}
	if password == "" {
		return nil, apperr.BadInput("input.password", "is required")
	}
	a, err := s.beginAttempt(ctx, username, clientAddr)
	if err != nil {
		return nil, err
	}
	// Nobody is signed in yet, so row scope would hide every user: the
	// lookups of a sign-in are the system's own.
	ctx = SystemContext(ctx)
	u, err := s.store.Client.User.Query().Where(user.UsernameEqualFold(username)).WithStaff().WithPatient().Only(ctx)
	if ent.IsNotFound(err) {
		_, _ = argon2id.ComparePasswordAndHash(password, s.dummyHash)
		return nil, errBadCredentials // the reserved slots stay taken: a failure
	} else if err != nil {
		a.release(ctx)
		return nil, err
	}
	ok, err := argon2id.ComparePasswordAndHash(password, u.PasswordHash)
	if err != nil {
		a.release(ctx)
		return nil, fmt.Errorf("compare password: %w", err)
	}
	if !ok || !u.Active {
		return nil, errBadCredentials
	}
	a.release(ctx)
	if ch, err := s.challengeFor(ctx, u, clientAddr); err != nil || ch != nil {
		return &Tokens{Challenge: ch}, err
	}
	return s.openSession(ctx, s.store.Client, u, clientAddr)
}

// openSession starts a session for u, whose identity has been proven,
// through client (the caller's transaction's, when it has one).
func (s *Service) openSession(ctx context.Context, client *ent.Client, u *ent.User, clientAddr string) (*Tokens, error) {
	sid := globalid.New("ses")
	refresh := s.newRefreshToken(sid)
	sess, err := client.Session.Create().
		SetID(sid).
		SetUserID(u.ID).
		SetRefreshHash(digest(refresh)).
		SetExpiresAt(s.now().Add(s.cfg.RefreshTokenTTL).UTC()).
		SetClientAddr(clientAddr).
		Save(ctx)
	if err != nil {
		return nil, err
	}
	if err := client.User.UpdateOneID(u.ID).SetLastLoginAt(s.now().UTC()).Exec(ctx); err != nil {
		return nil, err
	}
	return s.issue(u, sess.ID, refresh)
}

// attempt is one password check that holds a slot under the user's limit of
// failures and one under the client address's. Slots are taken before the
// password is looked at, atomically in the cache every server shares, so
// however many checks for one user race — on one server or many — no more
// than the limit are ever evaluated in a window. A failure keeps its slots;
// anything else gives them back.
type attempt struct {
	s    *Service
	keys []string
}

func (s *Service) beginAttempt(ctx context.Context, username, clientAddr string) (*attempt, error) {
	limits := []limit{{userFailuresKey(username), s.cfg.MaxFailuresPerUser, s.cfg.LockoutWindow, "too many failed logins"}}
	if clientAddr != "" {
		limits = append(limits, limit{addrFailuresKey(clientAddr), s.cfg.MaxFailuresPerAddr, s.cfg.LockoutWindow, "too many failed logins from this address"})
	}
	return s.reserve(ctx, limits...)
}

// limit is one counter of failures an attempt takes a slot under.
type limit struct {
	key    string
	max    int64
	window time.Duration
	what   string // the refusal, before "; try again in …"
}

// reserve takes a slot under each limit, in order, or none: the first
// limit that is full refuses the attempt with TOO_MANY_REQUESTS.
func (s *Service) reserve(ctx context.Context, limits ...limit) (*attempt, error) {
	a := &attempt{s: s}
	for _, l := range limits {
		ok, err := s.cache.Reserve(ctx, l.key, l.max, l.window)
		if err != nil || !ok {
			a.release(ctx)
		}
		if err != nil {
			return nil, err
		} else if !ok {
			return nil, &apperr.Error{Code: apperr.TooManyRequests, Message: fmt.Sprintf("%s; try again in %s", l.what, l.window)}
		}
		a.keys = append(a.keys, l.key)
	}
	return a, nil
}

// release gives the attempt's slots back: it did not fail. Earlier failures
// stay counted for their window; a success does not wipe them, or every
// genuine sign-in would buy a guesser a fresh set of tries. Best effort and
// deaf to the client going away: a slot not given back only counts as one
// more failure until the window ends.
func (a *attempt) release(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for _, k := range a.keys {
		_ = a.s.cache.Release(ctx, k)
	}
	a.keys = nil
}

// Refresh trades a refresh token for new tokens; the old one stops working.
// A refresh token presented again after it was traded is taken as stolen —
// either the thief or the rightful client is replaying it, and the server
// cannot tell which — so the whole session ends: its current refresh token
// and every access token issued under it stop working on every server.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	if refreshToken == "" {
		return nil, apperr.BadInput("input.refreshToken", "is required")
	}
	ctx = SystemContext(ctx) // as for Login: the caller is not signed in
	var (
		u      *ent.User
		sid    string
		next   string
		reused string // the session a retired refresh token was replayed against
	)
	err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		sess, err := tx.Session.Query().Where(session.RefreshHash(digest(refreshToken))).Only(ctx)
		if ent.IsNotFound(err) {
			// Not the current token of any session. If this server signed
			// it, it is a retired one.
			if owner, ok := s.refreshTokenSession(refreshToken); ok {
				reused = owner
			}
			return apperr.Unauthenticatedf("the refresh token is not valid")
		} else if err != nil {
			return err
		}
		if sess.RevokedAt != nil || !s.now().Before(sess.ExpiresAt) {
			return apperr.Unauthenticatedf("the session has ended; sign in again")
		}
		next = s.newRefreshToken(sess.ID)
		// Conditional on the old hash, so a token raced through two refreshes
		// yields one new pair, not two; the loser is a replay like any other.
		n, err := tx.Session.Update().
			Where(session.ID(sess.ID), session.RefreshHash(sess.RefreshHash)).
			SetRefreshHash(digest(next)).
			Save(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			reused = sess.ID
			return apperr.Unauthenticatedf("the refresh token is not valid")
		}
		u, err = tx.User.Query().Where(user.ID(sess.UserID)).WithStaff().WithPatient().Only(ctx)
		if err != nil {
			return err
		}
		if !u.Active {
			return apperr.Unauthenticatedf("the account is disabled")
		}
		sid = sess.ID
		return nil
	})
	if reused != "" {
		if err := s.revokeSessions(ctx, session.ID(reused)); err != nil {
			return nil, err
		}
		return nil, apperr.Unauthenticatedf("the refresh token was already used, so the session has been ended; sign in again")
	}
	if err != nil {
		return nil, err
	}
	return s.issue(u.Unwrap(), sid, next)
}

// newRefreshToken returns a fresh refresh token of session sid: the
// session's ID, 256 random bits, and a signature over both. Only its digest
// is stored, as the session's current one; the signature is what lets a
// retired token be recognised, without remembering every token ever issued,
// as one this server gave that session — and not a guess, which must not be
// able to end someone's session.
func (s *Service) newRefreshToken(sid string) string {
	r := randomToken()
	return sid + "." + r + "." + s.refreshSignature(sid, r)
}

func (s *Service) refreshSignature(sid, random string) string {
	m := hmac.New(sha256.New, s.refreshKey)
	m.Write([]byte(sid + "." + random))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// refreshTokenSession returns the session a refresh token was issued for,
// if this server signed it.
func (s *Service) refreshTokenSession(token string) (string, bool) {
	sid, rest, ok := strings.Cut(token, ".")
	random, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || !globalid.Valid(sid, "ses") {
		return "", false
	}
	return sid, hmac.Equal([]byte(sig), []byte(s.refreshSignature(sid, random)))
}

func (s *Service) issue(u *ent.User, sessionID, refresh string) (*Tokens, error) {
	now := s.now()
	exp := now.Add(s.cfg.AccessTokenTTL)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   u.ID,
			ID:        sessionID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Username: u.Username,
		Roles:    u.Roles,
	}
	if st := u.Edges.Staff; st != nil {
		c.StaffID = st.ID
	}
	if p := u.Edges.Patient; p != nil {
		c.PatientID = p.ID
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("sign access token: %w", err)
	}
	return &Tokens{AccessToken: signed, RefreshToken: refresh, ExpiresAt: exp.UTC(), User: u}, nil
}

// Logout ends the viewer's session: its refresh token is revoked in the
// database and its access token in the cache, which every server consults.
func (s *Service) Logout(ctx context.Context, v *Viewer) error {
	if v == nil || v.SessionID == "" {
		return apperr.Unauthenticatedf("no session to end")
	}
	return s.revokeSessions(ctx, session.ID(v.SessionID))
}

// EndUserSessions ends every live session of a user, as logout ends one:
// their refresh tokens are refused, their access tokens stop working on
// every server, and connections opened with them close at their next
// check. For when the person behind the login must stop acting at once
// (deactivated, their roles changed).
func (s *Service) EndUserSessions(ctx context.Context, userID string) error {
	// The system's read: the caller (HR) sees no one else's sessions.
	return s.revokeSessions(SystemContext(ctx), session.UserID(userID))
}

// revokeSessions ends the live sessions matching where. Access tokens are
// revoked in the cache first, for as long as any of them can still be valid,
// so that they stop working even if the database write then fails.
func (s *Service) revokeSessions(ctx context.Context, where ...predicate.Session) error {
	ids, err := s.store.Client.Session.Query().Where(append(where, session.RevokedAtIsNil())...).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	for _, id := range ids {
		if err := s.cache.Set(ctx, revokedSessionKey(id), "1", s.cfg.AccessTokenTTL); err != nil {
			return err
		}
	}
	// One row at a time, so the audit trail of the request names each
	// session it ended.
	for _, id := range ids {
		if err := s.store.Client.Session.UpdateOneID(id).SetRevokedAt(s.now().UTC()).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// ChangePassword sets a new password for the viewer and ends every other
// session of theirs. A wrong current password counts as a failed login.
func (s *Service) ChangePassword(ctx context.Context, v *Viewer, current, next string) error {
	if v == nil || v.UserID == "" {
		return apperr.Unauthenticatedf("sign in as a user to change a password")
	}
	u, err := s.store.Client.User.Get(ctx, v.UserID)
	if err != nil {
		return err
	}
	// Checking the current password is a login by another door: it draws on
	// the same limits, or a stolen access token could guess its way to the
	// password and from there to a session that outlives the token.
	a, err := s.beginAttempt(ctx, u.Username, requestinfo.From(ctx).ClientAddr)
	if err != nil {
		return err
	}
	if ok, err := argon2id.ComparePasswordAndHash(current, u.PasswordHash); err != nil {
		a.release(ctx)
		return err
	} else if !ok {
		return apperr.BadInput("input.currentPassword", "is not your current password")
	}
	a.release(ctx)
	switch {
	case len(next) < MinPasswordLength:
		return apperr.BadInput("input.newPassword", "must be at least %d characters", MinPasswordLength)
	case len(next) > 256:
		return apperr.BadInput("input.newPassword", "must be at most 256 characters")
	case strings.EqualFold(next, u.Username):
		return apperr.BadInput("input.newPassword", "must not be the username")
	case next == current:
		return apperr.BadInput("input.newPassword", "must differ from the current password")
	}
	hash, err := HashPassword(next)
	if err != nil {
		return err
	}
	if err := s.store.Client.User.UpdateOne(u).SetPasswordHash(hash).Exec(ctx); err != nil {
		return err
	}
	return s.revokeSessions(ctx, session.UserID(u.ID), session.IDNEQ(v.SessionID))
}

// APIKeyPrefix starts every API key, so that one is told from an access token at a glance.
const APIKeyPrefix = "hmis_"

// APIKeyInput is what a key is made with.
type APIKeyInput struct {
	Name      string
	Role      string
	ExpiresAt *time.Time
	// Scopes are SMART scopes that narrow the role on the FHIR API.
	Scopes []string
	// StaffID is the member of staff the key acts for: row scope then
	// follows their care relationships, as for them signed in.
	StaffID *string
}

// CreateAPIKey makes a key for an integrator acting with a role. The secret
// is returned once; only its hash is kept.
func (s *Service) CreateAPIKey(ctx context.Context, v *Viewer, in APIKeyInput) (*ent.APIKey, string, error) {
	name, role, expiresAt := strings.TrimSpace(in.Name), in.Role, in.ExpiresAt
	scopes, err := CheckScopes("input.scopes", in.Scopes)
	if err != nil {
		return nil, "", err
	}
	if in.StaffID != nil {
		if !globalid.Valid(*in.StaffID, ent.PrefixByType["Staff"]) {
			return nil, "", apperr.BadInput("input.staffId", "is not a staff ID")
		}
		st, err := s.store.Client.Staff.Get(ctx, *in.StaffID)
		if ent.IsNotFound(err) {
			return nil, "", apperr.BadInput("input.staffId", "no such member of staff")
		} else if err != nil {
			return nil, "", err
		}
		if !st.Active {
			return nil, "", apperr.BadInput("input.staffId", "the member of staff is not active")
		}
	}
	switch {
	case name == "" || len(name) > 100:
		return nil, "", apperr.BadInput("input.name", "is required, at most 100 characters")
	case s.cfg.IsRole == nil || !s.cfg.IsRole(role):
		return nil, "", apperr.BadInput("input.role", "is not a role of the policy")
	case role == "admin":
		return nil, "", apperr.BadInput("input.role", "an API key cannot act as admin")
	case s.cfg.RequiresMFA != nil && s.cfg.RequiresMFA([]string{role}):
		// A key is one factor that never expires by default: it would be a
		// way around the second factor the policy asks of the role.
		return nil, "", apperr.BadInput("input.role", "%s signs in with a second factor, which an API key cannot give", role)
	case expiresAt != nil && !expiresAt.After(s.now()):
		return nil, "", apperr.BadInput("input.expiresAt", "must be in the future")
	}
	lookup := strings.ToLower(globalid.New("k")[2:])
	secret := randomToken()
	k, err := s.store.Client.APIKey.Create().
		SetName(name).
		SetLookup(lookup).
		SetSecretHash(digest(secret)).
		SetRole(role).
		SetCreatedBy(v.ActorID()).
		SetNillableStaffID(in.StaffID).
		SetNillableExpiresAt(expiresAt).
		Save(ctx)
	if err != nil {
		return nil, "", err
	}
	if len(scopes) > 0 {
		// A separate update keeps an empty list out of the row: no scopes
		// is stored as none, which the FHIR API reads as "the role alone".
		if k, err = s.store.Client.APIKey.UpdateOne(k).SetScopes(scopes).Save(ctx); err != nil {
			return nil, "", err
		}
	}
	return k, APIKeyPrefix + lookup + "_" + secret, nil
}

// RevokeAPIKey stops a key from working.
func (s *Service) RevokeAPIKey(ctx context.Context, id string) (*ent.APIKey, error) {
	if !globalid.Valid(id, "key") {
		return nil, apperr.BadInput("id", "is not an API key ID")
	}
	k, err := s.store.Client.APIKey.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("API key not found")
	} else if err != nil {
		return nil, err
	}
	if k.RevokedAt != nil {
		return k, nil
	}
	// Tell open connections first; requests look the key up anyway.
	if err := s.cache.Set(ctx, revokedKeyKey(k.ID), "1", 0); err != nil {
		return nil, err
	}
	return s.store.Client.APIKey.UpdateOne(k).SetRevokedAt(s.now().UTC()).Save(ctx)
}

// Authenticate turns a bearer credential into a Viewer. An empty credential
// is an anonymous request (nil viewer, no error).
func (s *Service) Authenticate(ctx context.Context, credential string) (*Viewer, error) {
	switch {
	case credential == "":
		return nil, nil
	case strings.HasPrefix(credential, APIKeyPrefix):
		return s.authenticateAPIKey(ctx, strings.TrimPrefix(credential, APIKeyPrefix))
	}
	var c claims
	_, err := jwt.ParseWithClaims(credential, &c, func(*jwt.Token) (any, error) { return s.cfg.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, apperr.Unauthenticatedf("the access token has expired; refresh it")
		}
		return nil, apperr.Unauthenticatedf("the access token is not valid")
	}
	if _, revoked, err := s.cache.Get(ctx, revokedSessionKey(c.ID)); err != nil {
		return nil, err
	} else if revoked {
		return nil, apperr.Unauthenticatedf("the session has ended; sign in again")
	}
	return &Viewer{
		UserID: c.Subject, Username: c.Username, Roles: c.Roles,
		StaffID: c.StaffID, PatientID: c.PatientID, SessionID: c.ID,
		ExpiresAt: c.ExpiresAt.Time,
	}, nil
}

// StillValid reports whether the credential a long-lived connection was
// opened with still holds: not expired, its session not ended, its API key
// not revoked. Subscriptions ask before every event, so logging out or
// revoking a key stops a stream at once, on every server.
func (s *Service) StillValid(ctx context.Context, v *Viewer) error {
	if v == nil || v.System {
		return nil
	}
	if !v.ExpiresAt.IsZero() && !s.now().Before(v.ExpiresAt) {
		return apperr.Unauthenticatedf("the credential has expired; subscribe again with a fresh token")
	}
	key := ""
	switch {
	case v.SessionID != "":
		key = revokedSessionKey(v.SessionID)
	case v.APIKeyID != "":
		key = revokedKeyKey(v.APIKeyID)
	default:
		return nil
	}
	if _, revoked, err := s.cache.Get(ctx, key); err != nil {
		return err
	} else if revoked {
		return apperr.Unauthenticatedf("the session has ended; sign in again")
	}
	return nil
}

func (s *Service) authenticateAPIKey(ctx context.Context, rest string) (*Viewer, error) {
	lookup, secret, ok := strings.Cut(rest, "_")
	if !ok {
		return nil, apperr.Unauthenticatedf("the API key is not valid")
	}
	k, err := s.store.Client.APIKey.Query().Where(apikey.Lookup(lookup)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.Unauthenticatedf("the API key is not valid")
	} else if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(k.SecretHash), []byte(digest(secret))) != 1 {
		return nil, apperr.Unauthenticatedf("the API key is not valid")
	}
	if k.RevokedAt != nil || (k.ExpiresAt != nil && !s.now().Before(*k.ExpiresAt)) {
		return nil, apperr.Unauthenticatedf("the API key has been revoked or has expired")
	}
	// Best effort: a lost last-used time must not fail the request.
	_ = s.store.Client.APIKey.UpdateOne(k).SetLastUsedAt(s.now().UTC()).Exec(ctx)
	v := &Viewer{APIKeyID: k.ID, Username: "apikey:" + k.Name, Roles: []string{k.Role}}
	if len(k.Scopes) > 0 {
		v.Scopes = k.Scopes
	}
	if k.StaffID != nil {
		v.StaffID = *k.StaffID
	}
	if k.ExpiresAt != nil {
		v.ExpiresAt = *k.ExpiresAt
	}
	return v, nil
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // the system's random source failing is not recoverable
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// digest hashes a high-entropy secret for storage. A plain SHA-256 suffices:
// unlike a password, a 256-bit random token cannot be guessed offline.
func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
