package prescribing

import (
	"context"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// PrescribeMedicationInput is the input of prescribeMedication.
type PrescribeMedicationInput struct {
	PatientID             string
	EncounterID           *string
	Drug                  string
	DrugCode              *string
	DoseAmount            float64
	DoseUnit              string
	Route                 medicationorder.Route
	Frequency             string
	DurationDays          *int
	Quantity              int
	Instructions          *string
	AllergyOverrideReason *string
}

// ReviseMedicationOrderInput is the input of reviseMedicationOrder: the
// whole new order, for the patient of the order it replaces.
type ReviseMedicationOrderInput struct {
	EncounterID           *string
	Drug                  string
	DrugCode              *string
	DoseAmount            float64
	DoseUnit              string
	Route                 medicationorder.Route
	Frequency             string
	DurationDays          *int
	Quantity              int
	Instructions          *string
	AllergyOverrideReason *string
}

// Limits on what an order may say, beyond what the data model enforces.
const (
	MaxReasonLength       = 500
	MaxInstructionsLength = 2000
	// A course longer than ten years is a typing error, not a prescription.
	MaxDurationDays = 3650
	MaxQuantity     = 100_000
	MaxDoseAmount   = 1_000_000
)

// AllergyMatch is an active allergy that a prescribed drug matches.
type AllergyMatch struct {
	ID        string
	Substance string
	Severity  allergy.Severity
}

// AllergyConflict refuses an order for a drug the patient has a documented
// allergy to, naming the allergies so the prescriber can decide whether to
// override.
type AllergyConflict struct {
	Allergies []AllergyMatch
}

const allergyConflictMessage = "the drug matches an active allergy of the patient; give allergyOverrideReason to prescribe it anyway"

func (e *AllergyConflict) Error() string { return allergyConflictMessage }

// Unwrap makes an AllergyConflict a CONFLICT wherever errors are classified.
func (e *AllergyConflict) Unwrap() error { return apperr.Conflictf(allergyConflictMessage) }

// Service runs the medication order state machine.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a Service on st.
func NewService(st *store.Store) *Service { return &Service{store: st, now: time.Now} }

// order is an order's clinical content, validated and trimmed.
type order struct {
	encounterID           *string
	drug                  string
	drugCode              *string
	doseAmount            float64
	doseUnit              string
	route                 medicationorder.Route
	frequency             string
	durationDays          *int
	quantity              int
	instructions          *string
	allergyOverrideReason *string
}

// Prescribe creates an ACTIVE order prescribed by the viewer, who must be an
// active doctor, after checking the drug against the patient's allergies.
func (s *Service) Prescribe(ctx context.Context, in PrescribeMedicationInput) (*ent.MedicationOrder, error) {
	if err := input.ID("input.patientId", in.PatientID, input.Patient); err != nil {
		return nil, err
	}
	o, err := validate(order{
		encounterID: in.EncounterID, drug: in.Drug, drugCode: in.DrugCode, doseAmount: in.DoseAmount,
		doseUnit: in.DoseUnit, route: in.Route, frequency: in.Frequency, durationDays: in.DurationDays,
		quantity: in.Quantity, instructions: in.Instructions, allergyOverrideReason: in.AllergyOverrideReason,
	})
	if err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.MedicationOrder, error) {
		prescriber, err := auth.ActingStaff(ctx, tx.Staff, "prescribe", staff.KindDOCTOR)
		if err != nil {
			return nil, err
		}
		pat, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		return s.create(ctx, tx, pat.ID, prescriber, o, nil)
	})
}

// Revise replaces an ACTIVE order with a new one, checked against the
// allergies like any order; the old one becomes SUPERSEDED. Of concurrent
// revisions of one order exactly one succeeds.
func (s *Service) Revise(ctx context.Context, id string, in ReviseMedicationOrderInput) (*ent.MedicationOrder, error) {
	if err := input.ID("id", id, input.MedicationOrder); err != nil {
		return nil, err
	}
	o, err := validate(order{
		encounterID: in.EncounterID, drug: in.Drug, drugCode: in.DrugCode, doseAmount: in.DoseAmount,
		doseUnit: in.DoseUnit, route: in.Route, frequency: in.Frequency, durationDays: in.DurationDays,
		quantity: in.Quantity, instructions: in.Instructions, allergyOverrideReason: in.AllergyOverrideReason,
	})
	if err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.MedicationOrder, error) {
		prescriber, err := auth.ActingStaff(ctx, tx.Staff, "revise orders", staff.KindDOCTOR)
		if err != nil {
			return nil, err
		}
		old, err := activeOrder(ctx, tx, id, "revised")
		if err != nil {
			return nil, err
		}
		if o.encounterID == nil {
			o.encounterID = old.EncounterID
		}
		// Supersede first: the conditional update is what makes one of
		// several concurrent revisions win, before anything else is written.
		if err := tx.MedicationOrder.UpdateOneID(old.ID).Where(medicationorder.StatusEQ(medicationorder.StatusACTIVE)).
			SetStatus(medicationorder.StatusSUPERSEDED).SetEndedAt(s.now().UTC()).Exec(ctx); err != nil {
			return nil, changedMeanwhile(err)
		}
		created, err := s.create(ctx, tx, old.PatientID, prescriber, o, &old.ID)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("the order was revised meanwhile; reload it")
		}
		return created, err
	})
}

