package staffing

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
)

// Self is the viewer's own active staff record, read in tx; anyone else —
// a patient, an API key, a deactivated member of staff — is refused as
// unable to do action (clock in, request leave, …).
func Self(ctx context.Context, tx *ent.Tx, action string) (*ent.Staff, error) {
	v := auth.FromContext(ctx)
	refuse := apperr.Denied("only an active member of staff may %s", action)
	if v == nil || v.StaffID == "" {
		return nil, refuse
	}
	m, err := tx.Staff.Get(auth.SystemContext(ctx), v.StaffID)
	if ent.IsNotFound(err) || err == nil && !m.Active {
		return nil, refuse
	}
	return m, err
}
