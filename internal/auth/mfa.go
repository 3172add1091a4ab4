package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/mfachallenge"
	"github.com/hmis-dev/hmis/ent/mfarecoverycode"
	"github.com/hmis-dev/hmis/ent/session"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

// Multi-factor sign-in. A login whose user has a confirmed TOTP secret, or
// whose role the policy marks Require.MFA, opens no session: it answers
// with a challenge, and the session starts when VerifyMFA (or, for a user
// who must enrol first, ConfirmTOTP) proves the second factor. Refresh
// tokens then keep the session going without asking again, as the session
// was opened with both factors; API keys never log in and are not subject
// to it.

// The policy object whose roles must sign in with a second factor. Like
// Drafts.<Entity> it is no GraphQL coordinate, only a capability.
const RequireMFAObject = "Require.MFA"

// Method names, as the API lists them.
const (
	MethodTOTP         = "TOTP"
	MethodRecoveryCode = "RECOVERY_CODE"
)

// TOTP parameters: those every authenticator app assumes (RFC 6238's
// defaults), so the otpauth URI need not be read for them to work.
const (
	totpPeriod = 30 * time.Second
	totpDigits = otp.DigitsSix
	totpAlg    = otp.AlgorithmSHA1
)

// recoveryCodeCount codes are made at enrolment. Each holds 80 random
// bits, which is why a plain digest of them may be stored.
const recoveryCodeCount = 10

// maxFailuresPerChallenge wrong codes end a challenge's usefulness: a
// password thief gets this many guesses per login, and logins themselves
// are throttled.
const maxFailuresPerChallenge = 5

// Challenge is the second step a login owes.
type Challenge struct {
	Token             string
	Methods           []string
	ExpiresAt         time.Time
	EnrolmentRequired bool
}

// TOTPEnrolment is a secret waiting for its first code.
type TOTPEnrolment struct {
	Secret, URI, QRCodePNG string
}

// mfaLockKey serializes the changes of one user's TOTP secret.
func mfaLockKey(userID string) string { return "mfa:" + userID }

func mfaUserFailuresKey(userID string) string  { return "auth:mfa-fail:user:" + userID }
func mfaChallengeFailuresKey(id string) string { return "auth:mfa-fail:challenge:" + id }

var (
	errChallenge = apperr.Unauthenticatedf("the sign-in challenge is not valid, was used or has expired; sign in again")
	errWrongCode = apperr.BadInput("input.code", "is not the current code")
)

// mfaEnabled reports whether u has a confirmed second factor.
func mfaEnabled(u *ent.User) bool { return u.TotpConfirmedAt != nil && u.TotpSecret != "" }

func (s *Service) requiresMFA(u *ent.User) bool {
	return s.cfg.RequiresMFA != nil && s.cfg.RequiresMFA(u.Roles)
}

// challengeFor returns the challenge a password login of u must answer,
// nil if the password is enough.
func (s *Service) challengeFor(ctx context.Context, u *ent.User, clientAddr string) (*Challenge, error) {
	purpose := mfachallenge.PurposeVERIFY
	switch {
	case mfaEnabled(u):
	case s.requiresMFA(u):
		purpose = mfachallenge.PurposeENROL
	default:
		return nil, nil
	}
	token := randomToken()
	exp := s.now().Add(s.cfg.MFAChallengeTTL).UTC()
	if err := s.store.Client.MfaChallenge.Create().
		SetUserID(u.ID).
		SetTokenHash(digest(token)).
		SetPurpose(purpose).
		SetExpiresAt(exp).
		SetClientAddr(clientAddr).
		Exec(ctx); err != nil {
		return nil, err
	}
	ch := &Challenge{Token: token, ExpiresAt: exp, EnrolmentRequired: purpose == mfachallenge.PurposeENROL}
	if ch.EnrolmentRequired {
		ch.Methods = []string{MethodTOTP}
	} else {
		ch.Methods = []string{MethodTOTP, MethodRecoveryCode}
	}
	return ch, nil
}

