package ehr

import (
	"context"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
)

// StartEncounterInput is the input of startEncounter: a walk-in outpatient
// visit or an emergency. Booked visits start from their appointment and
// inpatient stays from their admission.
type StartEncounterInput struct {
	PatientID    string
	Type         encounter.Type
	DepartmentID string
	ProviderID   *string
	Reason       string
}

// StartEncounter opens an encounter IN_PROGRESS, starting now.
func (s *Service) StartEncounter(ctx context.Context, in StartEncounterInput) (*ent.Encounter, error) {
	var c checker
	c.id("input.patientId", in.PatientID, "pat", "a patient")
	switch in.Type {
	case encounter.TypeOUTPATIENT, encounter.TypeEMERGENCY:
	case encounter.TypeINPATIENT:
		c.fail(apperr.BadInput("input.type", "an inpatient encounter starts with the admission"))
	default:
		c.fail(apperr.BadInput("input.type", "must be OUTPATIENT or EMERGENCY"))
	}
	c.id("input.departmentId", in.DepartmentID, "dep", "a department")
	c.optionalID("input.providerId", in.ProviderID, "stf", "a staff")
	reason := c.text("input.reason", in.Reason, 500)
	if c.err != nil {
		return nil, c.err
	}
	var started *ent.Encounter
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		p, err := loadPatient(ctx, tx, "input.patientId", in.PatientID, false)
		if err != nil {
			return err
		}
		if ok, err := tx.Department.Query().Where(department.ID(in.DepartmentID)).Exist(ctx); err != nil {
			return err
		} else if !ok {
			return apperr.BadInput("input.departmentId", "no such department")
		}
		if in.ProviderID != nil {
			provider, err := tx.Staff.Get(ctx, *in.ProviderID)
			if ent.IsNotFound(err) {
				return apperr.BadInput("input.providerId", "no such member of staff")
			} else if err != nil {
				return err
			}
			switch {
			case !provider.Active:
				return apperr.BadInput("input.providerId", "is no longer active")
			case provider.Kind != staff.KindDOCTOR && provider.Kind != staff.KindNURSE:
				return apperr.BadInput("input.providerId", "is not a doctor or nurse")
			}
		}
		started, err = tx.Encounter.Create().
			SetPatientID(p.ID).
			SetType(in.Type).
			SetDepartmentID(in.DepartmentID).
			SetNillableProviderID(in.ProviderID).
			SetStartedAt(s.now().UTC()).
			SetReason(reason).
			Save(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return started.Unwrap(), nil
}

// FinishEncounter ends an encounter in progress.
func (s *Service) FinishEncounter(ctx context.Context, id string) (*ent.Encounter, error) {
	return s.endEncounter(ctx, id, encounter.StatusFINISHED, "")
}

// CancelEncounter ends an encounter in progress that should not have been
// started (registered for the wrong patient, the patient left before being
// seen). The reason is required so the decision is deliberate.
func (s *Service) CancelEncounter(ctx context.Context, id, reason string) (*ent.Encounter, error) {
	var c checker
	c.text("reason", reason, 500)
	if c.err != nil {
		return nil, c.err
	}
	return s.endEncounter(ctx, id, encounter.StatusCANCELLED, strings.TrimSpace(reason))
}

// endEncounter moves an encounter from IN_PROGRESS to to. The update is
// conditional on the status, so of two concurrent ends exactly one wins.
func (s *Service) endEncounter(ctx context.Context, id string, to encounter.Status, cancelReason string) (*ent.Encounter, error) {
	if err := checkID("id", id, "enc", "an encounter"); err != nil {
		return nil, err
	}
	var ended *ent.Encounter
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		current, err := tx.Encounter.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("encounter not found")
		} else if err != nil {
			return err
		}
		switch {
		case current.Status != encounter.StatusIN_PROGRESS:
			return apperr.Conflictf("the encounter is %s; only one IN_PROGRESS can be %s", current.Status, pastTense(to))
		case current.Type == encounter.TypeINPATIENT:
			// The stay and its encounter end together, with the discharge.
			return apperr.Conflictf("an inpatient encounter ends with the patient's discharge")
		}
		update := tx.Encounter.UpdateOneID(id).
			Where(encounter.StatusEQ(encounter.StatusIN_PROGRESS)).
			SetStatus(to).
			SetEndedAt(s.now().UTC())
		if cancelReason != "" {
			update.SetCancelReason(cancelReason)
		}
		ended, err = update.Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("the encounter changed meanwhile; reload it")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return ended.Unwrap(), nil
}

func pastTense(to encounter.Status) string {
	if to == encounter.StatusCANCELLED {
		return "cancelled"
	}
	return "finished"
}
