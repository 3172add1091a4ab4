package lab

import (
	"context"
	"fmt"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/laborder"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labpanel"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// OrderLabTestsInput is the input of orderLabTests.
type OrderLabTestsInput struct {
	PatientID     string
	EncounterID   *string
	TestIDs       []string
	PanelIDs      []string
	Priority      *laborder.Priority
	ClinicalNotes *string
}

// Limits on what an order and its steps may say.
const (
	MaxClinicalNotes = 2000
	MaxReason        = 500
	MaxTestsPerOrder = 100
	MaxTextResult    = 4000
	// No measurement a lab reports comes near this; a value beyond it is a
	// slip of the keyboard or of an instrument interface.
	MaxNumericResult = 1e9
)

// Order creates an order with one ORDERED item per test, ordered by the
// viewer, who must be an active doctor. A test ordered both alone and in a
// panel, or in two panels, is one item: the lab runs it once.
func (s *Service) Order(ctx context.Context, in OrderLabTestsInput) (*ent.LabOrder, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.OptionalID("input.encounterId", in.EncounterID, input.Encounter)
	for i, id := range in.TestIDs {
		c.ID(fmt.Sprintf("input.testIds.%d", i), id, input.LabTest)
	}
	for i, id := range in.PanelIDs {
		c.ID(fmt.Sprintf("input.panelIds.%d", i), id, input.LabPanel)
	}
	switch n := len(in.TestIDs) + len(in.PanelIDs); {
	case n == 0:
		c.Fail(apperr.BadInput("input.testIds", "name at least one test or panel"))
	case n > MaxTestsPerOrder:
		c.Fail(apperr.BadInput("input.testIds", "an order holds at most %d tests", MaxTestsPerOrder))
	}
	priority := laborder.PriorityROUTINE
	if in.Priority != nil {
		if err := laborder.PriorityValidator(*in.Priority); err != nil {
			c.Fail(apperr.BadInput("input.priority", "is not a priority"))
		}
		priority = *in.Priority
	}
	notes := c.OptionalText("input.clinicalNotes", in.ClinicalNotes, MaxClinicalNotes)
	if err := c.Err(); err != nil {
		return nil, err
	}
	// Named before anything can refuse, so a refused order is still
	// audited against the patient it was for.
	audit.NotePatients(ctx, in.PatientID)

	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (created *ent.LabOrder, err error) {
		doctor, err := auth.ActingStaff(ctx, tx.Staff, "order lab tests", staff.KindDOCTOR)
		if err != nil {
			return nil, err
		}
		pat, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		if in.EncounterID != nil {
			enc, err := tx.Encounter.Get(ctx, *in.EncounterID)
			switch {
			case ent.IsNotFound(err) || (err == nil && enc.PatientID != pat.ID):
				return nil, apperr.BadInput("input.encounterId", "is not an encounter of this patient")
			case err != nil:
				return nil, err
			case enc.Status != encounter.StatusIN_PROGRESS:
				return nil, apperr.BadInput("input.encounterId", "has ended (%s); order in a current encounter", enc.Status)
			}
		}
		lines, err := orderLines(ctx, tx, in.TestIDs, in.PanelIDs)
		if err != nil {
			return nil, err
		}
		now := s.now()
		create := tx.LabOrder.Create().
			SetPatientID(pat.ID).
			SetOrderedByID(doctor.ID).
			SetOrderedAt(now).
			SetPriority(priority).
			SetNillableClinicalNotes(notes).
			SetNillableEncounterID(in.EncounterID)
		if created, err = create.Save(ctx); err != nil {
			return nil, err
		}
		items := make([]*ent.LabOrderItemCreate, len(lines))
		for i, l := range lines {
			items[i] = tx.LabOrderItem.Create().
				SetPatientID(pat.ID).
				SetOrderID(created.ID).
				SetTestID(l.testID).
				SetNillablePanelID(l.panelID).
				SetOrderedAt(now)
		}
		return created, tx.LabOrderItem.CreateBulk(items...).Exec(ctx)
	})
}

type orderLine struct {
	testID  string
	panelID *string
}