// liveChallenge finds the unused, unexpired challenge of token with the
// given purpose. Whether it stays unused is settled when it is consumed.
func (s *Service) liveChallenge(ctx context.Context, token string, purpose mfachallenge.Purpose) (*ent.MfaChallenge, error) {
	if strings.TrimSpace(token) == "" {
		return nil, apperr.BadInput("input.challengeToken", "is required")
	}
	ch, err := s.store.Client.MfaChallenge.Query().Where(mfachallenge.TokenHash(digest(token))).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errChallenge
	} else if err != nil {
		return nil, err
	}
	if ch.Purpose != purpose || ch.UsedAt != nil || !s.now().Before(ch.ExpiresAt) {
		return nil, errChallenge
	}
	return ch, nil
}

// consumeChallenge marks ch used in tx, conditionally, so of two requests
// racing with one challenge only one completes it.
func (s *Service) consumeChallenge(ctx context.Context, tx *ent.Tx, ch *ent.MfaChallenge) error {
	n, err := tx.MfaChallenge.Update().
		Where(mfachallenge.ID(ch.ID), mfachallenge.UsedAtIsNil()).
		SetUsedAt(s.now().UTC()).
		Save(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return errChallenge
	}
	return nil
}

// beginCodeAttempt takes a slot under the user's limit of wrong codes, the
// challenge's if there is one, and the client address's (shared with wrong
// passwords): a second factor is guessed no faster than a password.
func (s *Service) beginCodeAttempt(ctx context.Context, userID, challengeID, clientAddr string) (*attempt, error) {
	limits := []limit{{mfaUserFailuresKey(userID), s.cfg.MaxFailuresPerUser, s.cfg.LockoutWindow, "too many wrong codes"}}
	if challengeID != "" {
		limits = append(limits, limit{mfaChallengeFailuresKey(challengeID), maxFailuresPerChallenge, s.cfg.MFAChallengeTTL, "too many wrong codes for this sign-in; sign in again"})
	}
	if clientAddr != "" {
		limits = append(limits, limit{addrFailuresKey(clientAddr), s.cfg.MaxFailuresPerAddr, s.cfg.LockoutWindow, "too many failed logins from this address"})
	}
	return s.reserve(ctx, limits...)
}

// codeOrRecovery checks that exactly one of a code and a recovery code was given.
func codeOrRecovery(code, recovery *string) error {
	has := func(p *string) bool { return p != nil && strings.TrimSpace(*p) != "" }
	switch {
	case has(code) && has(recovery):
		return apperr.BadInput("input.recoveryCode", "give a code or a recovery code, not both")
	case !has(code) && !has(recovery):
		return apperr.BadInput("input.code", "is required (or give a recovery code)")
	}
	return nil
}

// proveFactor checks, in tx, u's current TOTP code or one of their unused
// recovery codes, and uses it up: the code's time step becomes the last
// one accepted, the recovery code is marked used. Both are conditional
// updates, so a code raced through two requests passes once.
func (s *Service) proveFactor(ctx context.Context, tx *ent.Tx, u *ent.User, code, recovery *string) error {
	if recovery != nil && strings.TrimSpace(*recovery) != "" {
		n, err := tx.MfaRecoveryCode.Update().
			Where(mfarecoverycode.UserID(u.ID), mfarecoverycode.CodeHash(digest(normalizeRecoveryCode(*recovery))), mfarecoverycode.UsedAtIsNil()).
			SetUsedAt(s.now().UTC()).
			Save(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.BadInput("input.recoveryCode", "is not a recovery code of yours, or was used")
		}
		return nil
	}
	step, ok := s.totpStep(u.TotpSecret, *code)
	if !ok {
		return errWrongCode
	}
	return s.useStep(ctx, tx, u, step)
}

// useStep records step as u's last accepted one, unless it is not later.
func (s *Service) useStep(ctx context.Context, tx *ent.Tx, u *ent.User, step int64) error {
	n, err := tx.User.Update().
		Where(user.ID(u.ID), user.TotpLastStepLT(step)).
		SetTotpLastStep(step).
		Save(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return apperr.BadInput("input.code", "was already used; wait for the next code")
	}
	return nil
}

