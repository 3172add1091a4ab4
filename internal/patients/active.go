package patients

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/store"
)

// Lock takes the patient's lock (store.LockPatient), as every writer of
// patient data does, and loads, through the caller's row scope, the
// patient that new data is about to be recorded for; field is the input
// that named it. A merged record is refused, naming the record that
// replaced it: whatever landed on it would sit where no one looks.
func Lock(ctx context.Context, tx *ent.Tx, field, id string) (*ent.Patient, error) {
	if err := lockIgnoringMerged(ctx, tx, id); err != nil {
		return nil, err
	}
	p, err := tx.Patient.Get(ctx, id)
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

// lockIgnoringMerged takes the patients' lock and leaves a merged record
// to the caller, who reads the patient anyway and refuses it in the words of
// its own operation.
func lockIgnoringMerged(ctx context.Context, tx *ent.Tx, ids ...string) error {
	return store.HoldPatient(ctx, tx, ids...)
}