// orderLines resolves the tests and panels of an order into one line per
// distinct test, in the order asked, refusing inactive or unknown ones.
func orderLines(ctx context.Context, tx *ent.Tx, testIDs, panelIDs []string) ([]orderLine, error) {
	var lines []orderLine
	seen := map[string]bool{}
	add := func(testID string, panelID *string) {
		if !seen[testID] {
			seen[testID] = true
			lines = append(lines, orderLine{testID: testID, panelID: panelID})
		}
	}
	if len(testIDs) > 0 {
		tests, err := tx.LabTest.Query().Where(labtest.IDIn(testIDs...)).All(ctx)
		if err != nil {
			return nil, err
		}
		byID := map[string]*ent.LabTest{}
		for _, t := range tests {
			byID[t.ID] = t
		}
		for i, id := range testIDs {
			t, ok := byID[id]
			switch {
			case !ok:
				return nil, apperr.BadInput(fmt.Sprintf("input.testIds.%d", i), "no such lab test")
			case !t.Active:
				return nil, apperr.BadInput(fmt.Sprintf("input.testIds.%d", i), "%s is no longer offered", t.Name)
			}
			add(id, nil)
		}
	}
	if len(panelIDs) > 0 {
		panels, err := tx.LabPanel.Query().Where(labpanel.IDIn(panelIDs...)).
			WithTests(func(q *ent.LabTestQuery) { q.Order(ent.Asc(labtest.FieldName)) }).
			All(ctx)
		if err != nil {
			return nil, err
		}
		byID := map[string]*ent.LabPanel{}
		for _, p := range panels {
			byID[p.ID] = p
		}
		for i, id := range panelIDs {
			p, ok := byID[id]
			field := fmt.Sprintf("input.panelIds.%d", i)
			switch {
			case !ok:
				return nil, apperr.BadInput(field, "no such lab panel")
			case !p.Active:
				return nil, apperr.BadInput(field, "%s is no longer offered", p.Name)
			}
			for _, t := range p.Edges.Tests {
				if !t.Active {
					return nil, apperr.BadInput(field, "%s includes %s, which is no longer offered", p.Name, t.Name)
				}
				add(t.ID, &p.ID)
			}
		}
	}
	if len(lines) > MaxTestsPerOrder {
		return nil, apperr.BadInput("input.testIds", "an order holds at most %d tests", MaxTestsPerOrder)
	}
	return lines, nil
}

// cancellable are the states an item can be cancelled from: anything not
// yet resulted. A resulted test is corrected by amendment instead.
var cancellable = []laborderitem.Status{
	laborderitem.StatusORDERED, laborderitem.StatusCOLLECTED,
	laborderitem.StatusRECEIVED, laborderitem.StatusREJECTED,
}

// CancelItem cancels one item of an order, with the reason, by a doctor or
// the lab.
func (s *Service) CancelItem(ctx context.Context, id, reason string) (*ent.LabOrderItem, error) {
	var c input.Checker
	c.ID("id", id, input.LabOrderItem)
	reason = c.Text("reason", reason, MaxReason)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (out *ent.LabOrderItem, err error) {
		who, err := auth.ActingStaff(ctx, tx.Staff, "cancel lab tests", staff.KindDOCTOR, staff.KindLAB_TECHNICIAN)
		if err != nil {
			return nil, err
		}
		item, err := lockedItem(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if err := from(item.Status, "cancelled", cancellable...); err != nil {
			return nil, err
		}
		out, err = tx.LabOrderItem.UpdateOne(item).
			Where(laborderitem.StatusEQ(item.Status)).
			SetStatus(laborderitem.StatusCANCELLED).
			SetCancelReason(reason).
			SetCancelledByID(who.ID).
			Save(ctx)
		return out, changedMeanwhile(err)
	})
}

// from refuses a transition unless the item is in one of the states it
// may be taken from, naming the state it is in.
func from(current laborderitem.Status, action string, allowed ...laborderitem.Status) error {
	for _, a := range allowed {
		if current == a {
			return nil
		}
	}
	return apperr.Conflictf("the item is %s; it cannot be %s", current, action)
}

// changedMeanwhile turns the not-found of a conditional update — another
// request moved the row first — into the CONFLICT it is.
func changedMeanwhile(err error) error {
	if ent.IsNotFound(err) {
		return apperr.Conflictf("it was changed by someone else meanwhile; reload it")
	}
	return err
}