// VerifyMFA completes a login that answered with a challenge: a current
// TOTP code or a recovery code opens the session.
func (s *Service) VerifyMFA(ctx context.Context, challengeToken string, code, recovery *string, clientAddr string) (*Tokens, error) {
	if err := codeOrRecovery(code, recovery); err != nil {
		return nil, err
	}
	ctx = SystemContext(ctx) // as for Login: the caller is not signed in yet
	ch, err := s.liveChallenge(ctx, challengeToken, mfachallenge.PurposeVERIFY)
	if err != nil {
		return nil, err
	}
	a, err := s.beginCodeAttempt(ctx, ch.UserID, ch.ID, clientAddr)
	if err != nil {
		return nil, err
	}
	u, err := s.store.Client.User.Query().Where(user.ID(ch.UserID)).WithStaff().WithPatient().Only(ctx)
	if err != nil {
		a.release(ctx)
		return nil, err
	}
	if !u.Active || !mfaEnabled(u) {
		// Disabled, or reset by an admin since the password was checked.
		a.release(ctx)
		return nil, errChallenge
	}
	var out *Tokens
	err = s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		if err := s.proveFactor(ctx, tx, u, code, recovery); err != nil {
			return err
		}
		if err := s.consumeChallenge(ctx, tx, ch); err != nil {
			return err
		}
		out, err = s.openSession(ctx, tx.Client(), u, clientAddr)
		return err
	})
	if err != nil {
		if err != errChallenge && !isBadInput(err) {
			a.release(ctx) // not a wrong code: the database failed
		}
		return nil, err
	}
	a.release(ctx)
	return out, nil
}

func isBadInput(err error) bool {
	e, ok := err.(*apperr.Error)
	return ok && e.Code == apperr.BadUserInput
}

// mfaSubject is the user an enrolment acts for: the one of an enrolment
// challenge, or the signed-in user.
func (s *Service) mfaSubject(ctx context.Context, v *Viewer, challengeToken *string) (*ent.User, *ent.MfaChallenge, error) {
	ctx = SystemContext(ctx)
	var ch *ent.MfaChallenge
	userID := ""
	if challengeToken != nil {
		var err error
		if ch, err = s.liveChallenge(ctx, *challengeToken, mfachallenge.PurposeENROL); err != nil {
			return nil, nil, err
		}
		userID = ch.UserID
	} else {
		if v == nil || v.UserID == "" {
			return nil, nil, apperr.Unauthenticatedf("sign in as a user (or give an enrolment challenge's token) to set up a second factor")
		}
		userID = v.UserID
	}
	u, err := s.store.Client.User.Query().Where(user.ID(userID)).WithStaff().WithPatient().Only(ctx)
	if err != nil {
		return nil, nil, err
	}
	if !u.Active {
		return nil, nil, apperr.Unauthenticatedf("the account is disabled")
	}
	return u, ch, nil
}