// Stop ends an ACTIVE order before its course is over.
func (s *Service) Stop(ctx context.Context, id, reason string) (*ent.MedicationOrder, error) {
	var c input.Checker
	c.ID("id", id, input.MedicationOrder)
	reason = c.Text("reason", reason, MaxReasonLength)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return s.end(ctx, id, "stopped", []staff.Kind{staff.KindDOCTOR}, func(u *ent.MedicationOrderUpdateOne) {
		u.SetStatus(medicationorder.StatusSTOPPED).SetStopReason(reason)
	})
}

// Complete records that an ACTIVE order's course is finished. Doctors and
// the nurses who give the drug may complete it.
func (s *Service) Complete(ctx context.Context, id string) (*ent.MedicationOrder, error) {
	if err := input.ID("id", id, input.MedicationOrder); err != nil {
		return nil, err
	}
	return s.end(ctx, id, "completed", []staff.Kind{staff.KindDOCTOR, staff.KindNURSE}, func(u *ent.MedicationOrderUpdateOne) {
		u.SetStatus(medicationorder.StatusCOMPLETED)
	})
}

// end moves an ACTIVE order to a final status, conditional on it still
// being ACTIVE so that two concurrent changes cannot both succeed.
func (s *Service) end(ctx context.Context, id, pastTense string, kinds []staff.Kind, set func(*ent.MedicationOrderUpdateOne)) (*ent.MedicationOrder, error) {
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.MedicationOrder, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, "change medication orders", kinds...); err != nil {
			return nil, err
		}
		if _, err := activeOrder(ctx, tx, id, pastTense); err != nil {
			return nil, err
		}
		u := tx.MedicationOrder.UpdateOneID(id).Where(medicationorder.StatusEQ(medicationorder.StatusACTIVE)).
			SetEndedAt(s.now().UTC())
		set(u)
		changed, err := u.Save(ctx)
		return changed, changedMeanwhile(err)
	})
}

// create writes a new ACTIVE order for the patient after the encounter and
// allergy checks.
func (s *Service) create(ctx context.Context, tx *ent.Tx, patientID string, prescriber *ent.Staff, o order, replaces *string) (*ent.MedicationOrder, error) {
	if o.encounterID != nil {
		enc, err := tx.Encounter.Get(ctx, *o.encounterID)
		if ent.IsNotFound(err) || (err == nil && enc.PatientID != patientID) {
			return nil, apperr.BadInput("input.encounterId", "is not an encounter of this patient")
		} else if err != nil {
			return nil, err
		}
	}
	matches, err := matchingAllergies(ctx, tx, patientID, o.drug)
	if err != nil {
		return nil, err
	}
	switch {
	case len(matches) > 0 && o.allergyOverrideReason == nil:
		return nil, &AllergyConflict{Allergies: matches}
	case len(matches) == 0:
		// Nothing was overridden, so there is no reason to keep.
		o.allergyOverrideReason = nil
	}
	created, err := tx.MedicationOrder.Create().
		SetPatientID(patientID).
		SetNillableEncounterID(o.encounterID).
		SetDrug(o.drug).
		SetNillableDrugCode(o.drugCode).
		SetDoseAmount(o.doseAmount).
		SetDoseUnit(o.doseUnit).
		SetRoute(o.route).
		SetFrequency(o.frequency).
		SetNillableDurationDays(o.durationDays).
		SetQuantity(o.quantity).
		SetNillableInstructions(o.instructions).
		SetPrescriberID(prescriber.ID).
		SetNillableReplacesID(replaces).
		SetNillableAllergyOverrideReason(o.allergyOverrideReason).
		Save(ctx)
	if err != nil {
		return nil, err
	}
	if o.allergyOverrideReason != nil {
		// The trail must show that this order went ahead against an allergy,
		// whatever fields the client selected in its response.
		audit.NoteField(ctx, "MedicationOrder", "allergyOverrideReason")
	}
	return created, nil
}

