package ehr

import (
	"context"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/icd10code"
	"github.com/hmis-dev/hmis/ent/problem"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// RecordProblemInput is the input of recordProblem.
type RecordProblemInput struct {
	PatientID   string
	EncounterID *string
	Icd10Code   string
	OnsetDate   *time.Time
	Note        *string
}

// MaxNoteLength bounds free-text notes on problems.
const MaxNoteLength = 5000

// RecordProblem puts a coded diagnosis on the patient's problem list. The
// description is the catalog's, so the same code always reads the same.
func (s *Service) RecordProblem(ctx context.Context, in RecordProblemInput) (*ent.Problem, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.OptionalID("input.encounterId", in.EncounterID, input.Encounter)
	code := strings.ToUpper(c.Text("input.icd10Code", in.Icd10Code, 8))
	pastDate(&c, "input.onsetDate", in.OnsetDate, s.latestToday())
	note := c.OptionalText("input.note", in.Note, MaxNoteLength)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (recorded *ent.Problem, err error) {
		p, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		encounterID, err := loadEncounter(ctx, tx, "input.encounterId", in.EncounterID, p.ID)
		if err != nil {
			return nil, err
		}
		entry, err := tx.Icd10Code.Query().Where(icd10code.Code(code)).Only(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.icd10Code", "is not in the ICD-10 catalog")
		} else if err != nil {
			return nil, err
		}
		if err := notBeforeBirth("input.onsetDate", in.OnsetDate, p); err != nil {
			return nil, err
		}
		recorded, err = tx.Problem.Create().
			SetPatientID(p.ID).
			SetNillableEncounterID(encounterID).
			SetIcd10Code(entry.Code).
			SetDisplay(entry.Display).
			SetNillableOnsetDate(in.OnsetDate).
			SetNillableNote(note).
			SetNillableRecordedByID(recorder(ctx)).
			Save(ctx)
		return recorded, err
	})
}

// ResolveProblem marks an active problem resolved on resolvedDate, today
// if it is left out.
func (s *Service) ResolveProblem(ctx context.Context, id string, resolvedDate *time.Time) (*ent.Problem, error) {
	var c input.Checker
	c.ID("id", id, input.Problem)
	pastDate(&c, "resolvedDate", resolvedDate, s.latestToday())
	if err := c.Err(); err != nil {
		return nil, err
	}
	on := s.today()
	if resolvedDate != nil {
		on = *resolvedDate
	}
	return s.moveProblem(ctx, id, "resolved", []problem.Status{problem.StatusACTIVE}, func(p *ent.Problem, u *ent.ProblemUpdateOne) error {
		if p.OnsetDate != nil && on.Before(*p.OnsetDate) {
			return apperr.BadInput("resolvedDate", "is before the problem's onset")
		}
		u.SetStatus(problem.StatusRESOLVED).SetResolvedDate(on)
		return nil
	})
}

// MarkProblemEnteredInError withdraws a problem recorded by mistake. It
// stays in the record, so what was seen and done meanwhile can be explained.
func (s *Service) MarkProblemEnteredInError(ctx context.Context, id string) (*ent.Problem, error) {
	if err := input.ID("id", id, input.Problem); err != nil {
		return nil, err
	}
	return s.moveProblem(ctx, id, "marked entered in error", []problem.Status{problem.StatusACTIVE, problem.StatusRESOLVED}, func(_ *ent.Problem, u *ent.ProblemUpdateOne) error {
		u.SetStatus(problem.StatusENTERED_IN_ERROR)
		return nil
	})
}

// moveProblem applies set to a problem whose status is one of from. The
// update is conditional on the status read, so of two concurrent changes
// exactly one wins.
func (s *Service) moveProblem(ctx context.Context, id, verb string, from []problem.Status,
	set func(*ent.Problem, *ent.ProblemUpdateOne) error) (*ent.Problem, error) {
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (moved *ent.Problem, err error) {
		current, err := store.GetLocked(ctx, tx, tx.Problem.Get, id, func(p *ent.Problem) string { return p.PatientID }, "problem not found")
		if err != nil {
			return nil, err
		}
		if !oneOf(current.Status, from) {
			return nil, apperr.Conflictf("the problem is %s and cannot be %s", current.Status, verb)
		}
		u := tx.Problem.UpdateOneID(id).Where(problem.StatusEQ(current.Status))
		if err := set(current, u); err != nil {
			return nil, err
		}
		moved, err = u.Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the problem changed meanwhile; reload it")
		}
		return moved, err
	})
}

func oneOf[T comparable](v T, set []T) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}
