package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/store"
)

// TOTPSecret is the second factor of every demo user whose role requires
// one: fixed and published, so that whoever tries the demo can add it to an
// authenticator app or ask `hmis totp <user>` for the current code. It
// protects nothing, which is why only demo mode seeds it.
const TOTPSecret = "HMISDEMOTOTPSECRETHMISDEMOTOTP23"

// MFALogins returns the demo users whose role requires a second factor.
func MFALogins(requires func(role string) bool) []Login {
	var out []Login
	for _, l := range Logins {
		if requires(l.Role) {
			out = append(out, l)
		}
	}
	return out
}

// SeedTOTP gives the demo users whose role requires a second factor the
// demo secret, confirmed, unless they have set up a factor of their own or
// have ever used one (a demo user who disabled it on purpose keeps it off).
func SeedTOTP(ctx context.Context, st *store.Store, requires func(role string) bool, now time.Time) error {
	ctx = auth.SystemContext(ctx)
	for _, l := range MFALogins(requires) {
		// One row at a time: the secret is encrypted at rest, bound to its row.
		u, err := st.Client.User.Query().
			Where(user.UsernameEQ(l.Username), user.TotpSecretIsNil(), user.TotpLastStep(0)).
			Only(ctx)
		if ent.IsNotFound(err) {
			continue
		}
		if err == nil {
			err = st.Client.User.UpdateOne(u).
				Where(user.TotpSecretIsNil(), user.TotpLastStep(0)).
				SetTotpSecret(TOTPSecret).
				SetTotpConfirmedAt(now.UTC()).
				Exec(ctx)
		}
		if err != nil && !ent.IsNotFound(err) {
			return fmt.Errorf("seed demo TOTP: %w", err)
		}
	}
	return nil
}