// matchingAllergies returns the patient's active allergies that drug matches.
func matchingAllergies(ctx context.Context, tx *ent.Tx, patientID, drug string) ([]AllergyMatch, error) {
	active, err := tx.Allergy.Query().
		Where(allergy.PatientID(patientID), allergy.StatusEQ(allergy.StatusACTIVE)).
		Order(ent.Asc(allergy.FieldID)).
		All(ctx)
	if err != nil {
		return nil, err
	}
	var matches []AllergyMatch
	for _, a := range active {
		if Matches(drug, a.Substance) {
			matches = append(matches, AllergyMatch{ID: a.ID, Substance: a.Substance, Severity: a.Severity})
		}
	}
	return matches, nil
}

// Matches reports whether an allergy to substance applies to drug: one
// names the other as whole words, ignoring case and punctuation, so that
// "Penicillin" matches "penicillin V potassium" and "Amoxicillin/clavulanate"
// matches "amoxicillin", but "sulfa" does not match "sulfasalazine".
func Matches(drug, substance string) bool {
	d, s := words(drug), words(substance)
	if len(d) == 0 || len(s) == 0 {
		return false
	}
	return containsRun(d, s) || containsRun(s, d)
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// containsRun reports whether needle occurs in hay as consecutive words.
func containsRun(hay, needle []string) bool {
	for i := 0; i+len(needle) <= len(hay); i++ {
		match := true
		for j, w := range needle {
			if hay[i+j] != w {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// activeOrder loads the order with the given ID under its patient's lock
// and refuses it unless ACTIVE.
func activeOrder(ctx context.Context, tx *ent.Tx, id, pastTense string) (*ent.MedicationOrder, error) {
	o, err := store.GetLocked(ctx, tx, tx.MedicationOrder.Get, id, func(o *ent.MedicationOrder) string { return o.PatientID }, "medication order not found")
	if err != nil {
		return nil, err
	}
	if o.Status != medicationorder.StatusACTIVE {
		return nil, apperr.Conflictf("the order is %s; only an ACTIVE order can be %s", o.Status, pastTense)
	}
	return o, nil
}

// changedMeanwhile turns a conditional update that matched no row — the
// order left ACTIVE after it was read — into a CONFLICT.
func changedMeanwhile(err error) error {
	if ent.IsNotFound(err) {
		return apperr.Conflictf("the order changed meanwhile; reload it")
	}
	return err
}

// validate checks and trims an order's content; the first bad field wins.
func validate(o order) (order, error) {
	var c input.Checker
	c.OptionalID("input.encounterId", o.encounterID, input.Encounter)
	o.drug = c.Text("input.drug", o.drug, 200)
	o.drugCode = c.OptionalText("input.drugCode", o.drugCode, 32)
	if c.Err() == nil && (!(o.doseAmount > 0) || o.doseAmount > MaxDoseAmount || math.IsInf(o.doseAmount, 0)) {
		c.Fail(apperr.BadInput("input.doseAmount", "must be greater than 0 and at most %d", MaxDoseAmount))
	}
	o.doseUnit = c.Text("input.doseUnit", o.doseUnit, 20)
	if c.Err() == nil && medicationorder.RouteValidator(o.route) != nil {
		c.Fail(apperr.BadInput("input.route", "is not a route of administration"))
	}
	o.frequency = c.Text("input.frequency", o.frequency, 40)
	switch {
	case c.Err() != nil:
	case o.durationDays != nil && (*o.durationDays < 1 || *o.durationDays > MaxDurationDays):
		c.Fail(apperr.BadInput("input.durationDays", "must be from 1 to %d", MaxDurationDays))
	case o.quantity < 1 || o.quantity > MaxQuantity:
		c.Fail(apperr.BadInput("input.quantity", "must be from 1 to %d", MaxQuantity))
	}
	o.instructions = c.OptionalText("input.instructions", o.instructions, MaxInstructionsLength)
	override := o.allergyOverrideReason
	o.allergyOverrideReason = c.OptionalText("input.allergyOverrideReason", override, MaxReasonLength)
	if c.Err() == nil && override != nil && o.allergyOverrideReason == nil {
		c.Fail(apperr.BadInput("input.allergyOverrideReason", "must not be blank; leave it out to have allergies checked"))
	}
	return o, c.Err()
}
