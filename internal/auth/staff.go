package auth

import (
	"context"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
)

// ActingStaff returns the viewer's staff record if it is active and of one
// of kinds, and FORBIDDEN otherwise, naming action. The policy admits roles;
// this ties a clinical step — an order, a signature, a verified result — to
// a person who answers for it, which an administrator account or an API key
// is not. Pass the transaction's client so the record is read in it.
func ActingStaff(ctx context.Context, members *ent.StaffClient, action string, kinds ...staff.Kind) (*ent.Staff, error) {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = strings.ToLower(strings.ReplaceAll(k.String(), "_", " "))
	}
	refuse := apperr.Denied("only an active %s may %s", strings.Join(names, " or "), action)
	v := FromContext(ctx)
	// An API key may read for the member of staff it names, never act as
	// them: what it does would carry their name without their hand.
	if v == nil || v.StaffID == "" || v.APIKeyID != "" {
		return nil, refuse
	}
	m, err := members.Get(ctx, v.StaffID)
	if ent.IsNotFound(err) {
		return nil, refuse
	} else if err != nil {
		return nil, err
	}
	if !m.Active {
		return nil, refuse
	}
	for _, k := range kinds {
		if m.Kind == k {
			return m, nil
		}
	}
	return nil, refuse
}
