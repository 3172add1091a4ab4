package ehr

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/historyitem"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
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
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	if c.Err() == nil && historyitem.CategoryValidator(in.Category) != nil {
		c.Fail(apperr.BadInput("input.category", "must be one of PAST_CONDITION, SURGERY, FAMILY, SOCIAL"))
	}
	description := c.Text("input.description", in.Description, MaxHistoryDescription)
	pastDate(&c, "input.date", in.Date, s.latestToday())
	relation := c.OptionalText("input.relation", in.Relation, 50)
	if c.Err() == nil && relation != nil && in.Category != historyitem.CategoryFAMILY {
		c.Fail(apperr.BadInput("input.relation", "is for family history only"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (recorded *ent.HistoryItem, err error) {
		p, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		// A relative's illness may predate the patient; the patient's own
		// history may not.
		if in.Category != historyitem.CategoryFAMILY {
			if err := notBeforeBirth("input.date", in.Date, p); err != nil {
				return nil, err
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
		return recorded, err
	})
}

// MarkHistoryItemEnteredInError withdraws a history item recorded by
// mistake; it stays in the record, marked.
func (s *Service) MarkHistoryItemEnteredInError(ctx context.Context, id string) (*ent.HistoryItem, error) {
	if err := input.ID("id", id, input.HistoryItem); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (withdrawn *ent.HistoryItem, err error) {
		current, err := store.GetLocked(ctx, tx, tx.HistoryItem.Get, id, func(h *ent.HistoryItem) string { return h.PatientID }, "history item not found")
		if err != nil {
			return nil, err
		}
		if current.Status != historyitem.StatusACTIVE {
			return nil, apperr.Conflictf("the history item is already %s", current.Status)
		}
		withdrawn, err = tx.HistoryItem.UpdateOneID(id).
			Where(historyitem.StatusEQ(historyitem.StatusACTIVE)).
			SetStatus(historyitem.StatusENTERED_IN_ERROR).
			Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the history item changed meanwhile; reload it")
		}
		return withdrawn, err
	})
}
