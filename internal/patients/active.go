package patients

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/internal/apperr"
)

// Active loads, through the caller's row scope, the patient that new data is
// about to be recorded for. A merged record is refused, naming the record
// that replaced it: whatever landed on it would sit where no one looks. The
// extra predicates let a caller lock the row.
func Active(ctx context.Context, patients *ent.PatientClient, field, id string, also ...predicate.Patient) (*ent.Patient, error) {
	p, err := patients.Query().Where(patient.ID(id)).Where(also...).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.BadInput(field, "no such patient")
	} else if err != nil {
		return nil, err
	}
	if p.Status == patient.StatusMERGED {
		return nil, apperr.BadInput(field, "was merged into %s; use that record", deref(p.MergedIntoID))
	}
	return p, nil
}
