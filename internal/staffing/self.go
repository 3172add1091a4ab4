package staffing

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
)

// Active is the viewer's own active staff record, or nil for anyone else:
// a patient, an API key, a deactivated member of staff. The record is the
// viewer's own, so it is read whatever the row scope.
func Active(ctx context.Context, c *ent.Client) (*ent.Staff, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" || v.APIKeyID != "" {
		return nil, nil
	}
	m, err := c.Staff.Get(auth.SystemContext(ctx), v.StaffID)
	if ent.IsNotFound(err) || err == nil && !m.Active {
		return nil, nil
	}
	return m, err
}

// Self is the viewer's own active staff record, read in tx; anyone else is
// refused as unable to do action (clock in, request leave, …).
func Self(ctx context.Context, tx *ent.Tx, action string) (*ent.Staff, error) {
	m, err := Active(ctx, tx.Client())
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, apperr.Denied("only an active member of staff may %s", action)
	}
	return m, nil
}
