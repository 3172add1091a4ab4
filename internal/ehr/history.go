package ehr

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/historyitem"
	"github.com/hmis-dev/hmis/internal/apperr"
)

// RecordHistoryItemInput is the input of recordHistoryItem.
type RecordHistoryItemInput struct {
	PatientID   string
	Category    historyitem.Category
	Description string
	Date        *time.Time
	// Relation says whose condition family history is ("mother").
	Relation *string
}

// MaxHistoryDescription bounds a history item's description.
const MaxHistoryDescription = 2000

// RecordHistoryItem adds an item to the patient's medical history.
func (s *Service) RecordHistoryItem(ctx context.Context, in RecordHistoryItemInput) (*ent.HistoryItem, error) {
	var c checker
	c.id("input.patientId", in.PatientID, "pat", "a patient")
	if c.err == nil && historyitem.CategoryValidator(in.Category) != nil {
		c.fail(apperr.BadInput("input.category", "must be one of PAST_CONDITION, SURGERY, FAMILY, SOCIAL"))
	}
	description := c.text("input.description", in.Description, MaxHistoryDescription)
	c.pastDate("input.date", in.Date, s.latestToday())
	relation := c.optionalText("input.relation", in.Relation, 50)
	if c.err == nil && relation != nil && in.Category != historyitem.CategoryFAMILY {
		c.fail(apperr.BadInput("input.relation", "is for family history only"))
	}
	if c.err != nil {
		return nil, c.err
	}
	var recorded *ent.HistoryItem
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		p, err := loadPatient(ctx, tx, "input.patientId", in.PatientID, false)
		if err != nil {
			return err
		}
		// A relative's illness may predate the patient; the patient's own
		// history may not.
		if in.Category != historyitem.CategoryFAMILY {
			if err := notBeforeBirth("input.date", in.Date, p); err != nil {
				return err
			}
		}
		recorded, err = tx.HistoryItem.Create().
			SetPatientID(p.ID).
			SetCategory(in.Category).
			SetDescription(description).
			SetNillableDate(in.Date).
			SetNillableRelation(relation).
			SetNillableRecordedByID(recorder(ctx)).
			Save(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return recorded.Unwrap(), nil
}

// MarkHistoryItemEnteredInError withdraws a history item recorded by
// mistake; it stays in the record, marked.
func (s *Service) MarkHistoryItemEnteredInError(ctx context.Context, id string) (*ent.HistoryItem, error) {
	if err := checkID("id", id, "hst", "a history item"); err != nil {
		return nil, err
	}
	var withdrawn *ent.HistoryItem
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		current, err := tx.HistoryItem.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("history item not found")
		} else if err != nil {
			return err
		}
		if current.Status != historyitem.StatusACTIVE {
			return apperr.Conflictf("the history item is already %s", current.Status)
		}
		withdrawn, err = tx.HistoryItem.UpdateOneID(id).
			Where(historyitem.StatusEQ(historyitem.StatusACTIVE)).
			SetStatus(historyitem.StatusENTERED_IN_ERROR).
			Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("the history item changed meanwhile; reload it")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return withdrawn.Unwrap(), nil
}
