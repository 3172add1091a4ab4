package ehr

import (
	"context"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
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
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	switch in.Type {
	case encounter.TypeOUTPATIENT, encounter.TypeEMERGENCY:
	case encounter.TypeINPATIENT:
		c.Fail(apperr.BadInput("input.type", "an inpatient encounter starts with the admission"))
	default:
		c.Fail(apperr.BadInput("input.type", "must be OUTPATIENT or EMERGENCY"))
	}
	c.ID("input.departmentId", in.DepartmentID, input.Department)
	c.OptionalID("input.providerId", in.ProviderID, input.Staff)
	reason := c.Text("input.reason", in.Reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (started *ent.Encounter, err error) {
		p, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		if ok, err := tx.Department.Query().Where(department.ID(in.DepartmentID)).Exist(ctx); err != nil {
			return nil, err
		} else if !ok {
			return nil, apperr.BadInput("input.departmentId", "no such department")
		}
		if in.ProviderID != nil {
			provider, err := tx.Staff.Get(ctx, *in.ProviderID)
			if ent.IsNotFound(err) {
				return nil, apperr.BadInput("input.providerId", "no such member of staff")
			} else if err != nil {
				return nil, err
			}
			switch {
			case !provider.Active:
				return nil, apperr.BadInput("input.providerId", "is no longer active")
			case provider.Kind != staff.KindDOCTOR && provider.Kind != staff.KindNURSE:
				return nil, apperr.BadInput("input.providerId", "is not a doctor or nurse")
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
		return started, err
	})
}

// FinishEncounter ends an encounter in progress.
func (s *Service) FinishEncounter(ctx context.Context, id string) (*ent.Encounter, error) {
	return s.endEncounter(ctx, id, encounter.StatusFINISHED, "")
}

// CancelEncounter ends an encounter in progress that should not have been
// started (registered for the wrong patient, the patient left before being
// seen). The reason is required so the decision is deliberate.
func (s *Service) CancelEncounter(ctx context.Context, id, reason string) (*ent.Encounter, error) {
	var c input.Checker
	c.Text("reason", reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return s.endEncounter(ctx, id, encounter.StatusCANCELLED, strings.TrimSpace(reason))
}

// endEncounter moves an encounter from IN_PROGRESS to to. The update is
// conditional on the status, so of two concurrent ends exactly one wins.
func (s *Service) endEncounter(ctx context.Context, id string, to encounter.Status, cancelReason string) (*ent.Encounter, error) {
	if err := input.ID("id", id, input.Encounter); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (ended *ent.Encounter, err error) {
		current, err := store.GetLocked(ctx, tx, tx.Encounter.Get, id, func(e *ent.Encounter) string { return e.PatientID }, "encounter not found")
		if err != nil {
			return nil, err
		}
		switch {
		case current.Status != encounter.StatusIN_PROGRESS:
			return nil, apperr.Conflictf("the encounter is %s; only one IN_PROGRESS can be %s", current.Status, pastTense(to))
		case current.Type == encounter.TypeINPATIENT:
			// The stay and its encounter end together, with the discharge.
			return nil, apperr.Conflictf("an inpatient encounter ends with the patient's discharge")
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
			return nil, apperr.Conflictf("the encounter changed meanwhile; reload it")
		}
		if err != nil || to != encounter.StatusFINISHED {
			return ended, err
		}
		return ended, events.Record(ctx, tx, EncountersTopic, EncounterFinished, EncounterEvent{
			EncounterID: ended.ID, PatientID: ended.PatientID, DepartmentID: deref(ended.DepartmentID), Type: string(ended.Type),
		})
	})
}

// EncountersTopic carries EncounterEvent: a visit that ended, which billing
// charges a consultation for.
const EncountersTopic = "encounters"

// EncounterFinished is the event type of a finished outpatient or
// emergency encounter; a cancelled one is not billed and not announced.
const EncounterFinished = "FINISHED"

// EncounterEvent is the payload of an event on EncountersTopic: IDs only.
type EncounterEvent struct {
	EncounterID  string `json:"encounterId"`
	PatientID    string `json:"patientId"`
	DepartmentID string `json:"departmentId,omitempty"`
	Type         string `json:"type"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func pastTense(to encounter.Status) string {
	if to == encounter.StatusCANCELLED {
		return "cancelled"
	}
	return "finished"
}