// EnrollTOTP makes a new TOTP secret for the signed-in user, or the user
// of an enrolment challenge, to be confirmed with ConfirmTOTP. A pending
// one is replaced; a confirmed one must be disabled first, so that a
// stolen session cannot quietly move the second factor to another device.
//
// Signed in, the user confirms their password first, drawing on the login
// limits as changePassword does: otherwise a stolen access token could bind
// the account to the thief's device for good.
func (s *Service) EnrollTOTP(ctx context.Context, v *Viewer, challengeToken, currentPassword *string) (*TOTPEnrolment, error) {
	if challengeToken == nil && (currentPassword == nil || *currentPassword == "") {
		return nil, apperr.BadInput("input.currentPassword", "is required when signed in")
	}
	u, _, err := s.mfaSubject(ctx, v, challengeToken)
	if err != nil {
		return nil, err
	}
	if mfaEnabled(u) {
		return nil, apperr.Conflictf("a second factor is already set up; disable it first")
	}
	if challengeToken == nil {
		a, err := s.beginAttempt(ctx, u.Username, requestinfo.From(ctx).ClientAddr)
		if err != nil {
			return nil, err
		}
		if ok, err := argon2id.ComparePasswordAndHash(*currentPassword, u.PasswordHash); err != nil {
			a.release(ctx)
			return nil, err
		} else if !ok {
			return nil, apperr.BadInput("input.currentPassword", "is not your current password")
		}
		a.release(ctx)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.cfg.MFAIssuer, AccountName: u.Username,
		Period: uint(totpPeriod / time.Second), Digits: totpDigits, Algorithm: totpAlg,
	})
	if err != nil {
		return nil, fmt.Errorf("generate TOTP secret: %w", err)
	}
	err = s.store.InTx(SystemContext(ctx), func(ctx context.Context, tx *ent.Tx) error {
		if err := s.store.Lock(ctx, tx, mfaLockKey(u.ID)); err != nil {
			return err
		}
		// One row at a time: the secret is encrypted at rest, bound to its row.
		err := tx.User.UpdateOneID(u.ID).
			Where(user.TotpConfirmedAtIsNil()).
			SetTotpSecret(key.Secret()).
			Exec(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("a second factor was set up meanwhile; disable it first")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return nil, fmt.Errorf("TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("TOTP QR code: %w", err)
	}
	return &TOTPEnrolment{
		Secret:    key.Secret(),
		URI:       key.URL(),
		QRCodePNG: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
	}, nil
}

// ConfirmTOTP activates the pending TOTP secret with its first code and
// returns fresh recovery codes (the old ones stop working). For an
// enrolment challenge it also completes the sign-in: Tokens is set.
func (s *Service) ConfirmTOTP(ctx context.Context, v *Viewer, code string, challengeToken *string, clientAddr string) ([]string, *Tokens, error) {
	if strings.TrimSpace(code) == "" {
		return nil, nil, apperr.BadInput("input.code", "is required")
	}
	u, ch, err := s.mfaSubject(ctx, v, challengeToken)
	if err != nil {
		return nil, nil, err
	}
	ctx = SystemContext(ctx)
	switch {
	case mfaEnabled(u):
		return nil, nil, apperr.Conflictf("a second factor is already set up")
	case u.TotpSecret == "":
		return nil, nil, apperr.Conflictf("no enrolment is pending; call enrollTotp first")
	}
	chID := ""
	if ch != nil {
		chID = ch.ID
	}
	a, err := s.beginCodeAttempt(ctx, u.ID, chID, clientAddr)
	if err != nil {
		return nil, nil, err
	}
	step, ok := s.totpStep(u.TotpSecret, code)
	if !ok {
		return nil, nil, errWrongCode
	}
	codes := make([]string, recoveryCodeCount)
	for i := range codes {
		codes[i] = newRecoveryCode()
	}
	var out *Tokens
	err = s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		// Only the secret the code was checked against is confirmed: an
		// enrolment restarted meanwhile is not confirmed by the old code.
		// Compared here, under the lock enrolment takes too, not in SQL:
		// the column may be encrypted at rest, and ciphertexts of one
		// secret differ.
		if err := s.store.Lock(ctx, tx, mfaLockKey(u.ID)); err != nil {
			return err
		}
		cur, err := tx.User.Get(ctx, u.ID)
		if err != nil {
			return err
		}
		if cur.TotpConfirmedAt != nil || subtle.ConstantTimeCompare([]byte(cur.TotpSecret), []byte(u.TotpSecret)) != 1 {
			return apperr.Conflictf("the enrolment changed meanwhile; enrol again")
		}
		if err := tx.User.UpdateOneID(u.ID).
			SetTotpConfirmedAt(s.now().UTC()).
			SetTotpLastStep(step).
			Exec(ctx); err != nil {
			return err
		}
		if err := replaceRecoveryCodes(ctx, tx, u.ID, codes); err != nil {
			return err
		}
		if ch == nil {
			return nil
		}
		if err := s.consumeChallenge(ctx, tx, ch); err != nil {
			return err
		}
		out, err = s.openSession(ctx, tx.Client(), u, clientAddr)
		return err
	})
	a.release(ctx) // the code was right; a lost race is no guess
	if err != nil {
		return nil, nil, err
	}
	return codes, out, nil
}

func replaceRecoveryCodes(ctx context.Context, tx *ent.Tx, userID string, codes []string) error {
	if _, err := tx.MfaRecoveryCode.Delete().Where(mfarecoverycode.UserID(userID)).Exec(ctx); err != nil {
		return err
	}
	creates := make([]*ent.MfaRecoveryCodeCreate, len(codes))
	for i, c := range codes {
		creates[i] = tx.MfaRecoveryCode.Create().SetUserID(userID).SetCodeHash(digest(normalizeRecoveryCode(c)))
	}
	return tx.MfaRecoveryCode.CreateBulk(creates...).Exec(ctx)
}

