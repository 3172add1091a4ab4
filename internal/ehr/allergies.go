package ehr

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// RecordAllergyInput is the input of recordAllergy.
type RecordAllergyInput struct {
	PatientID string
	// Substance is kept as entered (trimmed): prescribing matches drugs
	// against it.
	Substance string
	Category  allergy.Category
	Reaction  *string
	Severity  allergy.Severity
	OnsetDate *time.Time
}

// UpdateAllergyInput is the input of updateAllergy: an omitted field is
// kept, a null reaction cleared.
type UpdateAllergyInput struct {
	Reaction graphql.Omittable[*string]
	Severity graphql.Omittable[*allergy.Severity]
	Status   graphql.Omittable[*allergy.Status]
}

// RecordAllergy adds an ACTIVE allergy. A second ACTIVE allergy to the same
// substance (in any letter case) is refused: update the one there is.
func (s *Service) RecordAllergy(ctx context.Context, in RecordAllergyInput) (*ent.Allergy, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	substance := c.Text("input.substance", in.Substance, 200)
	if c.Err() == nil && allergy.CategoryValidator(in.Category) != nil {
		c.Fail(apperr.BadInput("input.category", "must be one of DRUG, FOOD, ENVIRONMENT, OTHER"))
	}
	reaction := c.OptionalText("input.reaction", in.Reaction, 300)
	if c.Err() == nil && allergy.SeverityValidator(in.Severity) != nil {
		c.Fail(apperr.BadInput("input.severity", "must be one of MILD, MODERATE, SEVERE, LIFE_THREATENING"))
	}
	pastDate(&c, "input.onsetDate", in.OnsetDate, s.latestToday())
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (recorded *ent.Allergy, err error) {
		p, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		if err := notBeforeBirth("input.onsetDate", in.OnsetDate, p); err != nil {
			return nil, err
		}
		if err := noOtherActive(ctx, tx, p.ID, substance, ""); err != nil {
			return nil, err
		}
		recorded, err = tx.Allergy.Create().
			SetPatientID(p.ID).
			SetSubstance(substance).
			SetCategory(in.Category).
			SetNillableReaction(reaction).
			SetSeverity(in.Severity).
			SetNillableOnsetDate(in.OnsetDate).
			SetNillableRecordedByID(recorder(ctx)).
			Save(ctx)
		return recorded, err
	})
}

// UpdateAllergy changes an allergy's reaction, severity or status. ACTIVE
// and INACTIVE move both ways (reactivating checks for a duplicate, as
// recording does); ENTERED_IN_ERROR is final.
func (s *Service) UpdateAllergy(ctx context.Context, id string, in UpdateAllergyInput) (*ent.Allergy, error) {
	var c input.Checker
	c.ID("id", id, input.Allergy)
	reaction, setReaction := in.Reaction.ValueOK()
	if setReaction {
		reaction = c.OptionalText("input.reaction", reaction, 300)
	}
	severity, setSeverity := in.Severity.ValueOK()
	switch {
	case !setSeverity:
	case severity == nil:
		c.Fail(apperr.BadInput("input.severity", "is required and cannot be cleared"))
	case allergy.SeverityValidator(*severity) != nil:
		c.Fail(apperr.BadInput("input.severity", "must be one of MILD, MODERATE, SEVERE, LIFE_THREATENING"))
	}
	status, setStatus := in.Status.ValueOK()
	switch {
	case !setStatus:
	case status == nil:
		c.Fail(apperr.BadInput("input.status", "is required and cannot be cleared"))
	case allergy.StatusValidator(*status) != nil:
		c.Fail(apperr.BadInput("input.status", "must be one of ACTIVE, INACTIVE, ENTERED_IN_ERROR"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (updated *ent.Allergy, err error) {
		current, err := store.GetLocked(ctx, tx, tx.Allergy.Get, id, func(a *ent.Allergy) string { return a.PatientID }, "allergy not found")
		if err != nil {
			return nil, err
		}
		if current.Status == allergy.StatusENTERED_IN_ERROR {
			return nil, apperr.Conflictf("the allergy was entered in error and cannot be changed")
		}
		if setStatus && *status == allergy.StatusACTIVE && current.Status != allergy.StatusACTIVE {
			if err := noOtherActive(ctx, tx, current.PatientID, current.Substance, current.ID); err != nil {
				return nil, err
			}
		}
		u := tx.Allergy.UpdateOneID(id).Where(allergy.StatusEQ(current.Status))
		switch {
		case !setReaction:
		case reaction == nil:
			u.ClearReaction()
		default:
			u.SetReaction(*reaction)
		}
		if setSeverity {
			u.SetSeverity(*severity)
		}
		if setStatus {
			u.SetStatus(*status)
		}
		updated, err = u.Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the allergy changed meanwhile; reload it")
		}
		return updated, err
	})
}

// noOtherActive refuses a second ACTIVE allergy to substance; except is the
// allergy being changed. The caller holds the patient's lock.
func noOtherActive(ctx context.Context, tx *ent.Tx, patientID, substance, except string) error {
	q := tx.Allergy.Query().Where(
		allergy.PatientID(patientID),
		allergy.StatusEQ(allergy.StatusACTIVE),
		allergy.SubstanceEqualFold(substance),
	)
	if except != "" {
		q.Where(allergy.IDNEQ(except))
	}
	dup, err := q.Exist(ctx)
	if err != nil {
		return err
	}
	if dup {
		return apperr.Conflictf("the patient already has an active allergy to this substance; update that one")
	}
	return nil
}
