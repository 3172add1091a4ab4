// Package mfa_test drives multi-factor sign-in through the API as a
// frontend would: the login challenge, verifyMfa, TOTP enrolment and
// recovery codes, throttling, replays, and an admin's audited reset.
package mfa_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/demo"
)

// login signs in with the password only and returns what login answered.
func login(t *testing.T, s *harness.Server, username string) harness.AuthPayload {
	t.Helper()
	var out struct{ Login harness.AuthPayload }
	s.Do("", harness.LoginMutation, map[string]any{"u": username, "p": harness.DemoPassword}).Decode(t, &out)
	return out.Login
}

// challenge signs in with the password and returns the challenge token,
// failing unless login asked for a second factor.
func challenge(t *testing.T, s *harness.Server, username string) string {
	t.Helper()
	p := login(t, s, username)
	harness.Must(t, p.MfaRequired && p.Challenge != nil && p.AccessToken == "" && p.RefreshToken == "" && p.User.ID == "",
		"login of %s: want a challenge and no tokens, got %+v", username, p)
	return p.Challenge.Token
}

func verify(s *harness.Server, token string, in map[string]any) harness.Response {
	in["challengeToken"] = token
	return s.Do("", harness.VerifyMfaMutation, map[string]any{"in": in})
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := auth.TOTPCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode is a six-digit code the server accepts at no step near now.
func wrongCode(t *testing.T, secret string) string {
	t.Helper()
	now := time.Now()
	valid := []string{}
	for d := -2; d <= 2; d++ {
		valid = append(valid, code(t, secret, now.Add(time.Duration(d)*30*time.Second)))
	}
	for _, c := range []string{"000000", "111111", "222222", "333333", "444444", "555555"} {
		if !slices.Contains(valid, c) {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

func tokenOf(t *testing.T, r harness.Response) harness.AuthPayload {
	t.Helper()
	var out struct{ VerifyMfa harness.AuthPayload }
	r.Decode(t, &out)
	harness.Must(t, out.VerifyMfa.AccessToken != "" && out.VerifyMfa.RefreshToken != "" && !out.VerifyMfa.MfaRequired,
		"verifyMfa: want tokens, got %+v", out.VerifyMfa)
	return out.VerifyMfa
}

func wantCode(t *testing.T, what string, r harness.Response, code string) {
	t.Helper()
	harness.Must(t, r.HasCode(code), "%s: want %s, got %s", what, code, harness.Describe(r))
}

// TestDoctorNeedsSecondFactor: the policy requires MFA of doctors, so a
// password alone opens no session, the challenge token reads no data, a
// wrong or replayed code is refused, a challenge is used once, and the
// session a code opened refreshes without being asked again.
func TestDoctorNeedsSecondFactor(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)

	p := login(t, s, "doctor")
	harness.Must(t, p.MfaRequired && p.AccessToken == "" && p.Challenge != nil, "doctor login: %+v", p)
	harness.Must(t, slices.Equal(p.Challenge.Methods, []string{"TOTP", "RECOVERY_CODE"}) && !p.Challenge.EnrolmentRequired,
		"challenge methods: %+v", p.Challenge)
	exp, err := time.Parse(time.RFC3339Nano, p.Challenge.ExpiresAt)
	harness.Must(t, err == nil && exp.After(time.Now()) && exp.Before(time.Now().Add(6*time.Minute)), "challenge expiry %q", p.Challenge.ExpiresAt)
	tok := p.Challenge.Token

	// The challenge token is no credential.
	r := s.Do(tok, `{ patients(first: 1) { totalCount } }`, nil)
	wantCode(t, "patients with the challenge token", r, "UNAUTHENTICATED")
	harness.Must(t, !strings.Contains(string(r.Data), "totalCount"), "data leaked: %s", r.Data)

	// Bad input names its field.
	harness.WantBadInput(t, "no code", verify(s, tok, map[string]any{}), "input.code")
	harness.WantBadInput(t, "both", verify(s, tok, map[string]any{"code": "123456", "recoveryCode": "x"}), "input.recoveryCode")
	harness.WantBadInput(t, "wrong code", verify(s, tok, map[string]any{"code": wrongCode(t, demo.TOTPSecret)}), "input.code")

	now := code(t, demo.TOTPSecret, time.Now())
	session := tokenOf(t, verify(s, tok, map[string]any{"code": now}))
	harness.Must(t, session.User.Username == "doctor", "session of %+v", session.User)
	var me struct{ Me struct{ Username string } }
	s.Do(session.AccessToken, `{ me { username } }`, nil).Decode(t, &me)
	harness.Must(t, me.Me.Username == "doctor", "me: %+v", me)

	// A challenge is used once, whatever the code.
	wantCode(t, "challenge used again", verify(s, tok, map[string]any{"code": code(t, demo.TOTPSecret, time.Now().Add(30*time.Second))}), "UNAUTHENTICATED")

	// The same code on a new challenge is a replay.
	r = verify(s, challenge(t, s, "doctor"), map[string]any{"code": now})
	harness.WantBadInput(t, "replayed code", r, "input.code")
	harness.Must(t, strings.Contains(r.Errors[0].Message, "already used"), "replay message: %s", r.Errors[0].Message)

	// Refreshing asks for no second factor.
	var ref struct{ RefreshToken harness.AuthPayload }
	s.Do("", `mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { `+harness.AuthPayloadFields+` } }`,
		map[string]any{"t": session.RefreshToken}).Decode(t, &ref)
	harness.Must(t, ref.RefreshToken.AccessToken != "" && !ref.RefreshToken.MfaRequired, "refresh: %+v", ref.RefreshToken)
}

// TestOptionalRolesSignInWithPasswordOnly: a nurse, whom the policy does
// not require a second factor of, gets tokens from login until she
// enrols; an API key is never asked for one.
func TestOptionalRolesSignInWithPasswordOnly(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	p := login(t, s, "nurse")
	harness.Must(t, !p.MfaRequired && p.Challenge == nil && p.AccessToken != "", "nurse login: %+v", p)
	key := harness.Credentials(t, s, []string{"integrator"})["integrator"]
	r := s.Do(key, `{ departments(first: 1) { totalCount } }`, nil)
	harness.Must(t, len(r.Errors) == 0, "API key: %s", harness.Describe(r))
}

// enrol sets up TOTP for the signed-in user of accessToken and returns the
// secret and the recovery codes.
func enrol(t *testing.T, s *harness.Server, accessToken string) (string, []string) {
	t.Helper()
	var e struct {
		EnrollTotp struct{ Secret, OtpauthURI, QrCodePng string } `json:"enrollTotp"`
	}
	const enroll = `mutation($p: String) { enrollTotp(input: {currentPassword: $p}) { secret otpauthUri qrCodePng } }`
	// A stolen access token alone cannot bind the account to a device.
	harness.WantBadInput(t, "enrol without the password", s.Do(accessToken, enroll, nil), "input.currentPassword")
	harness.WantBadInput(t, "enrol with a wrong password", s.Do(accessToken, enroll, map[string]any{"p": "not-the-password"}), "input.currentPassword")
	s.Do(accessToken, enroll, map[string]any{"p": harness.DemoPassword}).Decode(t, &e)
	en := e.EnrollTotp
	harness.Must(t, strings.HasPrefix(en.OtpauthURI, "otpauth://totp/") && strings.Contains(en.OtpauthURI, "secret="+en.Secret),
		"otpauth URI %q", en.OtpauthURI)
	harness.Must(t, strings.HasPrefix(en.QrCodePng, "data:image/png;base64,iVBOR"), "QR code %.40q", en.QrCodePng)
	harness.WantBadInput(t, "wrong first code", s.Do(accessToken, `mutation($c: String!) { confirmTotp(input: {code: $c}) { recoveryCodes } }`,
		map[string]any{"c": wrongCode(t, en.Secret)}), "input.code")
	var c struct {
		ConfirmTotp struct {
			RecoveryCodes []string
			Auth          *harness.AuthPayload
		} `json:"confirmTotp"`
	}
	s.Do(accessToken, `mutation($c: String!) { confirmTotp(input: {code: $c}) { recoveryCodes auth { accessToken } } }`,
		map[string]any{"c": code(t, en.Secret, time.Now())}).Decode(t, &c)
	harness.Must(t, len(c.ConfirmTotp.RecoveryCodes) == 10 && c.ConfirmTotp.Auth == nil, "confirm: %+v", c.ConfirmTotp)
	// The secret is shown once: enrolling again is refused while it is on.
	wantCode(t, "enrol twice", s.Do(accessToken, enroll, map[string]any{"p": harness.DemoPassword}), "CONFLICT")
	return en.Secret, c.ConfirmTotp.RecoveryCodes
}

func mfaEnabled(t *testing.T, s *harness.Server, accessToken string) bool {
	t.Helper()
	var out struct{ Me struct{ MfaEnabled bool } }
	s.Do(accessToken, `{ me { mfaEnabled } }`, nil).Decode(t, &out)
	return out.Me.MfaEnabled
}

// TestEnrolRecoveryCodeAndDisable: a nurse enrols; from then on her login
// asks for a code; a recovery code works once; she turns TOTP off with a
// current code, not with a wrong one.
func TestEnrolRecoveryCodeAndDisable(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	nurse := login(t, s, "nurse").AccessToken
	harness.Must(t, !mfaEnabled(t, s, nurse), "mfaEnabled before enrolment")
	secret, recovery := enrol(t, s, nurse)
	harness.Must(t, mfaEnabled(t, s, nurse), "mfaEnabled after enrolment")

	tokenOf(t, verify(s, challenge(t, s, "nurse"), map[string]any{"recoveryCode": strings.ToUpper(recovery[0])}))
	harness.WantBadInput(t, "recovery code again", verify(s, challenge(t, s, "nurse"), map[string]any{"recoveryCode": recovery[0]}), "input.recoveryCode")
	harness.WantBadInput(t, "made-up recovery code", verify(s, challenge(t, s, "nurse"), map[string]any{"recoveryCode": "aaaa-bbbb-cccc-dddd"}), "input.recoveryCode")

	const disable = `mutation($in: DisableTotpInput!) { disableTotp(input: $in) }`
	harness.WantBadInput(t, "disable with a wrong code", s.Do(nurse, disable, map[string]any{"in": map[string]any{"code": wrongCode(t, secret)}}), "input.code")
	harness.Must(t, mfaEnabled(t, s, nurse), "a wrong code disabled TOTP")
	// The confirmation used the current step; the next one is a new code.
	r := s.Do(nurse, disable, map[string]any{"in": map[string]any{"code": code(t, secret, time.Now().Add(30*time.Second))}})
	harness.Must(t, len(r.Errors) == 0, "disable: %s", harness.Describe(r))
	harness.Must(t, !mfaEnabled(t, s, nurse), "still enabled after disableTotp")
	p := login(t, s, "nurse")
	harness.Must(t, !p.MfaRequired && p.AccessToken != "", "login after disabling: %+v", p)
}

// TestSameCodeRacesOnce: two sign-ins racing with one code, and two with
// one recovery code, each open exactly one session.
func TestSameCodeRacesOnce(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	const racers = 4
	race := func(what string, tokens []string, in func() map[string]any) {
		t.Helper()
		var wg sync.WaitGroup
		results := make([]harness.Response, racers)
		errs := make([]error, racers)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := in()
				body["challengeToken"] = tokens[i]
				results[i], errs[i] = s.Send(nil, "", harness.VerifyMfaMutation, map[string]any{"in": body})
			}()
		}
		wg.Wait()
		won := 0
		for i, r := range results {
			harness.Must(t, errs[i] == nil, "%s: %v", what, errs[i])
			if len(r.Errors) == 0 {
				won++
			} else {
				harness.Must(t, r.HasCode("BAD_USER_INPUT"), "%s: loser got %s", what, harness.Describe(r))
			}
		}
		harness.Must(t, won == 1, "%s: %d of %d racers signed in, want exactly 1", what, won, racers)
	}

	tokens := make([]string, racers)
	for i := range tokens {
		tokens[i] = challenge(t, s, "doctor")
	}
	c := code(t, demo.TOTPSecret, time.Now())
	race("one TOTP code", tokens, func() map[string]any { return map[string]any{"code": c} })

	_, recovery := enrol(t, s, login(t, s, "nurse").AccessToken)
	for i := range tokens {
		tokens[i] = challenge(t, s, "nurse")
	}
	race("one recovery code", tokens, func() map[string]any { return map[string]any{"recoveryCode": recovery[0]} })
}

// TestWrongCodesThrottled: wrong codes count like wrong passwords, per
// challenge and per user; a refused attempt is refused even with the
// right code.
func TestWrongCodesThrottled(t *testing.T) {
	t.Parallel()
	t.Run("per user", func(t *testing.T) {
		t.Parallel()
		s := harness.NewServer(t) // HMIS_LOGIN_MAX_FAILURES: 5
		tok := challenge(t, s, "doctor")
		bad := wrongCode(t, demo.TOTPSecret)
		for i := range 5 {
			r := verify(s, tok, map[string]any{"code": bad})
			harness.Must(t, r.HasCode("BAD_USER_INPUT"), "wrong code %d: %s", i+1, harness.Describe(r))
		}
		wantCode(t, "right code after five wrong ones", verify(s, tok, map[string]any{"code": code(t, demo.TOTPSecret, time.Now())}), "TOO_MANY_REQUESTS")
		// A new sign-in does not buy new guesses.
		wantCode(t, "new challenge", verify(s, challenge(t, s, "doctor"), map[string]any{"code": code(t, demo.TOTPSecret, time.Now())}), "TOO_MANY_REQUESTS")
		// Other users are not affected.
		tokenOf(t, verify(s, challenge(t, s, "auditor"), map[string]any{"code": code(t, demo.TOTPSecret, time.Now())}))
	})
	t.Run("per challenge", func(t *testing.T) {
		t.Parallel()
		s := harness.NewServer(t, func(c *config.Config) { c.LoginMaxFailures = 50 })
		tok := challenge(t, s, "doctor")
		bad := wrongCode(t, demo.TOTPSecret)
		for i := range 5 {
			r := verify(s, tok, map[string]any{"code": bad})
			harness.Must(t, r.HasCode("BAD_USER_INPUT"), "wrong code %d: %s", i+1, harness.Describe(r))
		}
		wantCode(t, "sixth guess on one challenge", verify(s, tok, map[string]any{"code": code(t, demo.TOTPSecret, time.Now())}), "TOO_MANY_REQUESTS")
		tokenOf(t, verify(s, challenge(t, s, "doctor"), map[string]any{"code": code(t, demo.TOTPSecret, time.Now())}))
	})
}

// TestAdminResetIsAudited: an admin resets a user's second factor with a
// reason; the user's sessions end, their next login asks them to enrol
// (their role requires a factor), and the audit trail holds the reason.
func TestAdminResetIsAudited(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	doctor := s.Login("doctor", harness.DemoPassword)
	const reset = `mutation($in: ResetMfaInput!) { resetMfa(input: $in) { id username mfaEnabled } }`
	harness.WantBadInput(t, "no reason", s.As("admin", reset, map[string]any{"in": map[string]any{"userId": doctor.User.ID, "reason": " "}}), "input.reason")
	harness.WantBadInput(t, "not a user ID", s.As("admin", reset, map[string]any{"in": map[string]any{"userId": "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", "reason": "x"}}), "input.userId")
	wantCode(t, "a doctor resetting", s.Do(doctor.AccessToken, reset, map[string]any{"in": map[string]any{"userId": doctor.User.ID, "reason": "x"}}), "FORBIDDEN")

	var out struct {
		ResetMfa struct {
			ID         string
			MfaEnabled bool
		}
	}
	s.As("admin", reset, map[string]any{"in": map[string]any{"userId": doctor.User.ID, "reason": "Lost her phone; ticket 4711"}}).Decode(t, &out)
	harness.Must(t, out.ResetMfa.ID == doctor.User.ID && !out.ResetMfa.MfaEnabled, "reset: %+v", out.ResetMfa)
	wantCode(t, "the doctor's session after the reset", s.Do(doctor.AccessToken, `{ me { username } }`, nil), "UNAUTHENTICATED")

	var rows struct {
		AuditEvents struct {
			Edges []struct {
				Node struct {
					Operation, Outcome, Reason string
					ActorName                  string
					ObjectIds                  []string
				}
			}
		}
	}
	s.As("auditor", `{ auditEvents(first: 10, filter: {operation: "resetMfa"}) { edges { node { operation outcome reason actorName objectIds } } } }`, nil).Decode(t, &rows)
	found := false
	for _, e := range rows.AuditEvents.Edges {
		n := e.Node
		if n.Outcome == "ALLOWED" {
			found = true
			harness.Must(t, n.Reason == "Lost her phone; ticket 4711" && n.ActorName == "admin" && slices.Contains(n.ObjectIds, doctor.User.ID),
				"audit row of the reset: %+v", n)
		}
	}
	harness.Must(t, found, "no allowed resetMfa in the trail: %+v", rows)
}

// TestEnrolmentRequiredBeforeSignIn: a doctor without a second factor (an
// admin reset it) gets an enrolment challenge: it reads nothing and
// verifies nothing, it allows enrollTotp and confirmTotp, and confirming
// opens the session.
func TestEnrolmentRequiredBeforeSignIn(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	id := s.Login("doctor", harness.DemoPassword).User.ID
	s.As("admin", `mutation($id: ID!) { resetMfa(input: {userId: $id, reason: "new phone"}) { id } }`, map[string]any{"id": id})

	p := login(t, s, "doctor")
	harness.Must(t, p.MfaRequired && p.AccessToken == "" && p.Challenge != nil && p.Challenge.EnrolmentRequired &&
		slices.Equal(p.Challenge.Methods, []string{"TOTP"}), "login without a factor: %+v", p)
	tok := p.Challenge.Token
	wantCode(t, "data with an enrolment challenge", s.Do(tok, `{ patients(first: 1) { totalCount } }`, nil), "UNAUTHENTICATED")
	wantCode(t, "verifyMfa with an enrolment challenge", verify(s, tok, map[string]any{"code": "123456"}), "UNAUTHENTICATED")
	wantCode(t, "confirm before enrolling", s.Do("", `mutation($t: String!) { confirmTotp(input: {code: "123456", challengeToken: $t}) { recoveryCodes } }`,
		map[string]any{"t": tok}), "CONFLICT")

	var e struct {
		EnrollTotp struct{ Secret string } `json:"enrollTotp"`
	}
	s.Do("", `mutation($t: String!) { enrollTotp(input: {challengeToken: $t}) { secret } }`, map[string]any{"t": tok}).Decode(t, &e)
	harness.Must(t, e.EnrollTotp.Secret != "" && e.EnrollTotp.Secret != demo.TOTPSecret, "new secret %q", e.EnrollTotp.Secret)
	const confirm = `mutation($t: String!, $c: String!) { confirmTotp(input: {code: $c, challengeToken: $t}) { recoveryCodes auth { ` + harness.AuthPayloadFields + ` } } }`
	var c struct {
		ConfirmTotp struct {
			RecoveryCodes []string
			Auth          *harness.AuthPayload
		} `json:"confirmTotp"`
	}
	s.Do("", confirm, map[string]any{"t": tok, "c": code(t, e.EnrollTotp.Secret, time.Now())}).Decode(t, &c)
	harness.Must(t, len(c.ConfirmTotp.RecoveryCodes) == 10 && c.ConfirmTotp.Auth != nil && c.ConfirmTotp.Auth.AccessToken != "",
		"confirm with the challenge: %+v", c.ConfirmTotp)
	var me struct{ Me struct{ Username string } }
	s.Do(c.ConfirmTotp.Auth.AccessToken, `{ me { username } }`, nil).Decode(t, &me)
	harness.Must(t, me.Me.Username == "doctor", "me: %+v", me)
	wantCode(t, "enrolment challenge used again", s.Do("", `mutation($t: String!) { enrollTotp(input: {challengeToken: $t}) { secret } }`,
		map[string]any{"t": tok}), "UNAUTHENTICATED")
	// From now on the new secret is the doctor's factor.
	tokenOf(t, verify(s, challenge(t, s, "doctor"), map[string]any{"code": code(t, e.EnrollTotp.Secret, time.Now().Add(30*time.Second))}))
}

// TestOneCodePerRequest: aliases cannot make one request many guesses; a
// second-factor step counts as a credential mutation, one per request.
func TestOneCodePerRequest(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	tok := challenge(t, s, "doctor")
	r := s.Do("", `mutation($t: String!) { a: verifyMfa(input: {challengeToken: $t, code: "000001"}) { accessToken }
	  b: verifyMfa(input: {challengeToken: $t, code: "000002"}) { accessToken } }`, map[string]any{"t": tok})
	harness.Must(t, len(r.Errors) == 1 && r.HasCode("BAD_USER_INPUT") && strings.Contains(r.Errors[0].Message, "at most one"), "aliases: %s", harness.Describe(r))
	// Nothing ran: the challenge still completes.
	tokenOf(t, verify(s, tok, map[string]any{"code": code(t, demo.TOTPSecret, time.Now())}))

	// Both steps of the sign-in are in the audit trail, under the user.
	var rows struct {
		AuditEvents struct {
			Edges []struct {
				Node struct{ Operation, Outcome, ActorName string }
			}
		}
	}
	s.As("auditor", `{ auditEvents(first: 20, filter: {operation: "verifyMfa"}) { edges { node { operation outcome actorName } } } }`, nil).Decode(t, &rows)
	found := false
	for _, e := range rows.AuditEvents.Edges {
		found = found || (e.Node.Outcome == "ALLOWED" && e.Node.ActorName == "doctor")
	}
	harness.Must(t, found, "verifyMfa by doctor not audited: %+v", rows)
}