// DisableTOTP removes the signed-in user's second factor, proven with a
// current code or a recovery code. If their role requires one, their next
// sign-in asks them to enrol again.
func (s *Service) DisableTOTP(ctx context.Context, v *Viewer, code, recovery *string) error {
	if v == nil || v.UserID == "" {
		return apperr.Unauthenticatedf("sign in as a user to change your second factor")
	}
	if err := codeOrRecovery(code, recovery); err != nil {
		return err
	}
	ctx = SystemContext(ctx)
	u, err := s.store.Client.User.Get(ctx, v.UserID)
	if err != nil {
		return err
	}
	if !mfaEnabled(u) {
		return apperr.Conflictf("no second factor is set up")
	}
	a, err := s.beginCodeAttempt(ctx, u.ID, "", "")
	if err != nil {
		return err
	}
	err = s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		if err := s.proveFactor(ctx, tx, u, code, recovery); err != nil {
			return err
		}
		return s.clearMFA(ctx, tx, u.ID)
	})
	if err != nil && isBadInput(err) {
		return err // a wrong code keeps its slot
	}
	a.release(ctx)
	return err
}

// ResetMFA removes a user's second factor for them (they lost the device)
// and ends their sessions, which may be the thief's. The caller records
// the reason in the audit trail.
func (s *Service) ResetMFA(ctx context.Context, userID, reason string) (*ent.User, error) {
	var c input.Checker
	c.ID("input.userId", userID, input.User)
	c.Text("input.reason", reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	// Looked up as the caller: whom they cannot see, they cannot reset.
	u, err := s.store.Client.User.Get(ctx, userID)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("user not found")
	} else if err != nil {
		return nil, err
	}
	if err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		return s.clearMFA(ctx, tx, u.ID)
	}); err != nil {
		return nil, err
	}
	if err := s.revokeSessions(ctx, session.UserID(u.ID)); err != nil {
		return nil, err
	}
	return s.store.Client.User.Get(ctx, userID)
}

// clearMFA forgets a user's TOTP secret, recovery codes and open
// challenges. The last used step stays: it only ever grows.
func (s *Service) clearMFA(ctx context.Context, tx *ent.Tx, userID string) error {
	if err := tx.User.UpdateOneID(userID).ClearTotpSecret().ClearTotpConfirmedAt().Exec(ctx); err != nil {
		return err
	}
	if _, err := tx.MfaRecoveryCode.Delete().Where(mfarecoverycode.UserID(userID)).Exec(ctx); err != nil {
		return err
	}
	_, err := tx.MfaChallenge.Update().
		Where(mfachallenge.UserID(userID), mfachallenge.UsedAtIsNil()).
		SetUsedAt(s.now().UTC()).
		Save(ctx)
	return err
}

// MFAEnabled reports whether the user has a confirmed second factor.
func (s *Service) MFAEnabled(ctx context.Context, userID string) (bool, error) {
	return s.store.Client.User.Query().
		Where(user.ID(userID), user.TotpConfirmedAtNotNil()).
		Exist(SystemContext(ctx))
}

// totpStep returns the time step code is valid for: the current one or
// either neighbour, for clocks a little apart.
func (s *Service) totpStep(secret, code string) (int64, bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if secret == "" || len(code) != totpDigits.Length() {
		return 0, false
	}
	now := s.now()
	for _, d := range []int64{0, -1, 1} {
		at := now.Add(time.Duration(d) * totpPeriod)
		want, err := TOTPCode(secret, at)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return at.Unix() / int64(totpPeriod/time.Second), true
		}
	}
	return 0, false
}

// TOTPCode returns the code of secret at time at, as an authenticator app
// would show it.
func TOTPCode(secret string, at time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{
		Period: uint(totpPeriod / time.Second), Digits: totpDigits, Algorithm: totpAlg,
	})
}

// newRecoveryCode returns 80 random bits as four groups of four base32
// characters: short enough to type, too many to guess.
func newRecoveryCode() string {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	s := strings.ToLower(base32.StdEncoding.EncodeToString(b))
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// normalizeRecoveryCode forgives case, dashes and spaces.
func normalizeRecoveryCode(c string) string {
	c = strings.ToLower(c)
	return strings.NewReplacer("-", "", " ", "").Replace(c)
}
